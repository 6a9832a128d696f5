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
from tests.support.stderr import logging_to_current_stderr

WIDE = CliRunner(env={"COLUMNS": "300"})  # usage errors in one line, not wrapped in a box


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
    result = WIDE.invoke(app, ["serve", "--port", "8123"])
    assert result.exit_code == 0, result.output
    (run,) = runs
    assert isinstance(run["app"], FastAPI)
    assert (run["host"], run["port"]) == ("127.0.0.1", 8123)
    assert run["access_log"] is False  # uvicorn's raw request lines bypass the masking log


def test_serve_refuses_a_broken_key_file(env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(serve_module.uvicorn, "run", lambda *a, **k: pytest.fail("started"))
    (env / "keys.json").write_text('{"plain-key": {"name": "x", "role": "admin"}}', "utf-8")
    result = WIDE.invoke(app, ["serve"])
    assert result.exit_code == 2
    assert "Kan inte starta" in result.output and "sha256" in result.output


def test_api_key_prints_key_once_and_stores_its_hash(env: Path) -> None:
    result = WIDE.invoke(
        app,
        [
            "api-key",
            *("--name", "prea60-import", "--role", "integration"),
            *("--unit", "se2321000057-e00000000101"),
        ],
    )
    assert result.exit_code == 0, result.output
    key = result.stdout.strip().splitlines()[0]
    stored = json.loads((env / "keys.json").read_text(encoding="utf-8"))
    assert list(stored) == [hash_key(key)]
    principal = ApiKeyStore.load(env / "keys.json").principal_for(key)
    assert principal is not None
    assert principal.roles == {Role.INTEGRATION} and principal.units == {
        "SE2321000057-E00000000101"
    }


@pytest.mark.parametrize(
    "unit", ["not-an-hsa-id", "SE1", "SE2321000057-", "SE2321000057-E0000000000000000001"]
)
def test_api_key_refuses_a_unit_that_is_not_an_hsa_id(env: Path, unit: str) -> None:
    """The review's attack: `api-key --unit not-an-hsa-id` made a key (of no unit at all)."""
    result = WIDE.invoke(
        app, ["api-key", "--name", "prea60-import", "--role", "integration", "--unit", unit]
    )
    assert result.exit_code == 2
    assert "Ogiltigt HSA-id" in result.output and unit in result.output
    assert not (env / "keys.json").exists()  # no key made


@pytest.mark.parametrize(
    ("role", "units", "reason"),
    [
        ("vardsamordnare", [], "behöver minst en --unit"),
        ("admin", ["--unit", "SE2321000057-E00000000101"], "alla enheter"),
    ],
)
def test_api_key_refuses_units_that_would_not_mean_what_they_say(
    env: Path, role: str, units: list[str], reason: str
) -> None:
    result = WIDE.invoke(app, ["api-key", "--name", "x", "--role", role, *units])
    assert result.exit_code == 2 and reason in result.output
    assert not (env / "keys.json").exists()


def test_serve_refuses_a_key_file_with_a_unit_that_is_not_an_hsa_id(
    env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(serve_module.uvicorn, "run", lambda *a, **k: pytest.fail("started"))
    entry = {"name": "x", "role": "integration", "units": ["not-an-hsa-id"]}
    (env / "keys.json").write_text(json.dumps({"a" * 64: entry}), "utf-8")
    result = WIDE.invoke(app, ["serve"])
    assert result.exit_code == 2
    assert "units.0" in result.output and "Ogiltigt HSA-id" in result.output


@pytest.mark.parametrize(
    "command",
    [
        ["followups", "--unit", "E1"],
        ["indicators", "--unit", "E1"],
        ["report", "--unit", "E1"],
    ],
)
def test_every_unit_option_takes_only_hsa_ids(env: Path, command: list[str]) -> None:
    result = WIDE.invoke(app, command)
    assert result.exit_code == 2
    assert "'E1': Ogiltigt HSA-id" in result.output
