"""Kill -9 in the middle of an import — the FHIR server, or the adapter itself — then `sync`:
the server holds exactly the expected resources, each once, none written twice."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from adapter.fhirclient import FhirClient
from adapter.settings import REPO_ROOT, EndpointSettings
from adapter.sync.outbox import OUTBOX_FILE
from tests.support.net import free_port
from tests.support.processes import adapter_env, sip_fhir, start_import
from tests.support.sync import assert_exactly_once, expected_resources, version_ids, write_events

pytestmark = [pytest.mark.integration, pytest.mark.slow]

HAPI_SCRIPT = REPO_ROOT / "deploy" / "hapi" / "hapi.sh"
ROWS, PATIENTS = 3000, 600


@dataclass
class OwnServer:
    """A HAPI server of this module alone: killing it disturbs no other test."""

    port: int
    data_dir: Path

    @property
    def base_url(self) -> str:
        return f"http://localhost:{self.port}/fhir"

    def _run(self, command: str) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "HAPI_PORT": str(self.port), "HAPI_DATA_DIR": str(self.data_dir)}
        return subprocess.run(
            [str(HAPI_SCRIPT), command],
            env=env,
            capture_output=True,
            text=True,
            timeout=540,
            check=False,
        )

    def start(self) -> None:
        started = self._run("start")
        assert started.returncode == 0, started.stdout + started.stderr[-3000:]

    def stop(self) -> None:
        self._run("stop")

    def kill(self) -> None:
        """SIGKILL the java process, as a crash would."""
        pid = int((self.data_dir / "hapi.pid").read_text().strip())
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not _alive(pid)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (killed, not yet reaped by its parent) no longer serves anything.
    try:
        return "zombie" not in Path(f"/proc/{pid}/status").read_text().lower()
    except OSError:
        return False


@pytest.fixture(scope="module")
def own_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OwnServer]:
    server = OwnServer(free_port(), tmp_path_factory.mktemp("hapi-kill"))
    try:
        server.start()
        yield server
    finally:
        server.stop()


def done_count(data_dir: Path) -> int:
    """Resources the outbox has seen confirmed (read beside the running import: WAL)."""
    path = data_dir / OUTBOX_FILE
    if not path.exists():
        return 0
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    try:
        return int(db.execute("SELECT count(*) FROM resource WHERE state = 'done'").fetchone()[0])
    except sqlite3.OperationalError:  # schema not created yet
        return 0
    finally:
        db.close()


def wait_for_progress(data_dir: Path, process: subprocess.Popen[str], at_least: int) -> None:
    deadline = time.monotonic() + 300
    while done_count(data_dir) < at_least:
        assert process.poll() is None, "the import ended before it could be interrupted"
        assert time.monotonic() < deadline, "no progress"
        time.sleep(0.2)


@pytest.mark.timeout(1500)
def test_fhir_server_killed_mid_import_then_sync(own_server: OwnServer, tmp_path: Path) -> None:
    events = write_events(tmp_path / "events-kill.csv", ROWS, PATIENTS, random.Random()).path
    expected = expected_resources([events])
    data = tmp_path / "data"
    # A short retry budget: the import gives up soon after the server is gone.
    env = adapter_env(
        data, own_server.base_url, SIP_FHIR_MAX_RETRY_SECONDS="10", SIP_FHIR_MAX_ATTEMPTS="4"
    )
    process = start_import(env, events)
    wait_for_progress(data, process, at_least=len(expected) // 5)
    own_server.kill()
    out, err = process.communicate(timeout=300)
    assert process.returncode == 1, out + err
    assert "väntar i utkorgen" in out
    assert done_count(data) < len(expected)

    own_server.start()  # same data directory: what was committed is still there
    synced = sip_fhir(env, "sync")
    assert synced.returncode == 0, synced.stdout + synced.stderr
    assert done_count(data) == len(expected)
    with FhirClient(EndpointSettings(base_url=own_server.base_url)) as client:
        assert_exactly_once(client, expected)
        assert set(version_ids(client, expected).values()) == {"1"}


@pytest.mark.timeout(900)
def test_adapter_killed_mid_import_then_sync_and_reimport(
    hapi_base_url: str, fhir_client: FhirClient, tmp_path: Path
) -> None:
    events = write_events(tmp_path / "events-kill.csv", ROWS, PATIENTS, random.Random()).path
    expected = expected_resources([events])
    data = tmp_path / "data"
    env = adapter_env(data, hapi_base_url)
    process = start_import(env, events)
    wait_for_progress(data, process, at_least=len(expected) // 4)
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=30)
    assert done_count(data) < len(expected)

    synced = sip_fhir(env, "sync")  # the claims of the killed process are taken over at once
    assert synced.returncode == 0, synced.stdout + synced.stderr
    again = sip_fhir(env, "import", str(events))  # anything not read before the kill
    assert again.returncode == 0, again.stdout + again.stderr
    assert done_count(data) == len(expected)
    assert_exactly_once(fhir_client, expected)
    assert set(version_ids(fhir_client, expected).values()) == {"1"}
