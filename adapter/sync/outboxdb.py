"""Where the outbox keeps its tables: a SQLite file in the data directory (the default) or the
shared PostgreSQL database (`SIP_FHIR_DATABASE_URL`). One seam for what differs between them.

The outbox's SQL is the same on both (ON CONFLICT upserts, RETURNING, row values). What differs:
- the tables' DDL (PostgreSQL: own schema `outbox`, so the shared database's other stores cannot
  clash; BIGINT, DOUBLE PRECISION, identity columns);
- how writers exclude each other. SQLite has one writer at a time (`BEGIN IMMEDIATE`), so a claim
  reads and marks without row locks. PostgreSQL runs writers side by side (READ COMMITTED): a
  claim locks the rows it takes with `FOR NO KEY UPDATE SKIP LOCKED` (rows another claim holds are
  passed over, never waited for), an upsert locks the row it read, and a transaction PostgreSQL
  picks as a deadlock victim is run again;
- the column that tells insertion order (SQLite's rowid, PostgreSQL's `seq`);
- the driver's parameter style (the outbox writes `:name`; psycopg wants `%(name)s`).

SQLAlchemy (adapter/database.py) owns the engines and pools; statements run on the driver's own
cursor (`Tx`): the outbox runs several statements per resource, and SQLAlchemy's per-statement
work would cost more than SQLite's.
"""

from __future__ import annotations

import random
import re
import sqlite3
import threading
import time
from collections import namedtuple
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeVar

from psycopg import errors as pg_errors
from psycopg.rows import namedtuple_row
from sqlalchemy import Connection, Engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from adapter import database

T = TypeVar("T")
Params = Mapping[str, Any]

PG_SCHEMA = "outbox"
# Serialises the table setup of processes that start at once (PostgreSQL's CREATE ... IF NOT
# EXISTS is not safe against a concurrent one). Any fixed number unique to the outbox.
_SETUP_LOCK = 0x0B0C_5E70
# Serialises the outbox's bulk writers (enqueue, requeue, ...) across processes, as SQLite's one
# writer does: two imports of overlapping files in opposite orders would otherwise lock the same
# rows in opposite orders, transaction after transaction. Claims and confirmations do not take it.
_BULK_LOCK = 0x0B0C_B01C
# Deadlock victim or serialization failure: the transaction is run again.
_RETRY_ERRORS = (pg_errors.DeadlockDetected, pg_errors.SerializationFailure)
_RETRIES = 8
_BUSY_TIMEOUT_MS = 60_000

_SQLITE_DDL = (
    """CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
)""",
    """CREATE TABLE IF NOT EXISTS resource (
    match_url      TEXT PRIMARY KEY,          -- Type?identifier=system|value
    resource_type  TEXT NOT NULL,
    id_system      TEXT NOT NULL,
    id_value       TEXT NOT NULL,
    body           TEXT NOT NULL,             -- canonical JSON of the resource
    hash           TEXT NOT NULL,             -- sha256 of body
    create_only    INTEGER NOT NULL DEFAULT 0,-- write with If-None-Exist, never overwrite
    state          TEXT NOT NULL CHECK (state IN ('pending', 'in_flight', 'done', 'dead')),
    synced_hash    TEXT,                      -- hash of the content the server last confirmed
    server_id      TEXT,
    server_version TEXT,
    source_version INTEGER,                   -- plans: the source system's version
    attempts       INTEGER NOT NULL DEFAULT 0,
    last_error     TEXT,                      -- masked; the server's OperationOutcome message
    claim          TEXT,                      -- worker sending it (state in_flight)
    claimed_at     REAL,
    record_id      INTEGER,                   -- last record that changed it
    updated_at     TEXT NOT NULL
)""",
    "CREATE INDEX IF NOT EXISTS resource_state ON resource (state)",
    """CREATE TABLE IF NOT EXISTS record (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at TEXT NOT NULL
)""",
    """CREATE TABLE IF NOT EXISTS member (
    record_id INTEGER NOT NULL REFERENCES record (id) ON DELETE CASCADE,
    position  INTEGER NOT NULL,
    match_url TEXT NOT NULL REFERENCES resource (match_url),
    PRIMARY KEY (record_id, position)
)""",
    "CREATE INDEX IF NOT EXISTS member_match_url ON member (match_url)",
    """CREATE TABLE IF NOT EXISTS server (
    base_url   TEXT PRIMARY KEY,              -- the FHIR server this outbox writes to
    epoch      TEXT NOT NULL,                 -- value of the marker's business identifier there
    generation INTEGER NOT NULL,              -- the marker's count of runs that wrote
    marker_id  TEXT,                          -- the marker's logical id on the server
    updated_at TEXT NOT NULL
)""",
    """CREATE TABLE IF NOT EXISTS source_seen (
    digest    TEXT PRIMARY KEY,               -- sha256 of a source record's content
    resources INTEGER NOT NULL                -- how many resources it mapped to
) WITHOUT ROWID""",
)

