"""The durable outbox: mapped resources wait here (SQLite, WAL) until the server has them.

Every mapped resource is committed here before any network write, keyed by its match URL
(`Type?identifier=system|value`), so a crash or kill at any moment loses nothing: the next
`import` or `sync` finds the rest still pending and, the writes being conditional on business
identifiers, re-sending what may already have landed changes nothing on the server.

Tables
- `resource`: one row per business key: the resource (canonical JSON), its content hash, state
  (pending / in_flight / done / dead), the hash last confirmed on the server, the server id and
  version, attempts, last error, and the claim of the worker sending it.
- `record` + `member`: the source records whose resources still need a write, and which
  resources each holds, in the mapping's order (dependencies first). Records are the unit of
  batching: all resources of one record travel in the same transaction Bundle. A record is
  deleted once none of its resources is pending or in flight.
- `server`: per server base URL, the identity (epoch) of the marker the adapter keeps there and
  how many writing runs it has counted (`adapter/sync/servercheck.py`): a server that lost its
  data is noticed, and what the outbox believed it holds is sent again.
- `source_seen`: digests of source records already mapped into the outbox (with the mapping
  fingerprint in `meta`): a re-import of an unchanged row skips mapping altogether.

Several threads and processes may share one outbox: claims happen inside `BEGIN IMMEDIATE`
transactions, so two workers never send the same resource at the same time, and a record whose
resource another worker is sending waits until that write is done.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol, TypeVar

from adapter.jsontext import canonical_json

SCHEMA_VERSION = "1"  # checked on open: another version's outbox is refused, never guessed at
OUTBOX_FILE = "outbox.sqlite3"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS resource (
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
);
CREATE INDEX IF NOT EXISTS resource_state ON resource (state);
CREATE TABLE IF NOT EXISTS record (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS member (
    record_id INTEGER NOT NULL REFERENCES record (id) ON DELETE CASCADE,
    position  INTEGER NOT NULL,
    match_url TEXT NOT NULL REFERENCES resource (match_url),
    PRIMARY KEY (record_id, position)
);
CREATE INDEX IF NOT EXISTS member_match_url ON member (match_url);
CREATE TABLE IF NOT EXISTS server (
    base_url   TEXT PRIMARY KEY,              -- the FHIR server this outbox writes to
    epoch      TEXT NOT NULL,                 -- value of the marker's business identifier there
    generation INTEGER NOT NULL,              -- the marker's count of runs that wrote
    marker_id  TEXT,                          -- the marker's logical id on the server
    updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS source_seen (
    digest    TEXT PRIMARY KEY,               -- sha256 of a source record's content
    resources INTEGER NOT NULL                -- how many resources it mapped to
) WITHOUT ROWID;
"""

# How long a claim holds before another worker may take the resources over, unless its owner is
# a process on this host that is gone (then at once). Longer than one request's retry budget.
DEFAULT_LEASE_SECONDS = 600.0
_BUSY_TIMEOUT_MS = 60_000
_SCAN_WINDOW = 256


class OutboxVersionError(ValueError):
    """The outbox file has another schema version than this sip-fhir reads (message Swedish)."""

    def __init__(self, path: Path, found: str) -> None:
        super().__init__(
            f"Utkorgen {path} har schemaversion {found}, men den här versionen av sip-fhir läser "
            f"version {SCHEMA_VERSION}. Skicka klart kön med den sip-fhir som skrev den "
            "(sip-fhir sync), eller flytta filen åt sidan; den öppnas inte."
        )
        self.path = path
        self.found = found


class State(StrEnum):
    PENDING = "pending"
    IN_FLIGHT = "in_flight"
    DONE = "done"
    DEAD = "dead"


class Writable(Protocol):
    """What the outbox stores: `adapter.mapping.MappedResource` fits."""

    @property
    def resource_type(self) -> str: ...
    @property
    def identifier_system(self) -> str: ...
    @property
    def identifier_value(self) -> str: ...
    @property
    def resource(self) -> dict[str, Any]: ...
    @property
    def create_only(self) -> bool: ...
    @property
    def match_url(self) -> str: ...


