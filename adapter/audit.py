"""The audit log (PDL, patientdatalagen 4 kap. 3 §): who read which patient's data, when and why.

Stored where the adapter keeps its state (adapter/database.py): the shared database when
SIP_FHIR_DATABASE_URL is set, so every `serve` process writes to, and an admin searches, one log;
else a SQLite file of its own (WAL, synchronous FULL, SIP_FHIR_AUDIT_DB or <data_dir>/audit.sqlite).
An event is stored when `record` returns, and callers record before they answer. It is the one
place that keeps the full personnummer of the patient read, because follow-up ("who looked at
patient X?") needs it; a SQLite file is created readable by its owner only, and the log is
searched through the admin-only API. Ordinary logs never carry the number. Timestamps are UTC.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from contextlib import closing
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path

from sqlalchemy import (
    BigInteger,
    Column,
    ColumnElement,
    Index,
    Integer,
    MetaData,
    Table,
    Text,
    insert,
    select,
    text,
)
from sqlalchemy.engine import make_url

from adapter.database import is_postgres, open_tables, sqlite_url, state_url, url_of
from adapter.groupcommit import GroupCommit
from adapter.settings import Settings


class AuditKind(StrEnum):
    PATIENT_READ = "patient_read"
    INGEST = "ingest"
    AUDIT_SEARCH = "audit_search"
    PREA60_RUN = "prea60_run"  # a Prea60 run confirmed or rejected (adapter/prea60/)


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
_METADATA = MetaData()
_TABLE = Table(
    "audit_event",
    _METADATA,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    *(Column(name, Text) for name in _COLUMNS),
    Index("audit_event_patient", "patient", "at"),
    Index("audit_event_subject", "subject", "at"),
    sqlite_autoincrement=True,
)


def audit_url(settings: Settings) -> str:
    """The shared database when set; else SIP_FHIR_AUDIT_DB, else <data_dir>/audit.sqlite."""
    if settings.database_url is None and settings.audit_db is not None:
        return sqlite_url(settings.audit_db)
    return state_url(settings, "audit.sqlite")


class AuditLog:
    """Append-only audit events: a SQLite file (a Path) or a database URL (a str)."""

    def __init__(self, target: Path | str) -> None:
        self.url = url_of(target)
        self.path = None if is_postgres(self.url) else Path(make_url(self.url).database or "")
        self._engine = open_tables(self.url, _METADATA)
        # Concurrent answers share one transaction (a page view is one write; see groupcommit).
        self._writes: GroupCommit[dict[str, str | None]] = GroupCommit(self._insert)

    @classmethod
    def for_settings(cls, settings: Settings) -> AuditLog:
        return cls(audit_url(settings))

    def record(self, events: Sequence[AuditEvent]) -> None:
        """Store `events` (in one transaction, with those of concurrent callers); raises
        GroupWriteError if they could not be stored."""
        if not events:
            return
        self._writes.write([dict(zip(_COLUMNS, _row(event), strict=True)) for event in events])

    def _insert(self, rows: list[dict[str, str | None]]) -> None:
        with self._engine.begin() as db:
            db.execute(insert(_TABLE), rows)

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
        c = _TABLE.c
        clauses: list[ColumnElement[bool]] = []
        if patient is not None:
            clauses.append(c.patient == patient)
        if subject is not None:
            clauses.append(c.subject == subject)
        if since is not None:
            clauses.append(c.at >= _utc_text(since))
        if until is not None:
            clauses.append(c.at < _utc_text(until))
        query = (
            select(*(c[name] for name in _COLUMNS))
            .where(*clauses)
            .order_by(c.at.desc(), c.id.desc())
            .limit(limit)
        )
        with self._engine.connect() as db:
            return [_event(row) for row in db.execute(query)]

    def check(self, timeout: float = CHECK_TIMEOUT) -> None:
        """Raise unless an event could be written now (readiness): a read-only file or
        database, a full disk or a writer holding the lock for `timeout` seconds make the
        service not ready, as every patient read must be logged. The test write is rolled back."""
        if self.path is None:
            with self._engine.connect() as db:
                millis = int(timeout * 1000)
                db.execute(text(f"SET LOCAL lock_timeout = {millis}"))
                db.execute(text(f"SET LOCAL statement_timeout = {millis}"))
                db.execute(insert(_TABLE).values(kind="readiness"))
                db.rollback()
            return
        # A connection of its own, not a pooled one: a file made read-only since the pool
        # opened it would still take writes through the old handle.
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
    # getattr, not dataclasses.astuple (a deep copy): a worklist page writes 50 of these
    values = (getattr(event, name) for name in _COLUMNS[1:])
    return (_utc_text(event.at), *(None if v is None else str(v) for v in values))


def _event(row: Sequence[str]) -> AuditEvent:
    at = datetime.strptime(row[0], _AT_FORMAT).replace(tzinfo=UTC)
    return AuditEvent(at, AuditKind(row[1]), *row[2:])
