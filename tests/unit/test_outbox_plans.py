"""The outbox's claim reads a window of records through their members, never every open
resource: on SQLite (no table statistics) the planner would otherwise pick the `state` index
and a claim's cost would grow with the whole queue. Found by the 100 000-patient import, where
each claim took seconds and the import stalled. Checked on the plans SQLite chooses for the
statements a real claim runs."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from adapter.sync import outboxdb
from adapter.sync.outbox import OUTBOX_FILE, ClaimToken, Outbox
from tests.support.outbox import resource


def test_a_claim_reads_members_by_record_not_every_open_resource(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    outbox = Outbox(tmp_path / OUTBOX_FILE)
    outbox.enqueue(
        [[resource("Patient", f"p{n}"), resource("CarePlan", f"c{n}")] for n in range(40)]
    )
    ran: list[tuple[str, Any]] = []
    execute = outboxdb.Tx.execute

    def spy(self: outboxdb.Tx, sql: str, params: Any = None) -> Any:
        ran.append((sql, params))
        return execute(self, sql, params)

    monkeypatch.setattr(outboxdb.Tx, "execute", spy)
    claimed = outbox.claim(str(ClaimToken.new()), 10)
    assert claimed.batch is not None  # a real claim, which read the members
    member_reads = [(sql, params) for sql, params in ran if "FROM member" in sql]
    assert member_reads
    with sqlite3.connect(tmp_path / OUTBOX_FILE) as db:
        for sql, params in member_reads:
            plan = " / ".join(
                row[3] for row in db.execute("EXPLAIN QUERY PLAN " + sql, params or {})
            )
            assert "resource_state" not in plan, plan
            assert "SEARCH m USING" in plan, plan
