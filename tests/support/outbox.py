"""The outbox's tables as the tests see them, on either backend (SQLite file or PostgreSQL)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from adapter.sync.outbox import OUTBOX_FILE, Outbox

BACKENDS = ("sqlite", "postgres")


@pytest.fixture(params=BACKENDS)
def where(request: pytest.FixtureRequest, tmp_path: Path) -> str | Path:
    """Where a test's outbox lives; each test taking it runs twice: on a SQLite file in
    `tmp_path` and on a fresh PostgreSQL database (`database_url`, started only when asked)."""
    if request.param == "postgres":
        return str(request.getfixturevalue("database_url"))
    return tmp_path / OUTBOX_FILE


def rows(outbox: Outbox, sql: str, params: dict[str, Any] | None = None) -> list[Any]:
    """Read the outbox's own tables (the stored state is what is under test)."""
    return outbox._db.read(lambda db: list(db.execute(sql, params or {}).fetchall()))


def change(outbox: Outbox, sql: str, params: dict[str, Any] | None = None) -> None:
    """Change the outbox's tables behind its back (a crash, another version's sip-fhir)."""
    outbox._db.write(lambda db: db.execute(sql, params or {}))