def content_hash(body: str) -> str:
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    """One resource of a claimed batch, as stored."""

    match_url: str
    resource_type: str
    identifier_system: str
    identifier_value: str
    body: str
    hash: str
    create_only: bool
    server_version: str | None

    @property
    def resource(self) -> dict[str, Any]:
        return json.loads(self.body)  # type: ignore[no-any-return]


@dataclass(slots=True)
class Batch:
    """Resources claimed by one worker: grouped by source record, dependencies first."""

    claim: str
    groups: list[list[OutboxEntry]]
    record_ids: list[int]

    @property
    def entries(self) -> list[OutboxEntry]:
        return [entry for group in self.groups for entry in group]

    def __len__(self) -> int:
        return sum(len(group) for group in self.groups)


@dataclass(frozen=True, slots=True)
class Written:
    """The server's answer for one sent entry."""

    entry: OutboxEntry
    server_id: str | None
    server_version: str | None


@dataclass(slots=True)
class EnqueueResult:
    """What one `enqueue` call did, in resources (records for `older_skipped`)."""

    queued: int = 0  # new or changed: they need a write
    unchanged: int = 0  # identical to what the server (or the outbox) already has
    older_skipped: int = 0  # records of an older plan version than one already seen

    def add(self, other: EnqueueResult) -> None:
        self.queued += other.queued
        self.unchanged += other.unchanged
        self.older_skipped += other.older_skipped


@dataclass(frozen=True, slots=True)
class ServerEpoch:
    """The adapter's marker on one server: its identifier value and the runs it has counted."""

    epoch: str
    generation: int
    marker_id: str | None


@dataclass(frozen=True, slots=True)
class Believed:
    """A resource the outbox believes the server holds (state done)."""

    match_url: str
    resource_type: str
    identifier_system: str
    identifier_value: str
    server_id: str | None
    server_version: str | None


_BELIEVED_COLUMNS = "match_url, resource_type, id_system, id_value, server_id, server_version"


@dataclass(frozen=True, slots=True)
class DeadLetter:
    match_url: str
    resource_type: str
    error: str
    attempts: int
    updated_at: str


@dataclass(slots=True)
class OutboxStats:
    counts: dict[State, int] = field(default_factory=dict)

    @property
    def open(self) -> int:
        """Still to be written: pending or in flight."""
        return self.counts.get(State.PENDING, 0) + self.counts.get(State.IN_FLIGHT, 0)


@dataclass(frozen=True, slots=True)
class ClaimToken:
    """Who sends a batch: host and pid tell a dead local owner from a live one."""

    host: str
    pid: int
    nonce: str

    def __str__(self) -> str:
        return f"{self.host}:{self.pid}:{self.nonce}"

    @classmethod
    def new(cls) -> ClaimToken:
        return cls(socket.gethostname(), os.getpid(), uuid.uuid4().hex[:12])

    @classmethod
    def parse(cls, text: str) -> ClaimToken | None:
        parts = text.rsplit(":", 2)
        if len(parts) != 3 or not parts[1].isdigit():
            return None
        return cls(parts[0], int(parts[1]), parts[2])


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _now_text() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


VersionOf = Callable[[Writable], int | None]
# A record's resources and the bodies stored so far (by match URL) → the resources it makes stale,
# rewritten (e.g. the Goals a new plan version dropped, cancelled); written with the record.
StaleOf = Callable[[Sequence[Writable], Callable[[str], dict[str, Any] | None]], Sequence[Writable]]


def _no_version(_resource: Writable) -> int | None:
    return None


def _nothing_stale(
    _resources: Sequence[Writable], _stored: Callable[[str], dict[str, Any] | None]
) -> Sequence[Writable]:
    return ()


