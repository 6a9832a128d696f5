"""Where the adapter keeps its own state: one SQLAlchemy engine per database URL.

Without `SIP_FHIR_DATABASE_URL` every store keeps its SQLite file in the data directory (one
machine, one process family). With it, every store shares that database (PostgreSQL), so several
`sip-fhir serve` and `import` processes on several machines see one outbox, one audit log, one
scheduler job store, one set of worklist sessions and one read model.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from pathlib import Path

from sqlalchemy import Engine, MetaData, create_engine, event, func, select
from sqlalchemy.engine import make_url
from tenacity import Retrying, retry_if_exception, stop_after_delay, wait_random

from adapter.settings import Settings

_ENGINES: dict[str, Engine] = {}
_LOCK = threading.Lock()


def state_url(settings: Settings, sqlite_file: str) -> str:
    """The shared database when one is set, else `<data_dir>/<sqlite_file>`."""
    if settings.database_url is not None:
        return settings.database_url.get_secret_value()
    return sqlite_url(settings.data_dir / sqlite_file)


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


def url_of(target: Path | str) -> str:
    """A store's database: a SQLite file given as a path, or a database URL as it is."""
    return sqlite_url(target) if isinstance(target, Path) else target


def is_postgres(url: str) -> bool:
    return make_url(url).get_backend_name() == "postgresql"


def engine(url: str) -> Engine:
    """One pooled engine per URL for the whole process (threads share it)."""
    with _LOCK:
        found = _ENGINES.get(url)
        if found is None:
            found = _ENGINES[url] = _create(url)
        return found


# Any fixed 64-bit number: serialises table setup of processes that start at the same moment
# (PostgreSQL's CREATE TABLE IF NOT EXISTS is not safe against a concurrent one).
_SETUP_LOCK = 0x5F1F_5E70


def open_tables(url: str, metadata: MetaData) -> Engine:
    """The engine of `url` with `metadata`'s tables (and indexes) created where missing.

    A new SQLite file is created readable by its owner only: the stores hold personnummer,
    session data or survey handouts. On PostgreSQL the database's own grants apply.
    """
    if not is_postgres(url):
        path = make_url(url).database
        if path and path != ":memory:" and not Path(path).exists():
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
    made = engine(url)
    if is_postgres(url):
        with made.begin() as connection:
            connection.execute(select(func.pg_advisory_xact_lock(_SETUP_LOCK)))
            metadata.create_all(connection)
        return made
    # SQLite: the write lock from the start, so a second process opening the same new file waits
    # and then finds the tables (a deferred transaction let both create them: "already exists").
    with made.execution_options(isolation_level="AUTOCOMMIT").connect() as connection:
        connection.exec_driver_sql("BEGIN IMMEDIATE")
        try:
            metadata.create_all(connection)
        except BaseException:
            connection.exec_driver_sql("ROLLBACK")
            raise
        connection.exec_driver_sql("COMMIT")
    return made


def dispose_all() -> None:
    """Close every pool: after a fork, and at the end of tests that drop their database."""
    with _LOCK:
        for made in _ENGINES.values():
            made.dispose()
        _ENGINES.clear()


def _create(url: str) -> Engine:
    if is_postgres(url):
        # pre_ping: a pooled connection the database closed (restart, idle timeout) is replaced
        # before use instead of failing the request that drew it.
        return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10)
    path = make_url(url).database
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    made = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})
    event.listen(made, "connect", _sqlite_pragmas)
    return made


def _locked(error: BaseException) -> bool:
    return isinstance(error, sqlite3.OperationalError) and "locked" in str(error)


def _sqlite_pragmas(connection: object, _record: object) -> None:
    cursor = connection.cursor()  # type: ignore[attr-defined]
    try:
        cursor.execute("PRAGMA busy_timeout=30000")
        # Switching the journal mode takes no busy wait: a file another connection is closing
        # (its last checkpoint) answers "database is locked" at once. WAL stays set in the file,
        # so it is asked first and only set where missing, with retries for the first opening.
        for attempt in Retrying(
            retry=retry_if_exception(_locked),
            stop=stop_after_delay(30),
            wait=wait_random(0.01, 0.2),
            reraise=True,
        ):
            with attempt:
                if cursor.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                    cursor.execute("PRAGMA journal_mode=WAL")  # readers never wait for the writer
    finally:
        cursor.close()
