"""deploy/postgres/pg.sh: the private PostgreSQL cluster behind HAPI_DB=postgres (issue 14.1).

A generated password only (mode 600), loopback only, scram authentication, and start/stop that
can be repeated. Needs Debian's postgresql package (`pg.sh install`; deploy/setup.sh in CI)."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.hapi import REPO_ROOT
from tests.support.net import free_port

pytestmark = pytest.mark.integration
PG_SCRIPT = REPO_ROOT / "deploy" / "postgres" / "pg.sh"
PSQL = shutil.which("psql")


@pytest.fixture
def cluster() -> Iterator[dict[str, str]]:
    if not any(Path("/usr/lib/postgresql").glob("*/bin/initdb")):
        pytest.skip("PostgreSQL är inte installerat (deploy/postgres/pg.sh install)")
    root = Path(tempfile.mkdtemp(prefix="sip-fhir-pg-"))
    root.chmod(0o711)  # as root the cluster runs as user postgres, who must reach it
    env = {**os.environ, "PG_DATA_DIR": str(root / "pg"), "PG_PORT": str(free_port())}
    try:
        yield env
    finally:
        pg(env, "stop")
        shutil.rmtree(root, ignore_errors=True)


def pg(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(PG_SCRIPT), *args],
        check=False,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )


def psql(env: dict[str, str], password: str, sql: str) -> subprocess.CompletedProcess[str]:
    assert PSQL is not None
    return subprocess.run(
        [
            PSQL,
            "-X",
            "-tA",
            "-h",
            "127.0.0.1",
            "-p",
            env["PG_PORT"],
            "-U",
            "hapi",
            "-d",
            "hapi",
            "-c",
            sql,
        ],
        env={**env, "PGPASSWORD": password},
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_cluster_with_a_generated_password_on_loopback_only(cluster: dict[str, str]) -> None:
    started = pg(cluster, "start")
    assert started.returncode == 0, started.stderr
    assert pg(cluster, "start").stdout.startswith("PostgreSQL already running")
    assert pg(cluster, "createdb", "hapi").returncode == 0
    assert pg(cluster, "createdb", "hapi").stdout.strip() == "database hapi exists"

    password_file = Path(cluster["PG_DATA_DIR"]) / "password"
    assert stat.S_IMODE(password_file.stat().st_mode) == 0o600
    password = password_file.read_text()
    assert len(password) == 64 and int(password, 16) > 0  # 32 random bytes, hex
    assert pg(cluster, "password").stdout == password

    if PSQL is not None:
        assert psql(cluster, password, "SELECT current_user").stdout.strip() == "hapi"
        refused = psql(cluster, "hapi", "SELECT 1")  # no default password
        assert refused.returncode != 0 and "password authentication failed" in refused.stderr
        listening = psql(cluster, password, "SHOW listen_addresses").stdout.strip()
        assert listening == "127.0.0.1"

    assert pg(cluster, "jdbc-url", "hapi").stdout.strip() == (
        f"jdbc:postgresql://127.0.0.1:{cluster['PG_PORT']}/hapi"
    )
    assert pg(cluster, "createdb", "hapi; DROP").returncode != 0  # names are checked
    assert pg(cluster, "stop").stdout.strip() == "PostgreSQL stopped"
    assert pg(cluster, "status").returncode == 3
    restarted = pg(cluster, "start")  # same cluster, same password
    assert restarted.returncode == 0 and password_file.read_text() == password
