"""`sip-fhir serve` and `sip-fhir api-key`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from typer.testing import CliRunner

from adapter.api.apikeys import ApiKeyStore, hash_key
from adapter.api.principal import Role
from adapter.cli import app
from adapter.cli import serve as serve_module
from adapter.settings import get_settings
from tests.unit.test_api_support import logging_to_current_stderr


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("SIP_FHIR_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("SIP_FHIR_API_KEYS_FILE", str(tmp_path / "keys.json"))
    get_settings.cache_clear()
    with logging_to_current_stderr():  # `serve` configures logging onto the runner's stderr
        yield tmp_path
    get_settings.cache_clear()


def test_serve_runs_uvicorn_with_the_app(env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runs: list[dict[str, Any]] = []
    monkeypatch.setattr(
        serve_module.uvicorn, "run", lambda api, **kw: runs.append({"app": api, **kw})
    )
    (env / "keys.json").write_text("{}", encoding="utf-8")
    result = CliRunner().invoke(app, ["serve", "--port", "8123"])
    assert result.exit_code == 0, result.output
    (run,) = runs
    assert isinstance(run["app"], FastAPI)
    assert (run["host"], run["port"]) == ("127.0.0.1", 8123)
    assert run["access_log"] is False  # uvicorn's raw request lines bypass the masking log


def test_serve_refuses_a_broken_key_file(env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(serve_module.uvicorn, "run", lambda *a, **k: pytest.fail("started"))
    (env / "keys.json").write_text('{"plain-key": {"name": "x", "role": "admin"}}', "utf-8")
    result = CliRunner().invoke(app, ["serve"])
    assert result.exit_code == 2
    assert "Kan inte starta" in result.output and "sha256" in result.output


def test_api_key_prints_key_once_and_stores_its_hash(env: Path) -> None:
    result = CliRunner().invoke(
        app, ["api-key", "--name", "prea60-import", "--role", "integration", "--unit", "SE1"]
    )
    assert result.exit_code == 0, result.output
    key = result.stdout.strip().splitlines()[0]
    stored = json.loads((env / "keys.json").read_text(encoding="utf-8"))
    assert list(stored) == [hash_key(key)]
    principal = ApiKeyStore.load(env / "keys.json").principal_for(key)
    assert principal is not None
    assert principal.roles == {Role.INTEGRATION} and principal.units == {"SE1"}
