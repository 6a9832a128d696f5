"""Shared fixtures: a local HAPI FHIR server (started once per run, only when a test needs it),
a FhirClient on it, unique identifier values to isolate tests, a fake clock for retry schedules."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import structlog

from adapter.fhirclient import FhirClient
from adapter.settings import EndpointSettings
from tests.support.clock import FakeTime
from tests.support.hapi import HAPI_SCRIPT, hapi_env, start_hapi, stop_hapi
from tests.support.net import free_port
from tests.support.postgres import PostgresCluster, postgres_cluster

# Which mode of deploy/hapi the tests run against (its HAPI_PROFILE): "sip-fhir", our settings, or
# "starter", the official HAPI JPA starter's defaults (60 s search cache, no rest-hook, ...).
# With SIP_FHIR_TEST_SERVER it says which mode that running server is in.
HAPI_MODE_ENV = "SIP_FHIR_TEST_HAPI_MODE"
HAPI_MODES = ("sip-fhir", "starter")
# Which database the started server uses (hapi.sh's HAPI_DB): "h2" (embedded, default) or
# "postgres", a fresh private PostgreSQL cluster per session (deploy/postgres/pg.sh).
HAPI_DB_ENV = "SIP_FHIR_TEST_HAPI_DB"
HAPI_DBS = ("h2", "postgres")


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """Undo a command's `logs.configure`: under CliRunner it binds structlog to a stderr that is
    closed once the command returns, and every later log line would then fail."""
    saved = structlog.get_config()
    yield
    structlog.configure(**saved)


def _chosen(variable: str, choices: tuple[str, ...]) -> str:
    """The value of `variable`, one of `choices` (the first when unset)."""
    value = os.environ.get(variable, "").strip() or choices[0]
    if value not in choices:
        pytest.fail(f"{variable}={value!r}: ange ett av {', '.join(choices)}")
    return value


@pytest.fixture(scope="session")
def hapi_mode() -> str:
    """The test server's mode: "sip-fhir" (default) or "starter" (see HAPI_MODE_ENV)."""
    return _chosen(HAPI_MODE_ENV, HAPI_MODES)


@pytest.fixture(scope="session")
def hapi_db() -> str:
    """The started test server's database: "h2" (default) or "postgres" (see HAPI_DB_ENV)."""
    return _chosen(HAPI_DB_ENV, HAPI_DBS)


def _postgres_env() -> tuple[dict[str, str], Path]:
    """hapi.sh settings for a new PostgreSQL cluster of its own, and the directory to remove."""
    # Not under pytest's tmp dir: as root the cluster runs as user postgres, who must reach it.
    root = Path(tempfile.mkdtemp(prefix="sip-fhir-pg-"))
    root.chmod(0o711)
    env = {
        "HAPI_DB": "postgres",
        "PG_DATA_DIR": str(root / "pg"),
        "PG_PORT": str(free_port()),
        "HAPI_PG_DATABASE": "hapi",
    }
    return env, root


@pytest.fixture(scope="session")
def hapi_base_url(
    tmp_path_factory: pytest.TempPathFactory, hapi_mode: str, hapi_db: str
) -> Iterator[str]:
    """Base URL of the FHIR server for integration tests.

    `SIP_FHIR_TEST_SERVER` names a running server; otherwise `deploy/hapi/hapi.sh start` runs one on
    a free port with a fresh data directory, in `hapi_mode`, on `hapi_db` (PostgreSQL: a fresh
    cluster), stopped (and the cluster removed) when the session ends.
    """
    external = os.environ.get("SIP_FHIR_TEST_SERVER")
    if external:
        yield external.rstrip("/")
        return
    if not HAPI_SCRIPT.is_file():
        pytest.fail(f"{HAPI_SCRIPT} saknas: kan inte starta den lokala HAPI-servern")
    port = free_port()
    db_env, pg_root = _postgres_env() if hapi_db == "postgres" else ({"HAPI_DB": "h2"}, None)
    data_dir = tmp_path_factory.mktemp("hapi-data")
    env = hapi_env(port, data_dir, **db_env, HAPI_PROFILE=hapi_mode)
    try:
        urls = [line for line in start_hapi(env).split() if line.startswith("http")]
        yield urls[-1].rstrip("/") if urls else f"http://localhost:{port}/fhir"
    finally:
        stop_hapi(env)  # with PostgreSQL: the cluster too
        if pg_root is not None:
            shutil.rmtree(pg_root, ignore_errors=True)


@pytest.fixture(scope="session")
def fhir_client(hapi_base_url: str) -> Iterator[FhirClient]:
    """A FhirClient on the test server, no authentication."""
    with FhirClient(EndpointSettings(base_url=hapi_base_url)) as client:
        yield client


@pytest.fixture
def unique() -> Callable[..., str]:
    """`unique()` / `unique("pat")`: a fresh identifier value; tests never see each other's data."""

    def make(prefix: str = "test") -> str:
        return f"{prefix}-{uuid.uuid4().hex}"

    return make


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


@pytest.fixture(scope="session")
def state_postgres() -> Iterator[PostgresCluster]:
    """A private PostgreSQL cluster for the adapter's own state (not HAPI's), once per run."""
    with postgres_cluster(dict(os.environ)) as cluster:
        yield cluster


@pytest.fixture
def database_url(state_postgres: PostgresCluster) -> str:
    """A fresh, empty PostgreSQL database per test: a SIP_FHIR_DATABASE_URL."""
    return state_postgres.new_database()
