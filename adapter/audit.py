"""The audit log (PDL, patientdatalagen 4 kap. 3 §): who read which patient's data, when and why.

A SQLite database of its own (WAL, synchronous=FULL): an event is on disk when `record` returns,
and callers record before they answer. It is the one place that keeps the full personnummer of
the patient read, because follow-up ("who looked at patient X?") needs it; the file is created
readable by its owner only and is searched through the admin-only API. Ordinary logs never carry
the number. Timestamps are UTC.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import astuple, dataclass, fields
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path


class AuditKind(StrEnum):
    PATIENT_READ = "patient_read"
    INGEST = "ingest"
    AUDIT_SEARCH = "audit_search"


class Purpose(StrEnum):
    """Why patient data is read (header `X-Purpose`)."""

    VARD = "vard"  # the patient's care
    UPPFOLJNING = "uppfoljning"  # follow-up of the patient's plan
    KVALITET = "kvalitet"  # quality work and indicators
    LOGGUPPFOLJNING = "logguppfoljning"  # an admin following up the audit log itself


@dataclass(frozen=True, slots=True)
class AuditEvent:
    at: datetime  # UTC
    kind: AuditKind
    actor: str  # display name of the principal
    subject: str  # stable id: the token's `sub`, or `apikey:<name>`
    resource: str  # what was read or written, e.g. "Task", "worklist", "prea60"
    route: str  # the route template, e.g. "/worklist/{unit}"
    request_id: str
    purpose: str | None = None
    patient: str | None = None  # 12 digits
    unit: str | None = None  # HSA-id
    detail: str | None = None  # e.g. row counts of an ingest; never personal data


CHECK_TIMEOUT = 2.0  # seconds the readiness check waits for the write lock
_AT_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"  # fixed width, so text order is time order
_COLUMNS = tuple(f.name for f in fields(AuditEvent))
_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS audit_event (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    {", ".join(f"{name} TEXT" for name in _COLUMNS)}
);
CREATE INDEX IF NOT EXISTS audit_event_patient ON audit_event (patient, at);
CREATE INDEX IF NOT EXISTS audit_event_subject ON audit_event (subject, at);
"""


class AuditLog:
    """Append-only audit events in a SQLite file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
        with self._connect() as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(_SCHEMA)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        with closing(sqlite3.connect(self.path, timeout=30)) as db:
            db.execute("PRAGMA synchronous=FULL")  # WAL + FULL: durable once the commit returns
            with db:
                yield db

    def record(self, events: Sequence[AuditEvent]) -> None:
        """Write `events` in one transaction; raises if they could not be stored."""
        if not events:
            return
        placeholders = ", ".join("?" for _ in _COLUMNS)
        rows = [_row(event) for event in events]
        with self._lock, self._connect() as db:
            db.executemany(
                f"INSERT INTO audit_event ({', '.join(_COLUMNS)}) VALUES ({placeholders})",  # noqa: S608
                rows,
            )

    def search(
        self,
        *,
        patient: str | None = None,
        subject: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 100,
    ) -> list[AuditEvent]:
        """Events matching every given criterion, newest first."""
        clauses: list[str] = []
        params: list[str | int] = []
        for column, value in (("patient", patient), ("subject", subject)):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        if since is not None:
            clauses.append("at >= ?")
            params.append(_utc_text(since))
        if until is not None:
            clauses.append("at < ?")
            params.append(_utc_text(until))
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        params.append(limit)
        with self._connect() as db:
            rows = db.execute(
                f"SELECT {', '.join(_COLUMNS)} FROM audit_event {where} "  # noqa: S608
                "ORDER BY at DESC, id DESC LIMIT ?",
                params,
            ).fetchall()
        return [_event(row) for row in rows]

    def check(self, timeout: float = CHECK_TIMEOUT) -> None:
        """Raise unless an event could be written now (readiness): a read-only file, a full
        disk or a writer holding the lock for `timeout` seconds make the service not ready, as
        every patient read must be logged. The test write is rolled back."""
        with closing(sqlite3.connect(self.path, timeout=timeout, isolation_level=None)) as db:
            db.execute("BEGIN IMMEDIATE")  # the write lock, as `record` takes it
            try:
                db.execute("INSERT INTO audit_event (kind) VALUES ('readiness')")
            finally:
                db.execute("ROLLBACK")


def _utc_text(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("audit timestamps must carry a time zone")
    return moment.astimezone(UTC).strftime(_AT_FORMAT)


def _row(event: AuditEvent) -> tuple[str | None, ...]:
    values = astuple(event)
    return (_utc_text(event.at), *(None if v is None else str(v) for v in values[1:]))


def _event(row: tuple[str, ...]) -> AuditEvent:
    at = datetime.strptime(row[0], _AT_FORMAT).replace(tzinfo=UTC)
    return AuditEvent(at, AuditKind(row[1]), *row[2:])