# The same tables on PostgreSQL (the columns as above; `seq` stands in for SQLite's rowid).
_POSTGRES_DDL = (
    f"CREATE SCHEMA IF NOT EXISTS {PG_SCHEMA}",
    f"""CREATE TABLE IF NOT EXISTS {PG_SCHEMA}.meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
)""",
    f"""CREATE TABLE IF NOT EXISTS {PG_SCHEMA}.resource (
    match_url      TEXT PRIMARY KEY,
    resource_type  TEXT NOT NULL,
    id_system      TEXT NOT NULL,
    id_value       TEXT NOT NULL,
    body           TEXT NOT NULL,
    hash           TEXT NOT NULL,
    create_only    INTEGER NOT NULL DEFAULT 0,
    state          TEXT NOT NULL CHECK (state IN ('pending', 'in_flight', 'done', 'dead')),
    synced_hash    TEXT,
    server_id      TEXT,
    server_version TEXT,
    source_version BIGINT,
    attempts       INTEGER NOT NULL DEFAULT 0,
    last_error     TEXT,
    claim          TEXT,
    claimed_at     DOUBLE PRECISION,
    record_id      BIGINT,
    updated_at     TEXT NOT NULL,
    seq            BIGINT GENERATED ALWAYS AS IDENTITY
)""",
    f"CREATE INDEX IF NOT EXISTS resource_state ON {PG_SCHEMA}.resource (state)",
    f"""CREATE TABLE IF NOT EXISTS {PG_SCHEMA}.record (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    created_at TEXT NOT NULL
)""",
    f"""CREATE TABLE IF NOT EXISTS {PG_SCHEMA}.member (
    record_id BIGINT NOT NULL REFERENCES {PG_SCHEMA}.record (id) ON DELETE CASCADE,
    position  INTEGER NOT NULL,
    match_url TEXT NOT NULL REFERENCES {PG_SCHEMA}.resource (match_url),
    PRIMARY KEY (record_id, position)
)""",
    f"CREATE INDEX IF NOT EXISTS member_match_url ON {PG_SCHEMA}.member (match_url)",
    f"""CREATE TABLE IF NOT EXISTS {PG_SCHEMA}.server (
    base_url   TEXT PRIMARY KEY,
    epoch      TEXT NOT NULL,
    generation BIGINT NOT NULL,
    marker_id  TEXT,
    updated_at TEXT NOT NULL
)""",
    f"""CREATE TABLE IF NOT EXISTS {PG_SCHEMA}.source_seen (
    digest    TEXT PRIMARY KEY,
    resources INTEGER NOT NULL
)""",
)


class Result:
    """What one statement returned (the few methods of SQLAlchemy's result the outbox uses)."""

    def __init__(self, cursor: Any) -> None:
        self._cursor = cursor

    @property
    def rowcount(self) -> int:
        return int(self._cursor.rowcount)

    def __iter__(self) -> Iterator[Any]:
        return iter(self.fetchall())

    def fetchall(self) -> list[Any]:
        return list(self._cursor.fetchall())

    def first(self) -> Any:
        return self._cursor.fetchone()

    def scalar(self) -> Any:
        row = self.first()
        return None if row is None else row[0]


