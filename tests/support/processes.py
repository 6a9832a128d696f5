"""The `sip-fhir` command as its own process, for tests that kill or race real processes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SIP_FHIR = str(Path(sys.executable).with_name("sip-fhir"))


def adapter_env(data_dir: Path, base_url: str, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "SIP_FHIR_BASE_URL": base_url,
        "SIP_FHIR_DATA_DIR": str(data_dir),
        "SIP_FHIR_BATCH_SIZE": "50",
        **extra,
    }


def start_import(env: dict[str, str], events: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [SIP_FHIR, "import", str(events)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def sip_fhir(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SIP_FHIR, *args], env=env, capture_output=True, text=True, timeout=540, check=False
    )
