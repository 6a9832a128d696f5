"""Two `sip-fhir import` processes on one shared outbox (PostgreSQL, SIP_FHIR_DATABASE_URL) and
one FHIR server, on overlapping files; one is killed with SIGKILL mid-import. After a re-run and
`sync`: every resource is on the server once, none was written twice, nothing is left pending."""

from __future__ import annotations

import random
import signal
import subprocess
import time
from pathlib import Path

import pytest

from adapter.fhirclient import FhirClient
from adapter.sync.outbox import OUTBOX_FILE, Outbox, State
from tests.support.processes import adapter_env, sip_fhir, start_import
from tests.support.sync import (
    assert_exactly_once,
    expected_resources,
    version_ids,
    write_events,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROWS, PATIENTS = 1500, 300


def overlapping_files(tmp_path: Path) -> tuple[Path, Path, Path]:
    """All rows, and two files sharing the middle third (the second read backwards)."""
    both = write_events(tmp_path / "events-all.csv", ROWS, PATIENTS, random.Random()).path
    header, *rows = both.read_text("utf-8").splitlines()
    first, second = tmp_path / "events-a.csv", tmp_path / "events-b.csv"
    cut = len(rows) // 3
    first.write_text("\n".join([header, *rows[: 2 * cut]]) + "\n", "utf-8")
    second.write_text("\n".join([header, *reversed(rows[cut:])]) + "\n", "utf-8")
    return both, first, second


def wait_until_done(outbox: Outbox, process: subprocess.Popen[str], at_least: int) -> None:
    deadline = time.monotonic() + 300
    while outbox.done_count() < at_least:
        assert process.poll() is None, "the import ended before it could be interrupted"
        assert time.monotonic() < deadline, "no progress"
        time.sleep(0.2)


@pytest.mark.timeout(900)
def test_two_imports_on_one_database_one_killed_lose_and_duplicate_nothing(
    hapi_base_url: str, fhir_client: FhirClient, database_url: str, tmp_path: Path
) -> None:
    both, first, second = overlapping_files(tmp_path)
    expected = expected_resources([both])
    # Two machines, as far as the adapter can tell: each its own data directory.
    envs = [
        adapter_env(tmp_path / name, hapi_base_url, SIP_FHIR_DATABASE_URL=database_url)
        for name in ("host-a", "host-b")
    ]
    outbox = Outbox(database_url)  # the same shared outbox, created here or by an import
    victim = start_import(envs[0], first)
    other = start_import(envs[1], second)
    wait_until_done(outbox, victim, at_least=len(expected) // 5)
    victim.send_signal(signal.SIGKILL)
    victim.communicate(timeout=30)  # reaped: its pid is gone, and with it its claims
    assert outbox.done_count() < len(expected)

    out, err = other.communicate(timeout=600)
    assert other.returncode == 0, out + err
    again = sip_fhir(envs[0], "import", str(first))  # the rows read after the kill
    assert again.returncode == 0, again.stdout + again.stderr
    synced = sip_fhir(envs[1], "sync")
    assert synced.returncode == 0, synced.stdout + synced.stderr

    assert outbox.stats().counts == {State.DONE: len(expected)}  # nothing pending, none dead
    assert_exactly_once(fhir_client, expected)
    # Version 1 everywhere: no resource was written twice, the killed import's included.
    assert set(version_ids(fhir_client, expected).values()) == {"1"}
    assert not any((tmp_path / name / OUTBOX_FILE).exists() for name in ("host-a", "host-b"))
