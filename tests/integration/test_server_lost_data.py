"""A server that lost its data (issue 12.3), against a HAPI server of this test's own that it wipes.

Import the examples, stop the server, delete its database, start it again, import the same files:
everything is back (the outbox used to answer "unchanged" and exit 0 with nothing there). Then
delete a few resources on the server and `sync --verify` restores exactly those. No duplicates.
"""

from __future__ import annotations

import os
import random
import re
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from adapter.canonical import TAG_RUN
from adapter.fhirclient import FhirClient
from adapter.settings import REPO_ROOT, EndpointSettings, sandbox_profile_version
from tests.support.hapi import HAPI_START_TIMEOUT, hapi_env, run_hapi, stop_hapi
from tests.support.net import free_port
from tests.support.processes import SIP_FHIR
from tests.support.sync import assert_exactly_once, expected_resources, version_ids, write_events

pytestmark = [pytest.mark.integration, pytest.mark.slow]
EXAMPLES = [
    *sorted((REPO_ROOT / "deploy" / "examples").glob("*.csv")),
    REPO_ROOT / "deploy" / "examples" / "plans.jsonl",
]


@dataclass
class OwnServer:
    base_url: str
    data_dir: Path
    env: dict[str, str]

    def start(self) -> None:
        started = run_hapi("start", self.env, HAPI_START_TIMEOUT)
        assert started.returncode == 0, started.stdout[-2000:] + started.stderr[-2000:]

    def wipe(self) -> None:
        """Stop, delete the database, start: what an in-memory server's restart does."""
        stopped = run_hapi("stop", self.env, 120)
        assert stopped.returncode == 0, stopped.stderr
        shutil.rmtree(self.data_dir)
        self.start()


@pytest.fixture(scope="module")
def own_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OwnServer]:
    port = free_port()
    data_dir = tmp_path_factory.mktemp("hapi-wiped")
    env = hapi_env(port, data_dir)
    server = OwnServer(f"http://localhost:{port}/fhir", data_dir, env)
    try:
        server.start()
        yield server
    finally:
        stop_hapi(env)


