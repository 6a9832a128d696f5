"""deploy/hapi/hapi.sh, as the tests run it (tests/conftest.py, and tests that start a server of
their own: secured, lost data)."""

from __future__ import annotations

import subprocess
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
HAPI_SCRIPT = REPO_ROOT / "deploy" / "hapi" / "hapi.sh"
# Build (first run) and start-up of the JPA server; kept under pytest-timeout's 600 s per test.
HAPI_START_TIMEOUT = 540


def run_hapi(command: str, env: dict[str, str], timeout: float) -> subprocess.CompletedProcess[str]:
    """`hapi.sh <command>` with `env`, its output captured."""
    return subprocess.run(
        [str(HAPI_SCRIPT), command],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
