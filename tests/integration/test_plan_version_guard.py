"""The server-side plan-version guard (issue 14.3) against the real server: two installations
(two data dirs, two outboxes) write the same plan; an older version never overwrites a newer one,
neither the CarePlan nor its Goals and CareTeam."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from adapter.fhirclient import FhirClient
from adapter.settings import EndpointSettings
from adapter.sync import Importer, SyncSettings, Tally, open_outbox
from tests.support.people import fictional_personnummer
from tests.support.sync import (
    MAPPINGS_DIR,
    expected_resources,
    plan_line,
    server_matches,
    version_ids,
)

pytestmark = pytest.mark.integration


def run_import(data_dir: Path, path: Path, client: FhirClient) -> Tally:
    tally = Tally()
    settings = SyncSettings(batch_size=50, workers=1)
    result = Importer(open_outbox(data_dir), client, MAPPINGS_DIR, tally, settings).run([path])
    assert result.complete, result.stop
    return tally


@pytest.fixture
def patient() -> str:
    """A test personnummer (födelsenummer 980-999: never a real person's)."""
    return fictional_personnummer()


@pytest.fixture
def plan_files(tmp_path: Path, patient: str) -> dict[int, Path]:
    plan_id = f"P-guard-{os.urandom(4).hex()}"
    files = {}
    for version in (1, 2, 3):
        path = tmp_path / f"plans-v{version}.jsonl"
        line = plan_line(plan_id, version, patient, title=f"Version {version}", goals=2)
        path.write_text(line + "\n", "utf-8")
        files[version] = path
    return files


def stored(client: FhirClient, path: Path, resource_type: str) -> list[dict[str, Any]]:
    wanted = [r for r in expected_resources([path]).values() if r.resource_type == resource_type]
    _, found = server_matches(client, wanted)
    return found  # type: ignore[return-value]


def test_an_older_version_from_another_installation_changes_nothing(
    fhir_client: FhirClient, tmp_path: Path, plan_files: dict[int, Path]
) -> None:
    a, b = tmp_path / "installation-a", tmp_path / "installation-b"
    run_import(a, plan_files[2], fhir_client)
    plan_resources = expected_resources([plan_files[2]])
    before = version_ids(fhir_client, plan_resources)

    older = run_import(b, plan_files[1], fhir_client)

    assert (older.older_skipped, older.written) == (1, 0)
    (message,) = older.older_messages
    assert "version 1 skrevs inte" in message and "redan version 2" in message
    assert version_ids(fhir_client, plan_resources) == before  # CarePlan, Goals, CareTeam alike
    (plan,) = stored(fhir_client, plan_files[2], "CarePlan")
    assert plan["title"] == "Version 2"
    goals = stored(fhir_client, plan_files[2], "Goal")
    assert len(goals) == 2 and all("v2" in g["description"]["text"] for g in goals)

    newer = run_import(b, plan_files[3], fhir_client)
    assert newer.older_skipped == 0 and newer.updated >= 1
    (plan,) = stored(fhir_client, plan_files[3], "CarePlan")
    assert plan["title"] == "Version 3"
    goals = stored(fhir_client, plan_files[3], "Goal")
    assert all("v3" in g["description"]["text"] for g in goals)


class RacingClient(FhirClient):
    """After its first read of the server's plans, another installation writes a newer version:
    the write this client then sends holds a stale If-Match."""

    def __init__(self, base_url: str, race: Iterator[None]) -> None:
        super().__init__(EndpointSettings(base_url=base_url))
        self.race = race
        self.plan_reads = 0

    def search_bundles(self, resource_type: str, *args: Any, **kwargs: Any) -> Any:
        pages = list(super().search_bundles(resource_type, *args, **kwargs))
        if resource_type == "CarePlan":
            self.plan_reads += 1
            next(self.race, None)
        return iter(pages)


def test_a_newer_version_written_between_read_and_write_wins(
    hapi_base_url: str, fhir_client: FhirClient, tmp_path: Path, plan_files: dict[int, Path]
) -> None:
    a, b = tmp_path / "installation-a", tmp_path / "installation-b"
    run_import(a, plan_files[1], fhir_client)  # the plan exists: B's write carries If-Match

    def race() -> Iterator[None]:
        run_import(a, plan_files[3], fhir_client)  # lands after B read version 1
        yield

    racing = RacingClient(hapi_base_url, race())
    with racing:
        tally = run_import(b, plan_files[2], racing)

    # B's first transaction met 409 (stale If-Match), read again, saw version 3 and gave up.
    assert racing.plan_reads == 2
    assert (tally.retries, tally.older_skipped, tally.written) == (1, 1, 0)
    (plan,) = stored(fhir_client, plan_files[3], "CarePlan")
    assert plan["title"] == "Version 3"
    goals = stored(fhir_client, plan_files[3], "Goal")
    assert all("v3" in g["description"]["text"] for g in goals)


def test_the_cli_says_which_plan_it_left_and_why(
    hapi_base_url: str, fhir_client: FhirClient, tmp_path: Path, plan_files: dict[int, Path]
) -> None:
    run_import(tmp_path / "installation-a", plan_files[2], fhir_client)
    env = {
        **os.environ,
        "SIP_FHIR_BASE_URL": hapi_base_url,
        "SIP_FHIR_DATA_DIR": str(tmp_path / "installation-b"),
        "COLUMNS": "200",
    }
    result = subprocess.run(
        [str(Path(sys.executable).with_name("sip-fhir")), "import", str(plan_files[1])],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Äldre planversioner (hoppades över)" in result.stdout
    assert "version 1 skrevs inte: servern har redan version 2" in result.stdout


@pytest.mark.parametrize(("theirs", "ours", "winner"), [(3, 2, 3), (1, 2, 2)])
def test_a_plan_created_by_another_installation_between_read_and_write(
    hapi_base_url: str,
    fhir_client: FhirClient,
    profiles_installed: None,
    tmp_path: Path,
    plan_files: dict[int, Path],
    theirs: int,
    ours: int,
    winner: int,
) -> None:
    """B reads: no such plan yet. A creates it (version `theirs`) before B writes (`ours`). B's
    create is refused by the server's unique index, B reads again and decides again: one
    CarePlan, the newer version, never B's older one written over A's."""
    a, b = tmp_path / "installation-a", tmp_path / "installation-b"

    def race() -> Iterator[None]:
        run_import(a, plan_files[theirs], fhir_client)  # lands after B found nothing
        yield

    racing = RacingClient(hapi_base_url, race())
    with racing:
        tally = run_import(b, plan_files[ours], racing)

    (plan,) = stored(fhir_client, plan_files[winner], "CarePlan")
    assert plan["title"] == f"Version {winner}"
    goals = stored(fhir_client, plan_files[winner], "Goal")
    assert len(goals) == 2 and all(f"v{winner}" in g["description"]["text"] for g in goals)
    assert racing.plan_reads == 2 and tally.retries == 1  # refused once, then decided again
    assert tally.older_skipped == (1 if theirs > ours else 0)
