"""An outbox written by another schema version is refused on open, never read as if it were ours."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from adapter.cli import app
from adapter.settings import get_settings
from adapter.sync.outbox import OUTBOX_FILE, SCHEMA_VERSION, Outbox, OutboxVersionError
from tests.support import outbox as outbox_support
from tests.support.outbox import change, rows
from tests.support.postgres import free_port

where = outbox_support.where  # the fixture: each test runs on SQLite and PostgreSQL


def _stamp(path: Path, version: str) -> None:
    db = sqlite3.connect(path)
    try:
        db.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (version,))
        db.commit()
    finally:
        db.close()


VERSION = "SELECT value FROM meta WHERE key = 'schema_version'"


def test_a_new_outbox_records_its_version_and_reopens(where: str | Path) -> None:
    outbox = Outbox(where)
    assert rows(outbox, VERSION)[0][0] == SCHEMA_VERSION
    Outbox(where).close()  # the same version opens again


def test_another_version_is_refused_and_left_as_it_was(where: str | Path) -> None:
    outbox = Outbox(where)
    change(outbox, "UPDATE meta SET value = '2' WHERE key = 'schema_version'")

    with pytest.raises(OutboxVersionError, match="schemaversion 2") as caught:
        Outbox(where)
    assert f"läser version {SCHEMA_VERSION}" in str(caught.value)
    assert caught.value.found == "2"
    assert rows(outbox, VERSION)[0][0] == "2"  # not overwritten, not "repaired"
    assert "@" not in caught.value.where or ":***@" in caught.value.where  # no password shown


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("SIP_FHIR_DATA_DIR", str(tmp_path))
    get_settings.cache_clear()
    yield tmp_path
    get_settings.cache_clear()


def test_sync_names_the_version_instead_of_a_traceback(data_dir: Path) -> None:
    Outbox.in_dir(data_dir).close()
    _stamp(data_dir / OUTBOX_FILE, "0")

    result = CliRunner().invoke(app, ["sync"])
    output = " ".join(result.output.split())  # rich wraps long lines
    assert result.exit_code == 1
    assert "Synkningen kunde inte starta" in output
    assert "schemaversion 0" in output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_a_database_that_does_not_answer_is_named_without_its_password(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"postgresql+psycopg://sipfhir:hemligt-ord@127.0.0.1:{free_port()}/sipfhir"
    monkeypatch.setenv("SIP_FHIR_DATABASE_URL", url)
    get_settings.cache_clear()

    result = CliRunner().invoke(app, ["sync"])
    output = " ".join(result.output.split())
    assert result.exit_code == 1
    assert "Utkorgens databas postgresql+psycopg://sipfhir:***@127.0.0.1" in output
    assert "svarar inte" in output and "hemligt-ord" not in output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert not (data_dir / OUTBOX_FILE).exists()  # no SQLite outbox instead
