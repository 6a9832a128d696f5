"""A private PostgreSQL cluster for tests of the adapter's shared state (SIP_FHIR_DATABASE_URL),
started with the project's own deploy/postgres/pg.sh (Debian's package, no Docker)."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.support.net import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
PG_SCRIPT = REPO_ROOT / "deploy" / "postgres" / "pg.sh"


@dataclass(frozen=True)
class PostgresCluster:
    env: dict[str, str]
    port: int

    def pg(self, *args: str) -> str:
        done = subprocess.run(
            [str(PG_SCRIPT), *args], env=self.env, capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            raise RuntimeError(f"pg.sh {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
        return done.stdout

    def url(self, database: str) -> str:
        password = self.pg("password").strip()
        return f"postgresql+psycopg://hapi:{password}@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        """A fresh, empty database; its SQLAlchemy URL."""
        name = f"t_{uuid.uuid4().hex[:16]}"
        self.pg("createdb", name)
        return self.url(name)


@contextmanager
def postgres_cluster(base_env: dict[str, str]) -> Iterator[PostgresCluster]:
    """Start a new cluster on a free loopback port; stop and remove it afterwards."""
    # Not under pytest's tmp dir: as root the cluster runs as user postgres, who must reach it.
    root = Path(tempfile.mkdtemp(prefix="sip-fhir-state-pg-"))
    root.chmod(0o711)
    port = free_port()
    cluster = PostgresCluster(
        env={**base_env, "PG_DATA_DIR": str(root / "pg"), "PG_PORT": str(port)}, port=port
    )
    try:
        cluster.pg("start")
        yield cluster
    finally:
        subprocess.run([str(PG_SCRIPT), "stop"], env=cluster.env, capture_output=True, check=False)
        shutil.rmtree(root, ignore_errors=True)
