"""The outbox as the tests see it, on either backend (SQLite file or PostgreSQL): its tables, a
mapped resource, sending everything, the state of a row."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from adapter.mapping.resource import MappedResource
from adapter.sync.outbox import OUTBOX_FILE, Outbox, Written

BACKENDS = ("sqlite", "postgres")
SYSTEM = "https://example.org/id"


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


def resource(
    resource_type: str, value: str, *, note: str = "", create_only: bool = False, version: int = 0
) -> MappedResource:
    body: dict[str, object] = {
        "resourceType": resource_type,
        "identifier": [{"system": SYSTEM, "value": value}],
    }
    if note:
        body["note"] = note
    if version:
        body["version"] = version
    return MappedResource(resource_type, SYSTEM, value, body, create_only)


def state_of(outbox: Outbox, item: MappedResource) -> str:
    (row,) = rows(outbox, "SELECT state FROM resource WHERE match_url = :u", {"u": item.match_url})
    return str(row[0])


def send_all(outbox: Outbox, size: int = 1000) -> list[list[str]]:
    """Claim and confirm everything; the groups (as match URLs) in the order they were sent."""
    token = "test:1:a"
    sent: list[list[str]] = []
    while (claimed := outbox.claim(token, size).batch) is not None:
        sent.extend([e.match_url for e in group] for group in claimed.groups)
        outbox.complete(token, [Written(e, "1", "1") for e in claimed.entries])
        outbox.close_records(claimed.record_ids)
    return sent