class Tx:
    """The statements of one transaction (or one read), on the driver's own cursor: `:name`
    parameters, rows with attribute and index access."""

    def __init__(self, cursor: Any, style: Callable[[str], str]) -> None:
        self._cursor = cursor
        self._style = style

    def execute(self, sql: str, params: Params | Sequence[Params] | None = None) -> Result:
        """One statement; with a list of parameter sets, once per set."""
        if isinstance(params, Sequence):
            if params:
                self._cursor.executemany(self._style(sql), params)
        else:
            self._cursor.execute(self._style(sql), params or {})
        return Result(self._cursor)


Work = Callable[[Tx], T]


def in_list(name: str, values: Iterable[Any]) -> tuple[str, dict[str, Any]]:
    """`(:name0, :name1, ...)` and its parameters, for `IN` (both drivers)."""
    params = {f"{name}{i}": value for i, value in enumerate(values)}
    return "(" + ", ".join(f":{key}" for key in params) + ")", params


class OutboxDb:
    """The outbox's database: transactions and the few SQL fragments that differ."""

    # Appended to a claim's SELECT of the resources it takes, and to an upsert's of the row it
    # is about to change.
    claim_lock = ""
    row_lock = ""
    # Claims read without locks, then lock what they take, skipping rows others hold.
    skips_locked = False
    insertion_order = "rowid"

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine: Engine = database.engine(url)

    @staticmethod
    def open(url: str) -> OutboxDb:
        return PostgresOutboxDb(url) if database.is_postgres(url) else SqliteOutboxDb(url)

    def sqlite_path(self) -> Path | None:
        """The SQLite file, if that is where the outbox lives."""
        return None

    def where(self) -> str:
        """The database, for messages (no password)."""
        return make_url(self.url).render_as_string(hide_password=True)

    def write(self, work: Work[T]) -> T:
        """Run `work` in a writing transaction; committed when it returns."""
        raise NotImplementedError

    def read(self, work: Work[T]) -> T:
        raise NotImplementedError

    def setup(self, version: str) -> str | None:
        """Create the tables where missing and stamp `version` on a new outbox; the version
        found instead, if another (then nothing is touched)."""

        def run(db: Tx) -> str | None:
            self._setup_lock(db)
            if self._has_meta(db):
                found = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").scalar()
                if found is not None and found != version:
                    return str(found)
            for statement in self._ddl():
                db.execute(statement)
            db.execute(
                "INSERT INTO meta (key, value) VALUES ('schema_version', :version)"
                " ON CONFLICT (key) DO NOTHING",
                {"version": version},
            )
            return None

        return self.write(run)

    def bulk_lock(self, db: Tx) -> None:
        """Wait until no other process runs a bulk write (SQLite: a writer is alone anyway)."""

    def _setup_lock(self, db: Tx) -> None:
        pass

    def _has_meta(self, db: Tx) -> bool:
        raise NotImplementedError

    def _ddl(self) -> tuple[str, ...]:
        raise NotImplementedError


@lru_cache(maxsize=64)
def _row_class(names: tuple[str, ...]) -> Any:
    return namedtuple("Row", names, rename=True)  # columns are known only at run time


def _sqlite_row(cursor: sqlite3.Cursor, values: tuple[Any, ...]) -> Any:
    return _row_class(tuple(column[0] for column in cursor.description))(*values)


def _same(sql: str) -> str:
    return sql


class FifoLock:
    """A lock granted in the order it was asked for.

    SQLite's own wait for its write lock is polling (sleeps of up to 100 ms between tries), so a
    thread that commits and at once begins again nearly always wins: during a 100 000-patient
    import the reader, staging one chunk after another, held the file's lock for minutes while
    the four sending workers waited (nothing was sent until reading ended). Writers of one process
    queue here first, so each gets the file in turn; other processes still meet SQLite's wait.
    """

    def __init__(self) -> None:
        self._turn = threading.Condition()
        self._issued = 0
        self._serving = 0

    def __enter__(self) -> None:
        with self._turn:
            ticket = self._issued
            self._issued += 1
            self._turn.wait_for(lambda: self._serving == ticket)

    def __exit__(self, *_exc: object) -> None:
        with self._turn:
            self._serving += 1
            self._turn.notify_all()