class Outbox:
    """The outbox in `path` (created on first use). Safe to share between threads.

    `version_of` tells the source version of a resource (plans: CarePlan), or None; a record
    holding an older version than the one already stored for the same key is skipped whole.
    `stale_of` adds to a record what it makes stale (see StaleOf), judged against what is stored.
    """

    def __init__(
        self,
        path: Path,
        *,
        version_of: VersionOf = _no_version,
        stale_of: StaleOf = _nothing_stale,
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = path
        self._version_of = version_of
        self._stale_of = stale_of
        self._lease = lease_seconds
        self._clock = clock
        self._local = threading.local()
        self._host = socket.gethostname()
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            # It holds personal data (personnummer in the resources): owner only.
            path.touch(mode=0o600)
        self._init_schema()

    def version_of(self, resource: Writable) -> int | None:
        """The source version of `resource` by this outbox's rule (plans: CarePlan), or None."""
        return self._version_of(resource)

    @classmethod
    def in_dir(cls, data_dir: Path, **kwargs: Any) -> Outbox:
        return cls(data_dir / OUTBOX_FILE, **kwargs)

    # --- connections ---

    def _connection(self) -> sqlite3.Connection:
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            # Autocommit mode: transactions are explicit (BEGIN IMMEDIATE) so locks are taken early.
            db = sqlite3.connect(self.path, timeout=_BUSY_TIMEOUT_MS / 1000, isolation_level=None)
            db.row_factory = sqlite3.Row
            db.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
            db.execute("PRAGMA journal_mode = WAL")
            # FULL: a commit survives power loss, not just a killed process; commits are per
            # chunk and per Bundle, so the fsync costs little.
            db.execute("PRAGMA synchronous = FULL")
            db.execute("PRAGMA foreign_keys = ON")
            self._local.db = db
        return db

    def close(self) -> None:
        """Close this thread's connection (other threads close theirs when they end)."""
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        db = self._connection()
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def _init_schema(self) -> None:
        db = self._connection()
        self._check_version(db)
        db.executescript(f"BEGIN IMMEDIATE;\n{_SCHEMA}\nCOMMIT;")
        with self._transaction() as db:
            db.execute(
                "INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?)",
                (SCHEMA_VERSION,),
            )
            self._repair_orphans(db)

    def _check_version(self, db: sqlite3.Connection) -> None:
        """An outbox written by another schema version is refused before anything touches it."""
        has_meta = db.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'"
        ).fetchone()
        if has_meta is None:
            return
        row = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        if row is not None and row["value"] != SCHEMA_VERSION:
            raise OutboxVersionError(self.path, str(row["value"]))

    @staticmethod
    def _repair_orphans(db: sqlite3.Connection) -> None:
        """Open resources outside any record (should not happen) get a record of their own."""
        orphans = db.execute(
            "SELECT match_url FROM resource r WHERE state IN ('pending', 'in_flight') "
            "AND NOT EXISTS (SELECT 1 FROM member m WHERE m.match_url = r.match_url)"
        ).fetchall()
        for row in orphans:
            record_id = _new_record(db)
            db.execute(
                "INSERT INTO member (record_id, position, match_url) VALUES (?, 0, ?)",
                (record_id, row["match_url"]),
            )

    # --- mapping fingerprint and seen source records ---

    def use_fingerprint(self, fingerprint: str) -> None:
        """Forget the seen source records when the mapping (code or data) changed."""
        with self._transaction() as db:
            row = db.execute("SELECT value FROM meta WHERE key = 'mapping_fingerprint'").fetchone()
            if row is None or row["value"] != fingerprint:
                db.execute("DELETE FROM source_seen")
                db.execute(
                    "INSERT OR REPLACE INTO meta (key, value) VALUES ('mapping_fingerprint', ?)",
                    (fingerprint,),
                )

    def seen(self, digests: Sequence[str]) -> dict[str, int]:
        """Those of `digests` already mapped into the outbox, with their number of resources."""
        found: dict[str, int] = {}
        db = self._connection()
        for start in range(0, len(digests), 500):
            chunk = digests[start : start + 500]
            marks = ",".join("?" * len(chunk))
            found.update(
                (row[0], row[1])
                for row in db.execute(
                    f"SELECT digest, resources FROM source_seen WHERE digest IN ({marks})",  # noqa: S608
                    chunk,
                )
            )
        return found

    # --- enqueue ---

    def enqueue(
        self, records: Iterable[Sequence[Writable]], *, force: bool = False
    ) -> EnqueueResult:
        """Store the mapped resources of several source records in one transaction.

        Each item is the resource list of one source record, dependencies first. Unchanged
        resources (same hash as stored) cost nothing; `force` re-queues them anyway (a write that
        the server then answers without a new version).
        """
        return self.enqueue_seen(((r, None) for r in records), force=force)

    def enqueue_seen(
        self, records: Iterable[tuple[Sequence[Writable], str | None]], *, force: bool = False
    ) -> EnqueueResult:
        """Like `enqueue`, each record with its source digest, remembered as seen."""
        result = EnqueueResult()
        with self._transaction() as db:
            for resources, digest in records:
                result.add(self._enqueue_record(db, resources, force))
                if digest is not None:
                    db.execute(
                        "INSERT OR REPLACE INTO source_seen (digest, resources) VALUES (?, ?)",
                        (digest, len(resources)),
                    )
        return result

    def _enqueue_record(
        self, db: sqlite3.Connection, resources: Sequence[Writable], force: bool
    ) -> EnqueueResult:
        result = EnqueueResult()
        if self._older_than_stored(db, resources):
            result.older_skipped = 1
            return result
        now = _now_text()
        open_members: list[str] = []
        stale = self._stale_of(resources, lambda url: self._stored_body(db, url))
        for resource in unique_by_key([*resources, *stale]):
            queued, state = self._upsert(db, resource, now, force)
            if queued:
                result.queued += 1
            elif state in (State.DONE, State.DEAD):
                result.unchanged += 1  # what the server holds (or refused): no write
            if state in (State.PENDING, State.IN_FLIGHT):
                open_members.append(resource.match_url)
        if result.queued:
            record_id = _new_record(db)
            db.executemany(
                "INSERT INTO member (record_id, position, match_url) VALUES (?, ?, ?)",
                ((record_id, i, url) for i, url in enumerate(open_members)),
            )
            db.executemany(
                "UPDATE resource SET record_id = ? WHERE match_url = ?",
                ((record_id, url) for url in open_members),
            )
        return result

    @staticmethod
    def _stored_body(db: sqlite3.Connection, match_url: str) -> dict[str, Any] | None:
        row = db.execute("SELECT body FROM resource WHERE match_url = ?", (match_url,)).fetchone()
        return None if row is None else json.loads(row["body"])

    def _older_than_stored(self, db: sqlite3.Connection, resources: Sequence[Writable]) -> bool:
        for resource in resources:
            version = self._version_of(resource)
            if version is None:
                continue
            row = db.execute(
                "SELECT source_version FROM resource WHERE match_url = ?", (resource.match_url,)
            ).fetchone()
            if row is not None and row["source_version"] is not None:
                if version < row["source_version"]:
                    return True
        return False

    def _upsert(
        self, db: sqlite3.Connection, resource: Writable, now: str, force: bool
    ) -> tuple[bool, State]:
        """Insert or update one resource: (needs a write it did not need before, its state)."""
        body = canonical_json(resource.resource)
        digest = content_hash(body)
        version = self._version_of(resource)
        row = db.execute(
            "SELECT hash, state, create_only, synced_hash FROM resource WHERE match_url = ?",
            (resource.match_url,),
        ).fetchone()
        if row is None:
            db.execute(
                "INSERT INTO resource (match_url, resource_type, id_system, id_value, body, hash,"
                " create_only, state, source_version, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?)",
                (
                    resource.match_url,
                    resource.resource_type,
                    resource.identifier_system,
                    resource.identifier_value,
                    body,
                    digest,
                    int(resource.create_only),
                    version,
                    now,
                ),
            )
            return True, State.PENDING
        state = State(row["state"])
        if resource.create_only and not row["create_only"]:
            return False, state  # a stub never replaces the full resource
        if row["create_only"] and resource.create_only and state is State.DONE and not force:
            return False, state  # the server has it; a create-only write would change nothing
        if row["hash"] == digest and not (force and state is State.DONE):
            return False, state
        if row["hash"] != digest and digest == row["synced_hash"] and state is not State.IN_FLIGHT:
            new_state = State.DONE  # back to what the server holds (an edit undone unsent)
        elif state is State.IN_FLIGHT:
            new_state = State.IN_FLIGHT  # its sender will see the new hash and leave it pending
        else:
            new_state = State.PENDING
        db.execute(
            "UPDATE resource SET body = ?, hash = ?, create_only = ?, source_version = ?,"
            " state = ?, attempts = 0, last_error = NULL, updated_at = ? WHERE match_url = ?",
            (
                body,
                digest,
                int(resource.create_only),
                version,
                new_state.value,
                now,
                resource.match_url,
            ),
        )
        return new_state is not State.DONE, new_state

    # --- claim, complete, release ---

    def claim(self, token: str, max_resources: int, *, min_resources: int = 1) -> ClaimResult:
        """Take whole records, oldest first, up to `max_resources` open resources.

        Records whose resources another live worker is sending are passed over (`blocked`).
        Fewer than `min_resources` claimable resources: nothing is taken (more may come).
        """
        groups: list[list[OutboxEntry]] = []
        record_ids: list[int] = []
        taken: set[str] = set()
        blocked = False
        with self._transaction() as db:
            for record_id in _record_ids(db):
                members = self._open_members(db, record_id)
                if not members:
                    db.execute("DELETE FROM record WHERE id = ?", (record_id,))
                    continue
                if any(self._held_elsewhere(row, token) for row in members):
                    blocked = True
                    continue
                fresh = [row for row in members if row["match_url"] not in taken]
                if taken and len(taken) + len(fresh) > max_resources:
                    break
                record_ids.append(record_id)
                if fresh:
                    groups.append([_entry(row) for row in fresh])
                    taken.update(row["match_url"] for row in fresh)
                if len(taken) >= max_resources:
                    break
            if len(taken) < max(min_resources, 1):
                return ClaimResult(None, blocked)
            now = self._clock()
            db.executemany(
                "UPDATE resource SET state = 'in_flight', claim = ?, claimed_at = ?"
                " WHERE match_url = ?",
                ((token, now, url) for url in taken),
            )
        return ClaimResult(Batch(token, groups, record_ids), blocked)

    @staticmethod
    def _open_members(db: sqlite3.Connection, record_id: int) -> list[sqlite3.Row]:
        return db.execute(
            "SELECT r.* FROM member m JOIN resource r ON r.match_url = m.match_url"
            " WHERE m.record_id = ? AND r.state IN ('pending', 'in_flight')"
            " ORDER BY m.position",
            (record_id,),
        ).fetchall()

    def _held_elsewhere(self, row: sqlite3.Row, token: str) -> bool:
        """In flight with a live claim of another worker."""
        if row["state"] != State.IN_FLIGHT or row["claim"] == token:
            return False
        if row["claimed_at"] is None or self._clock() - row["claimed_at"] > self._lease:
            return False
        owner = ClaimToken.parse(row["claim"] or "")
        if owner is not None and owner.host == self._host and not _process_alive(owner.pid):
            return False  # its process is gone: the claim died with it
        return True

    def complete(self, token: str, written: Sequence[Written]) -> None:
        """The server confirmed these writes; done unless changed meanwhile (then pending)."""
        now = _now_text()
        with self._transaction() as db:
            db.executemany(
                "UPDATE resource SET synced_hash = ?, server_id = coalesce(?, server_id),"
                " server_version = coalesce(?, server_version), attempts = attempts + 1,"
                " last_error = NULL, claim = NULL, claimed_at = NULL, updated_at = ?,"
                " state = CASE WHEN hash = ? THEN 'done' ELSE 'pending' END"
                " WHERE match_url = ? AND claim = ?",
                (
                    (
                        w.entry.hash,
                        w.server_id,
                        w.server_version,
                        now,
                        w.entry.hash,
                        w.entry.match_url,
                        token,
                    )
                    for w in written
                ),
            )

    def mark_dead(self, token: str, entry: OutboxEntry, error: str) -> None:
        """The server refuses this content: a dead letter until it changes or is retried."""
        with self._transaction() as db:
            db.execute(
                "UPDATE resource SET attempts = attempts + 1, last_error = ?, claim = NULL,"
                " claimed_at = NULL, updated_at = ?,"
                " state = CASE WHEN hash = ? THEN 'dead' ELSE 'pending' END"
                " WHERE match_url = ? AND claim = ?",
                (error, _now_text(), entry.hash, entry.match_url, token),
            )

    def skip_older(self, token: str, entries: Sequence[OutboxEntry], reason: str) -> None:
        """The server holds a newer version of their plan: settled unwritten, `reason` kept.

        Done, not dead: nothing to retry; a changed (newer) import makes them pending again.
        """
        with self._transaction() as db:
            db.executemany(
                "UPDATE resource SET last_error = ?, claim = NULL, claimed_at = NULL,"
                " updated_at = ?, state = CASE WHEN hash = ? THEN 'done' ELSE 'pending' END"
                " WHERE match_url = ? AND claim = ?",
                ((reason, _now_text(), e.hash, e.match_url, token) for e in entries),
            )

    def release(self, token: str, error: str | None = None) -> int:
        """Give back everything this worker still holds (a temporary error): pending again."""
        with self._transaction() as db:
            cursor = db.execute(
                "UPDATE resource SET state = 'pending', claim = NULL, claimed_at = NULL,"
                " attempts = attempts + 1, last_error = coalesce(?, last_error), updated_at = ?"
                " WHERE claim = ? AND state = 'in_flight'",
                (error, _now_text(), token),
            )
            return cursor.rowcount

    def close_records(self, record_ids: Sequence[int]) -> None:
        """Delete the records none of whose resources is open any more."""
        with self._transaction() as db:
            db.executemany(
                "DELETE FROM record WHERE id = ? AND NOT EXISTS ("
                " SELECT 1 FROM member m JOIN resource r ON r.match_url = m.match_url"
                " WHERE m.record_id = record.id AND r.state IN ('pending', 'in_flight'))",
                ((record_id,) for record_id in record_ids),
            )

    # --- what the server is believed to hold (servercheck.py) ---

    def server_epoch(self, base_url: str) -> ServerEpoch | None:
        row = (
            self._connection()
            .execute(
                "SELECT epoch, generation, marker_id FROM server WHERE base_url = ?", (base_url,)
            )
            .fetchone()
        )
        return None if row is None else ServerEpoch(row[0], int(row[1]), row[2])

    def record_server_epoch(self, base_url: str, epoch: ServerEpoch) -> None:
        with self._transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO server (base_url, epoch, generation, marker_id, updated_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (base_url, epoch.epoch, epoch.generation, epoch.marker_id, _now_text()),
            )

    def forget_server_epoch(self, base_url: str) -> None:
        with self._transaction() as db:
            db.execute("DELETE FROM server WHERE base_url = ?", (base_url,))

    def done_count(self) -> int:
        row = self._connection().execute("SELECT count(*) FROM resource WHERE state = 'done'")
        return int(row.fetchone()[0])

    def sample_done(self, size: int) -> list[Believed]:
        """Up to `size` resources the outbox believes the server holds, chosen at random."""
        rows = self._connection().execute(
            f"SELECT {_BELIEVED_COLUMNS} FROM resource WHERE state = 'done'"  # noqa: S608
            " ORDER BY random() LIMIT ?",
            (size,),
        )
        return [Believed(*row) for row in rows]

    def iter_done(self, chunk: int = 1000) -> Iterator[list[Believed]]:
        """Everything the outbox believes the server holds, by type, `chunk` rows at a time."""
        after = ("", "")
        while True:
            rows = (
                self._connection()
                .execute(
                    f"SELECT {_BELIEVED_COLUMNS} FROM resource WHERE state = 'done'"  # noqa: S608
                    " AND (resource_type, match_url) > (?, ?)"
                    " ORDER BY resource_type, match_url LIMIT ?",
                    (*after, chunk),
                )
                .fetchall()
            )
            if not rows:
                return
            yield [Believed(*row) for row in rows]
            after = (rows[-1][1], rows[-1][0])

    def requeue(self, match_urls: Iterable[str] | None = None) -> int:
        """The server does not hold these (None: anything done): pending again, sent in records
        with the resources they refer to that are also requeued, dependencies first.

        The seen source records are forgotten too, so a re-import maps its rows again and counts
        them as written, not as unchanged.
        """
        with self._transaction() as db:
            if match_urls is None:
                wanted = {
                    r[0] for r in db.execute("SELECT match_url FROM resource WHERE state = 'done'")
                }
            else:
                wanted = set()
                for url in match_urls:
                    row = db.execute(
                        "SELECT state FROM resource WHERE match_url = ?", (url,)
                    ).fetchone()
                    if row is not None and row[0] == State.DONE:
                        wanted.add(url)
            if not wanted:
                return 0
            db.executemany(
                "UPDATE resource SET state = 'pending', synced_hash = NULL, server_id = NULL,"
                " server_version = NULL, attempts = 0, updated_at = ? WHERE match_url = ?",
                ((_now_text(), url) for url in wanted),
            )
            for members in _requeue_records(db, wanted):
                record_id = _new_record(db)
                db.executemany(
                    "INSERT INTO member (record_id, position, match_url) VALUES (?, ?, ?)",
                    ((record_id, i, url) for i, url in enumerate(members)),
                )
            db.execute("DELETE FROM source_seen")
        return len(wanted)

    def forget(self, resource_type: str, server_ids: Iterable[str]) -> int:
        """Deleted on the server on purpose (`purge`): the outbox no longer holds them, so a
        re-import maps and writes them again instead of calling them unchanged."""
        with self._transaction() as db:
            forgotten = 0
            for server_id in server_ids:
                urls = [
                    r[0]
                    for r in db.execute(
                        "SELECT match_url FROM resource WHERE resource_type = ? AND server_id = ?"
                        " AND state IN ('done', 'dead')",
                        (resource_type, server_id),
                    )
                ]
                for url in urls:
                    db.execute("DELETE FROM member WHERE match_url = ?", (url,))
                    db.execute("DELETE FROM resource WHERE match_url = ?", (url,))
                forgotten += len(urls)
            if forgotten:
                db.execute("DELETE FROM source_seen")
        return forgotten

    # --- dead letters and statistics ---

    def dead_letters(self) -> list[DeadLetter]:
        rows = self._connection().execute(
            "SELECT match_url, resource_type, last_error, attempts, updated_at FROM resource"
            " WHERE state = 'dead' ORDER BY updated_at, match_url"
        )
        return [
            DeadLetter(r["match_url"], r["resource_type"], r["last_error"] or "", *r[3:])
            for r in rows
        ]

    def retry_dead(self) -> int:
        """Queue the dead letters again, grouped by the record that last changed them."""
        with self._transaction() as db:
            rows = db.execute(
                "SELECT match_url, record_id FROM resource WHERE state = 'dead'"
                " ORDER BY record_id, rowid"  # rowid: first written first, dependencies first
            ).fetchall()
            groups: dict[int | None, list[str]] = {}
            for row in rows:
                groups.setdefault(row["record_id"], []).append(row["match_url"])
            for urls in groups.values():
                record_id = _new_record(db)
                db.executemany(
                    "INSERT INTO member (record_id, position, match_url) VALUES (?, ?, ?)",
                    ((record_id, i, url) for i, url in enumerate(urls)),
                )
                db.executemany(
                    "UPDATE resource SET state = 'pending', attempts = 0, record_id = ?"
                    " WHERE match_url = ?",
                    ((record_id, url) for url in urls),
                )
        return len(rows)

    def stats(self) -> OutboxStats:
        rows = (
            self._connection()
            .execute("SELECT state, count(*) FROM resource GROUP BY state")
            .fetchall()
        )
        return OutboxStats({State(row[0]): row[1] for row in rows})

    def open_count(self) -> int:
        row = (
            self._connection()
            .execute("SELECT count(*) FROM resource WHERE state IN ('pending', 'in_flight')")
            .fetchone()
        )
        return int(row[0])


