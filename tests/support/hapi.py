"""deploy/hapi/hapi.sh, as the tests run it: the session's server (tests/conftest.py) and the
servers of their own some tests start (secured, wiped, killed)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

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


def hapi_env(port: int, data_dir: Path, **settings: str) -> dict[str, str]:
    """The environment for a server of its own on `port` with a data directory of its own."""
    return {
        **os.environ,
        **settings,
        "HAPI_PORT": str(port),
        "HAPI_DATA_DIR": str(data_dir),
        "HAPI_START_TIMEOUT": str(
            HAPI_START_TIMEOUT - 60
        ),  # the script gives up first, with its log
    }


def start_hapi(env: dict[str, str]) -> str:
    """`hapi.sh start`; its output, or the test fails with the script's log."""
    started = run_hapi("start", env, HAPI_START_TIMEOUT)
    if started.returncode != 0:
        pytest.fail(
            f"hapi.sh start misslyckades ({started.returncode}):\n"
            f"{started.stdout[-3000:]}\n{started.stderr[-3000:]}"
        )
    return started.stdout


def stop_hapi(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return run_hapi("stop", env, 120)
