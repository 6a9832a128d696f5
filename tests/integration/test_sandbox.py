"""Sandbox mode against the real server (issue 12.4): every written resource carries the run's
tag, and `purge --tag T` removes exactly what run T wrote — not another run's data, not untagged
data, and not what something outside the run still refers to."""

from __future__ import annotations

import os
import random
import subprocess
import uuid
from pathlib import Path

import pytest

from adapter.canonical import TAG_RUN
from adapter.fhirclient import FhirClient
from tests.support.processes import SIP_FHIR
from tests.support.sync import assert_exactly_once, expected_resources, write_events

pytestmark = pytest.mark.integration


def sip_fhir(
    base_url: str, data_dir: Path, *args: str, tag: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "SIP_FHIR_BASE_URL": base_url,
        "SIP_FHIR_DATA_DIR": str(data_dir),
        "SIP_FHIR_MAX_RETRY_SECONDS": "30",
        "COLUMNS": "200",
    }
    env.pop("SIP_FHIR_RUN_TAG", None)
    if tag:
        env["SIP_FHIR_RUN_TAG"] = tag
    return subprocess.run(
        [SIP_FHIR, *args], env=env, capture_output=True, text=True, timeout=300, check=False
    )


def tagged(client: FhirClient, resource_type: str, tag: str) -> list[dict[str, object]]:
    return list(client.search(resource_type, {"_tag": f"{TAG_RUN}|{tag}", "_count": "500"}))


def test_purge_removes_exactly_one_runs_writes(
    hapi_base_url: str, fhir_client: FhirClient, tmp_path: Path
) -> None:
    rng = random.Random()
    run_a, run_b = f"test-a-{uuid.uuid4().hex[:8]}", f"test-b-{uuid.uuid4().hex[:8]}"
    files = {
        name: write_events(tmp_path / f"events-{name}.csv", rows=24, patients=6, rng=rng)
        for name in ("a", "b", "plain")
    }
    # Run B also records an event of one of run A's patients: that Patient was A's write, but
    # B's Procedure refers to it, so purging A must leave it.
    shared_patient = files["a"].patients[0]
    with files["b"].path.open("a", encoding="utf-8") as b_file:
        b_file.write(f"{shared_patient};2024-06-01;AW010;SE2321000057-E00000000042;besök;\n")
    expected = {name: expected_resources([g.path]) for name, g in files.items()}

    for name, tag in (("a", run_a), ("b", run_b), ("plain", None)):
        done = sip_fhir(hapi_base_url, tmp_path / name, "import", str(files[name].path), tag=tag)
        assert done.returncode == 0, done.stdout + done.stderr
        if tag:
            assert f"Körningens tagg: {tag}" in " ".join(done.stderr.split())
    procedures_a = tagged(fhir_client, "Procedure", run_a)
    patients_a = tagged(fhir_client, "Patient", run_a)
    assert len(procedures_a) == 24 and len(patients_a) == 6  # every write carries the tag
    assert len(tagged(fhir_client, "Procedure", run_b)) == 25

    dry = sip_fhir(hapi_base_url, tmp_path / "a", "purge", "--tag", run_a, "--dry-run")
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert len(tagged(fhir_client, "Procedure", run_a)) == 24  # a dry run deletes nothing

    purged = sip_fhir(hapi_base_url, tmp_path / "a", "purge", "--tag", run_a)
    assert purged.returncode == 2, purged.stdout + purged.stderr  # the shared patient stays
    assert "Kvar: Patient/" in purged.stdout
    assert not tagged(fhir_client, "Procedure", run_a)
    left = tagged(fhir_client, "Patient", run_a)
    assert len(left) == 1
    assert_exactly_once(fhir_client, expected["b"])
    assert_exactly_once(fhir_client, expected["plain"])

    # Once B is gone too, A's last patient can go.
    assert sip_fhir(hapi_base_url, tmp_path / "b", "purge", "--tag", run_b).returncode == 0
    assert sip_fhir(hapi_base_url, tmp_path / "a", "purge", "--tag", run_a).returncode == 0
    assert not tagged(fhir_client, "Patient", run_a)
    assert_exactly_once(fhir_client, expected["plain"])

    # The outbox forgot what was purged: importing again writes it again.
    again = sip_fhir(hapi_base_url, tmp_path / "a", "import", str(files["a"].path), tag=run_a)
    assert again.returncode == 0, again.stdout + again.stderr
    assert_exactly_once(fhir_client, expected["a"])
    assert sip_fhir(hapi_base_url, tmp_path / "a", "purge", "--tag", run_a).returncode == 0