@dataclass(frozen=True, slots=True)
class ClaimResult:
    batch: Batch | None
    blocked: bool  # some records wait for another worker's write


def _record_ids(db: sqlite3.Connection) -> Iterator[int]:
    """Open record ids, oldest first, read a window at a time."""
    after = 0
    while True:
        ids = [
            row[0]
            for row in db.execute(
                "SELECT id FROM record WHERE id > ? ORDER BY id LIMIT ?", (after, _SCAN_WINDOW)
            )
        ]
        if not ids:
            return
        yield from ids
        after = ids[-1]


def _references(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "reference" and isinstance(item, str):
                yield item
            else:
                yield from _references(item)
    elif isinstance(value, list):
        for item in value:
            yield from _references(item)


def _requeue_records(db: sqlite3.Connection, wanted: set[str]) -> Iterator[list[str]]:
    """Records for requeued resources: grouped by the record that last changed them, each with
    the requeued resources it refers to (conditional references are match URLs), in insertion
    order, which is the mapping's dependencies-first order."""
    groups: dict[int | None, list[str]] = {}
    for row in db.execute(
        "SELECT match_url, record_id FROM resource WHERE state = 'pending' ORDER BY rowid"
    ):
        if row[0] in wanted:
            groups.setdefault(row[1], []).append(row[0])
    for urls in groups.values():
        members, todo = set(urls), list(urls)
        while todo:
            row = db.execute(
                "SELECT body FROM resource WHERE match_url = ?", (todo.pop(),)
            ).fetchone()
            for ref in _references(json.loads(row[0])) if row else ():
                if ref in wanted and ref not in members:
                    members.add(ref)
                    todo.append(ref)
        marks = ",".join("?" * len(members))
        yield [
            r[0]
            for r in db.execute(
                f"SELECT match_url FROM resource WHERE match_url IN ({marks}) ORDER BY rowid",  # noqa: S608
                sorted(members),
            )
        ]


def _new_record(db: sqlite3.Connection) -> int:
    cursor = db.execute("INSERT INTO record (created_at) VALUES (?)", (_now_text(),))
    return int(cursor.lastrowid or 0)


class _Keyed(Protocol):
    @property
    def match_url(self) -> str: ...


_K = TypeVar("_K", bound=_Keyed)


def unique_by_key(items: Iterable[_K]) -> list[_K]:
    """The first of each match URL, in order (dependencies stay first)."""
    seen: dict[str, _K] = {}
    for item in items:
        seen.setdefault(item.match_url, item)
    return list(seen.values())


def _entry(row: sqlite3.Row) -> OutboxEntry:
    return OutboxEntry(
        match_url=row["match_url"],
        resource_type=row["resource_type"],
        identifier_system=row["id_system"],
        identifier_value=row["id_value"],
        body=row["body"],
        hash=row["hash"],
        create_only=bool(row["create_only"]),
        server_version=row["server_version"],
    )