def sip_fhir(
    server: OwnServer, data_dir: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    full_env = {
        **os.environ,
        "SIP_FHIR_BASE_URL": server.base_url,
        "SIP_FHIR_DATA_DIR": str(data_dir),
        "SIP_FHIR_MAX_RETRY_SECONDS": "30",
        "COLUMNS": "200",
        **(env or {}),
    }
    return subprocess.run(
        [SIP_FHIR, *args], env=full_env, capture_output=True, text=True, timeout=300, check=False
    )


def summary_count(output: str, label: str) -> int:
    match = re.search(rf"{re.escape(label)}\s*│\s*([\d\u00a0 ]+)│", output)
    assert match, f"{label!r} saknas i:\n{output}"
    return int(re.sub(r"\D", "", match.group(1)))


def test_a_wiped_server_gets_everything_back_and_verify_restores_deleted(
    own_server: OwnServer, tmp_path: Path
) -> None:
    expected = expected_resources(EXAMPLES)
    files = [str(p) for p in EXAMPLES]
    first = sip_fhir(own_server, tmp_path, "import", *files)
    assert first.returncode == 0, first.stdout + first.stderr
    assert summary_count(first.stdout, "Resurser skapade") == len(expected)

    own_server.wipe()
    with FhirClient(EndpointSettings(base_url=own_server.base_url)) as client:
        assert not list(client.search("Patient", {"_count": "1"}))  # the server lost it all

        again = sip_fhir(own_server, tmp_path, "import", *files)
        assert again.returncode == 0, again.stdout + again.stderr
        assert "förlorat data" in again.stdout
        assert summary_count(again.stdout, "Skickade igen (servern saknade dem)") == len(expected)
        assert summary_count(again.stdout, "Resurser skapade") == len(expected)
        assert summary_count(again.stdout, "Oförändrade (ingen skrivning)") == 0
        assert_exactly_once(client, expected)

        # A third import: the server has it all, nothing is sent.
        third = sip_fhir(own_server, tmp_path, "import", *files)
        assert third.returncode == 0 and "förlorat" not in third.stdout, third.stdout
        assert summary_count(third.stdout, "Resurser skapade") == 0

        # Delete a few leaves on the server: verify finds exactly those and re-sends them.
        before = version_ids(client, expected)
        leaves = [
            m for m in expected.values() if m.resource_type in ("RiskAssessment", "Procedure")
        ]
        victims = leaves[:2] + leaves[-2:]
        for victim in victims:
            (found,) = client.search(
                victim.resource_type,
                {"identifier": f"{victim.identifier_system}|{victim.identifier_value}"},
                post=True,
            )
            client.delete(victim.resource_type, found["id"])
        verified = sip_fhir(own_server, tmp_path, "sync", "--verify")
        assert verified.returncode == 0, verified.stdout + verified.stderr
        assert summary_count(verified.stdout, "Resurser kontrollerade") == len(expected)
        assert summary_count(verified.stdout, "Saknas på servern") == len(victims)
        assert summary_count(verified.stdout, "Skickas igen") == len(victims)
        assert summary_count(verified.stdout, "Resurser skapade") == len(victims)
        assert_exactly_once(client, expected)
        after = version_ids(client, expected)
        untouched = set(expected) - {v.match_url for v in victims}
        assert {u: after[u] for u in untouched} == {u: before[u] for u in untouched}


def test_sandbox_profiles_live_beside_others_and_validate(
    own_server: OwnServer, tmp_path: Path
) -> None:
    """Issue 12.4 on this server of our own (versioned copies of our profiles on the shared test
    server would change what other sessions' unversioned lookups resolve to)."""
    plain = sip_fhir(own_server, tmp_path / "plain", "profiles", "install")
    assert plain.returncode == 0, plain.stdout + plain.stderr
    tag = f"test-{uuid.uuid4().hex[:8]}"
    sandbox = {"SIP_FHIR_SANDBOX": "1", "SIP_FHIR_RUN_TAG": tag}
    versioned = sip_fhir(own_server, tmp_path / "run", "profiles", "install", env=sandbox)
    assert versioned.returncode == 0, versioned.stdout + versioned.stderr
    events = write_events(tmp_path / "events-sandbox.csv", 12, 4, random.Random()).path
    imported = sip_fhir(own_server, tmp_path / "run", "import", str(events), env=sandbox)
    assert imported.returncode == 0, imported.stdout + imported.stderr

    with FhirClient(EndpointSettings(base_url=own_server.base_url)) as client:
        theirs = client.read("StructureDefinition", "sip-patient")
        assert theirs["meta"]["versionId"] == "1"  # untouched
        version = sandbox_profile_version(REPO_ROOT / "profiles")
        ours = client.read("StructureDefinition", f"sip-patient-{version}")
        assert ours["version"] == version != theirs["version"] and ours["url"] == theirs["url"]

        written = [
            r
            for t in ("Patient", "Procedure")
            for r in client.search(t, {"_tag": f"{TAG_RUN}|{tag}", "_count": "100"})
        ]
        assert len(written) == 16
        for resource in written:
            profiles = resource["meta"]["profile"]
            assert all(p.endswith(f"|{version}") for p in profiles), profiles
            outcome = client.validate(resource)
            bad = [i for i in outcome.get("issue", []) if i.get("severity") in ("error", "fatal")]
            assert not bad, (resource["resourceType"], bad)

        purged = sip_fhir(own_server, tmp_path / "run", "purge", "--tag", tag)
        assert purged.returncode == 0, purged.stdout + purged.stderr
        assert not list(client.search("Procedure", {"_tag": f"{TAG_RUN}|{tag}"}))
        urls = list(client.search("StructureDefinition", {"url": theirs["url"]}))
        assert [r["id"] for r in urls] == ["sip-patient"]  # ours gone, theirs kept
        assert theirs["version"] == "0.1.0"
