"""The answer page's attempt limit per client address (the page has no login), counted where the
adapter keeps its state (adapter/database.py): the shared database when SIP_FHIR_DATABASE_URL is
set, so N `serve` replicas behind a load balancer allow an address `limit` attempts in all, not
N times `limit`; else <data_dir>/survey.sqlite (one machine).

A sliding window: `limit` attempts per `window` seconds per address. Each attempt is a row
(`survey_attempt`); rows older than the window are deleted by every attempt, so the table holds
at most the last window's attempts whatever the number of addresses. The address is never
stored: a row holds an HMAC-SHA256 of it under a random key kept in the same database
(`survey_attempt_key`, made by the first process), so a copy of the attempts table alone tells
nobody which addresses tried (a plain hash of an IPv4 address is reversed by trying all 2^32).
Times are wall-clock seconds (hosts need NTP, as for the sessions' expiry).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import (
    Column,
    Connection,
    Float,
    Index,
    Integer,
    MetaData,
    Table,
    Text,
    delete,
    func,
    insert,
    select,
)

from adapter.database import is_postgres, open_tables, state_url, url_of
from adapter.settings import Settings

SQLITE_FILE = "survey.sqlite"  # beside the survey codes
WINDOW = 600.0  # seconds: the setting is survey_attempts_per_10min
_METADATA = MetaData()
_ATTEMPT = Table(
    "survey_attempt",
    _METADATA,
    Column("address_hmac", Text, nullable=False),
    Column("at", Float, nullable=False),  # wall clock, seconds since the epoch
    Index("survey_attempt_address", "address_hmac", "at"),
    Index("survey_attempt_at", "at"),
)
_KEY = Table(
    "survey_attempt_key",
    _METADATA,
    Column("id", Integer, primary_key=True),  # one row, id 1
    Column("hmac_key", Text, nullable=False),
)
# The high half of this module's advisory lock keys (any fixed number): one address's count and
# insert at a time across processes.
_ATTEMPT_LOCK_CLASS = 0x5F1F_5A7


class RateLimit:
    """The attempt counts: a SQLite file (a Path) or a database URL (a str)."""

    def __init__(
        self,
        target: Path | str,
        *,
        limit: int = 10,
        window: float = WINDOW,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.url = url_of(target)
        self.limit = limit
        self.window = window
        self._clock = clock
        self._engine = open_tables(self.url, _METADATA)
        self._postgres = is_postgres(self.url)
        self._local = threading.Lock()  # SQLite: one process; its threads one at a time
        self._key = self._hmac_key()

    @classmethod
    def for_settings(cls, settings: Settings) -> RateLimit:
        return cls(
            state_url(settings, SQLITE_FILE),
            limit=settings.survey_attempts_per_10min,
            window=WINDOW,
        )

    def allow(self, address: str) -> bool:
        """Count an attempt by `address`; False when it is over the limit (then not counted)."""
        digest = hmac.new(self._key, address.encode(), hashlib.sha256).hexdigest()
        now = self._clock()
        since = now - self.window
        with self._local, self._engine.begin() as connection:
            self._expire(connection, since)
            if self._postgres:
                connection.execute(select(func.pg_advisory_xact_lock(_lock_key(digest))))
            counted = connection.execute(
                select(func.count()).where(_ATTEMPT.c.address_hmac == digest, _ATTEMPT.c.at > since)
            ).scalar_one()
            if counted >= self.limit:
                return False
            connection.execute(insert(_ATTEMPT).values(address_hmac=digest, at=now))
            return True

    def _expire(self, connection: Connection, since: float) -> None:
        """Delete the rows older than the window. On PostgreSQL one process at a time does it
        (the others skip: two DELETEs of the same rows in another order could deadlock); on
        SQLite this write also takes the database's write lock, which serialises the count."""
        if self._postgres:
            sweep = select(func.pg_try_advisory_xact_lock(_lock_key("survey_attempt sweep")))
            if not connection.execute(sweep).scalar():
                return
        connection.execute(delete(_ATTEMPT).where(_ATTEMPT.c.at <= since))

    def addresses(self) -> int:
        """How many addresses have attempts in the table (for tests and diagnostics)."""
        with self._engine.connect() as connection:
            query = select(func.count(func.distinct(_ATTEMPT.c.address_hmac)))
            return int(connection.execute(query).scalar_one())

    def _hmac_key(self) -> bytes:
        with self._engine.begin() as connection:
            stored = _stored_key(connection)
            if stored is None:
                if self._postgres:  # two first processes at once: one key
                    lock = _lock_key("survey_attempt_key")
                    connection.execute(select(func.pg_advisory_xact_lock(lock)))
                    stored = _stored_key(connection)
                if stored is None:
                    stored = secrets.token_hex(32)
                    connection.execute(insert(_KEY).values(id=1, hmac_key=stored))
        return bytes.fromhex(stored)


def _stored_key(connection: Connection) -> str | None:
    found = connection.execute(select(_KEY.c.hmac_key).where(_KEY.c.id == 1)).scalar()
    return None if found is None else str(found)


def _lock_key(name: str) -> int:
    """A transaction-level advisory lock key for `name` (an address digest, or a task)."""
    number = int.from_bytes(hashlib.sha256(name.encode()).digest()[:4], signed=True)
    return (_ATTEMPT_LOCK_CLASS << 32) ^ (number & 0xFFFF_FFFF)