_WRITERS: dict[str, FifoLock] = {}
_WRITERS_LOCK = threading.Lock()


def _writer_queue(url: str) -> FifoLock:
    """One queue per file in this process, whichever SqliteOutboxDb opened it."""
    with _WRITERS_LOCK:
        return _WRITERS.setdefault(url, FifoLock())


class SqliteOutboxDb(OutboxDb):
    """One file, one writer at a time: every writing transaction is `BEGIN IMMEDIATE`, and the
    writers of this process take their turns in order (FifoLock)."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        # Transactions are explicit (BEGIN IMMEDIATE) so the write lock is taken at the start.
        self._autocommit = self.engine.execution_options(isolation_level="AUTOCOMMIT")
        self._queue = _writer_queue(url)

    def write(self, work: Work[T]) -> T:
        with self._queue, self._autocommit.connect() as connection:
            db = self._tx(connection)
            db.execute("BEGIN IMMEDIATE")
            try:
                done = work(db)
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
            return done

    def read(self, work: Work[T]) -> T:
        with self._autocommit.connect() as connection:
            return work(self._tx(connection))

    @staticmethod
    def _tx(connection: Connection) -> Tx:
        raw: Any = connection.connection.driver_connection
        info = connection.connection.info
        if not info.get("outbox_pragmas"):
            raw.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
            # FULL: a commit survives power loss, not just a killed process; commits are per
            # chunk and per Bundle, so the fsync costs little.
            raw.execute("PRAGMA synchronous = FULL")
            raw.execute("PRAGMA foreign_keys = ON")
            info["outbox_pragmas"] = True
        cursor = raw.cursor()
        cursor.row_factory = _sqlite_row
        return Tx(cursor, _same)

    def sqlite_path(self) -> Path | None:
        return Path(make_url(self.url).database or "")

    def _has_meta(self, db: Tx) -> bool:
        query = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'"
        found = db.execute(query).first()
        return found is not None

    def _ddl(self) -> tuple[str, ...]:
        return _SQLITE_DDL


_NAMED = re.compile(r"(?<![:\w]):([a-z_][a-z0-9_]*)")


@lru_cache(maxsize=256)
def _pyformat(sql: str) -> str:
    """`:name` → `%(name)s`, psycopg's style."""
    return _NAMED.sub(r"%(\1)s", sql)


class PostgresOutboxDb(OutboxDb):
    """The shared database: many writers at once, row locks, short transactions."""

    claim_lock = " FOR NO KEY UPDATE SKIP LOCKED"
    row_lock = " FOR NO KEY UPDATE"
    skips_locked = True
    insertion_order = "seq"

    def write(self, work: Work[T]) -> T:
        for attempt in range(_RETRIES):
            try:
                return self._once(work)
            except (*_RETRY_ERRORS, DBAPIError) as error:
                retry = isinstance(getattr(error, "orig", error), _RETRY_ERRORS)
                if not retry or attempt == _RETRIES - 1:
                    raise
                time.sleep(random.uniform(0.01, 0.05) * (attempt + 1))  # noqa: S311
        raise AssertionError("unreachable")

    def read(self, work: Work[T]) -> T:
        return self._once(work)

    def _once(self, work: Work[T]) -> T:
        with self.engine.begin() as connection:
            raw: Any = connection.connection.driver_connection
            with raw.cursor(row_factory=namedtuple_row) as cursor:
                db = Tx(cursor, _pyformat)
                # The outbox's SQL names its tables unqualified: they are in its own schema.
                db.execute(f"SET LOCAL search_path TO {PG_SCHEMA}")
                return work(db)

    def bulk_lock(self, db: Tx) -> None:
        db.execute("SELECT pg_advisory_xact_lock(:key)", {"key": _BULK_LOCK})

    def _setup_lock(self, db: Tx) -> None:
        db.execute("SELECT pg_advisory_xact_lock(:key)", {"key": _SETUP_LOCK})

    def _has_meta(self, db: Tx) -> bool:
        return db.execute(f"SELECT to_regclass('{PG_SCHEMA}.meta')").scalar() is not None

    def _ddl(self) -> tuple[str, ...]:
        return _POSTGRES_DDL
