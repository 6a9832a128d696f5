"""Outbox rows: a mapped resource, sending everything, the state of a row."""

from __future__ import annotations

import sqlite3

from adapter.mapping.resource import MappedResource
from adapter.sync.outbox import (
    Outbox,
    Written,
)

SYSTEM = "https://example.org/id"


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
    db = sqlite3.connect(outbox.path)
    try:
        row = db.execute(
            "SELECT state FROM resource WHERE match_url = ?", (item.match_url,)
        ).fetchone()
    finally:
        db.close()
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
