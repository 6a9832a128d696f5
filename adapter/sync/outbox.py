"""The durable outbox: mapped resources wait here until the server has them.

It lives in a SQLite file (WAL) in the data directory, or, with `SIP_FHIR_DATABASE_URL`, in the
shared PostgreSQL database, where several `import`, `sync` and `serve` processes on several
machines share one queue (adapter/sync/outboxdb.py holds what differs between the two).

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
transactions (SQLite) or lock the rows they take, skipping rows another claim holds
(PostgreSQL), so two workers never send the same resource at the same time, and a record whose
resource another worker is sending waits until that write is done.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from functools import partial
from pathlib import Path
from typing import Any, Protocol, TypeVar

import psycopg
from sqlalchemy.exc import OperationalError

from adapter.database import state_url, url_of
from adapter.jsontext import canonical_json
from adapter.settings import Settings
from adapter.sync.outboxdb import OutboxDb, Tx, in_list

SCHEMA_VERSION = "1"  # checked on open: another version's outbox is refused, never guessed at
OUTBOX_FILE = "outbox.sqlite3"


# How long a claim holds before another worker may take the resources over, unless its owner is
# a process on this host that is gone (then at once). Longer than one request's retry budget.
DEFAULT_LEASE_SECONDS = 600.0
_MIN_WINDOW = 32  # records read at a time by a claim (more when a batch may hold more)


class OutboxOpenError(ValueError):
    """The outbox cannot be opened (message Swedish, no password)."""


class OutboxUnavailableError(OutboxOpenError):
    """The outbox's database does not answer."""

    def __init__(self, where: str, reason: str) -> None:
        super().__init__(f"Utkorgens databas {where} svarar inte: {reason}")
        self.where = where


class OutboxVersionError(OutboxOpenError):
    """The outbox has another schema version than this sip-fhir reads."""

    def __init__(self, where: str, found: str) -> None:
        super().__init__(
            f"Utkorgen {where} har schemaversion {found}, men den här versionen av sip-fhir läser "
            f"version {SCHEMA_VERSION}. Skicka klart kön med den sip-fhir som skrev den "
            "(sip-fhir sync), eller flytta den åt sidan (filen, eller schemat outbox i "
            "databasen); den öppnas inte."
        )
        self.where = where
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


def outbox_url(settings: Settings) -> str:
    """The shared database when `SIP_FHIR_DATABASE_URL` is set, else the file in the data dir."""
    return state_url(settings, OUTBOX_FILE)


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
    """The outbox at `location`: a database URL, or a SQLite file's path (created on first use).
    Safe to share between threads and, through one database, between processes.

    `version_of` tells the source version of a resource (plans: CarePlan), or None; a record
    holding an older version than the one already stored for the same key is skipped whole.
    `stale_of` adds to a record what it makes stale (see StaleOf), judged against what is stored.
    """

    def __init__(
        self,
        location: str | Path,
        *,
        version_of: VersionOf = _no_version,
        stale_of: StaleOf = _nothing_stale,
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        url = url_of(location)
        self._db = OutboxDb.open(url)
        # The SQLite file, if that is where the outbox lives (None on PostgreSQL).
        self.path = self._db.sqlite_path()
        self._version_of = version_of
        self._stale_of = stale_of
        self._lease = lease_seconds
        self._clock = clock
        self._host = socket.gethostname()
        if self.path is not None and not self.path.exists():
            # It holds personal data (personnummer in the resources): owner only.
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.touch(mode=0o600)
        self._init_schema()

    def version_of(self, resource: Writable) -> int | None:
        """The source version of `resource` by this outbox's rule (plans: CarePlan), or None."""
        return self._version_of(resource)

    @classmethod
    def in_dir(cls, data_dir: Path, **kwargs: Any) -> Outbox:
        """The SQLite outbox in `data_dir`."""
        return cls(data_dir / OUTBOX_FILE, **kwargs)

    def close(self) -> None:
        """Nothing to close: connections are pooled per database (adapter/database.py)."""

    def _init_schema(self) -> None:
        try:
            found = self._db.setup(SCHEMA_VERSION)
        except (OperationalError, psycopg.OperationalError) as error:
            reason = str(getattr(error, "orig", None) or error).strip().splitlines()[0]
            raise OutboxUnavailableError(self._db.where(), reason) from error
        if found is not None:
            raise OutboxVersionError(self._db.where(), found)
        self._db.write(self._repair_orphans)

    def _repair_orphans(self, db: Tx) -> None:
        """Open resources outside any record (should not happen) get a record of their own."""
        self._db.bulk_lock(db)
        orphans = db.execute(
            "SELECT match_url FROM resource r WHERE state IN ('pending', 'in_flight')"
            " AND NOT EXISTS (SELECT 1 FROM member m WHERE m.match_url = r.match_url)"
        ).fetchall()
        for row in orphans:
            _add_members(db, _new_record(db), [row.match_url])

    # --- mapping fingerprint and seen source records ---

    def use_fingerprint(self, fingerprint: str) -> None:
        """Forget the seen source records when the mapping (code or data) changed."""

        def run(db: Tx) -> None:
            query = "SELECT value FROM meta WHERE key = 'mapping_fingerprint'" + self._db.row_lock  # noqa: S608
            stored = db.execute(query).scalar()
            if stored != fingerprint:
                db.execute("DELETE FROM source_seen")
                db.execute(
                    "INSERT INTO meta (key, value) VALUES ('mapping_fingerprint', :value)"
                    " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    {"value": fingerprint},
                )

        self._db.write(run)

    def seen(self, digests: Sequence[str]) -> dict[str, int]:
        """Those of `digests` already mapped into the outbox, with their number of resources."""

        def run(db: Tx) -> dict[str, int]:
            found: dict[str, int] = {}
            for start in range(0, len(digests), 500):
                marks, params = in_list("d", digests[start : start + 500])
                query = f"SELECT digest, resources FROM source_seen WHERE digest IN {marks}"  # noqa: S608
                found.update((row[0], row[1]) for row in db.execute(query, params))
            return found

        return self._db.read(run) if digests else {}

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
        items = list(records)  # a transaction may run again (PostgreSQL deadlock victim)

        def run(db: Tx) -> EnqueueResult:
            self._db.bulk_lock(db)
            result = EnqueueResult()
            for resources, digest in items:
                result.add(self._enqueue_record(db, resources, force))
                if digest is not None:
                    db.execute(
                        "INSERT INTO source_seen (digest, resources) VALUES (:digest, :n)"
                        " ON CONFLICT (digest) DO UPDATE SET resources = excluded.resources",
                        {"digest": digest, "n": len(resources)},
                    )
            return result

        return self._db.write(run)

    def _enqueue_record(self, db: Tx, resources: Sequence[Writable], force: bool) -> EnqueueResult:
        result = EnqueueResult()
        if self._older_than_stored(db, resources):
            result.older_skipped = 1
            return result
        now = _now_text()
        open_members: list[str] = []
        stale = self._stale_of(resources, lambda url: _stored_body(db, url))
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
            _add_members(db, record_id, open_members)
            db.execute(
                "UPDATE resource SET record_id = :record_id WHERE match_url = :url",
                [{"record_id": record_id, "url": url} for url in open_members],
            )
        return result

    def _older_than_stored(self, db: Tx, resources: Sequence[Writable]) -> bool:
        for resource in resources:
            version = self._version_of(resource)
            if version is None:
                continue
            stored = db.execute(
                "SELECT source_version FROM resource WHERE match_url = :url",
                {"url": resource.match_url},
            ).scalar()
            if stored is not None and version < stored:
                return True
        return False

    def _upsert(self, db: Tx, resource: Writable, now: str, force: bool) -> tuple[bool, State]:
        """Insert or update one resource: (needs a write it did not need before, its state)."""
        body = canonical_json(resource.resource)
        digest = content_hash(body)
        version = self._version_of(resource)
        row = self._locked_row(db, resource.match_url)
        if row is None:
            inserted = db.execute(
                "INSERT INTO resource (match_url, resource_type, id_system, id_value, body,"
                " hash, create_only, state, source_version, updated_at)"
                " VALUES (:url, :type, :system, :value, :body, :hash, :create_only,"
                " 'pending', :version, :now) ON CONFLICT (match_url) DO NOTHING",
                {
                    "url": resource.match_url,
                    "type": resource.resource_type,
                    "system": resource.identifier_system,
                    "value": resource.identifier_value,
                    "body": body,
                    "hash": digest,
                    "create_only": int(resource.create_only),
                    "version": version,
                    "now": now,
                },
            )
            if inserted.rowcount == 1:
                return True, State.PENDING
            # Another process inserted it since we looked (PostgreSQL): judge against theirs.
            row = self._locked_row(db, resource.match_url)
            if row is None:
                raise RuntimeError(f"{resource.resource_type} försvann ur utkorgen under skrivning")
        state = State(row.state)
        if resource.create_only and not row.create_only:
            return False, state  # a stub never replaces the full resource
        if row.create_only and resource.create_only and state is State.DONE and not force:
            return False, state  # the server has it; a create-only write would change nothing
        if row.hash == digest and not (force and state is State.DONE):
            return False, state
        if row.hash != digest and digest == row.synced_hash and state is not State.IN_FLIGHT:
            new_state = State.DONE  # back to what the server holds (an edit undone unsent)
        elif state is State.IN_FLIGHT:
            new_state = State.IN_FLIGHT  # its sender will see the new hash and leave it pending
        else:
            new_state = State.PENDING
        db.execute(
            "UPDATE resource SET body = :body, hash = :hash, create_only = :create_only,"
            " source_version = :version, state = :state, attempts = 0, last_error = NULL,"
            " updated_at = :now WHERE match_url = :url",
            {
                "body": body,
                "hash": digest,
                "create_only": int(resource.create_only),
                "version": version,
                "state": new_state.value,
                "now": now,
                "url": resource.match_url,
            },
        )
        return new_state is not State.DONE, new_state

    def _locked_row(self, db: Tx, match_url: str) -> Any | None:
        return db.execute(
            "SELECT hash, state, create_only, synced_hash FROM resource"  # noqa: S608
            " WHERE match_url = :url" + self._db.row_lock,
            {"url": match_url},
        ).first()

    # --- claim, complete, release ---

    def claim(self, token: str, max_resources: int, *, min_resources: int = 1) -> ClaimResult:
        """Take whole records, oldest first, up to `max_resources` open resources.

        Records whose resources another live worker is sending are passed over (`blocked`).
        Fewer than `min_resources` claimable resources: nothing is taken (more may come), unless
        the next record would not fit in `max_resources` (the batch is as full as it can be).
        """

        def run(db: Tx) -> ClaimResult:
            chosen: list[tuple[int, list[Any]]] = []  # records taken, with their fresh rows
            taken: set[str] = set()
            blocked = False
            full = False  # the next record would not fit: as full as whole records allow
            for record_id, members in _open_records(db, max(max_resources, _MIN_WINDOW)):
                if not members:
                    db.execute("DELETE FROM record WHERE id = :id", {"id": record_id})
                    continue
                if any(self._held_elsewhere(row, token) for row in members):
                    blocked = True
                    continue
                fresh = [row for row in members if row.match_url not in taken]
                if taken and len(taken) + len(fresh) > max_resources:
                    full = True
                    break
                chosen.append((record_id, fresh))
                taken.update(row.match_url for row in fresh)
                if len(taken) >= max_resources:
                    break
            if self._db.skips_locked:
                locked = self._locked_prefix(db, chosen, token)
                blocked = blocked or len(locked) < len(chosen)
                chosen = locked
                taken = {row.match_url for _, fresh in chosen for row in fresh}
            # A batch one record short of `min_resources` is full too: waiting for an exact fit
            # never ended while the reader kept producing (nothing was sent until it stopped).
            if not taken or (len(taken) < min_resources and not full):
                return ClaimResult(None, blocked)
            now = self._clock()
            db.execute(
                "UPDATE resource SET state = 'in_flight', claim = :token, claimed_at = :now"
                " WHERE match_url = :url",
                [{"token": token, "now": now, "url": url} for url in taken],
            )
            groups = [[_entry(row) for row in fresh] for _, fresh in chosen if fresh]
            return ClaimResult(Batch(token, groups, [r for r, _ in chosen]), blocked)

        return self._db.write(run)

    def _locked_prefix(
        self, db: Tx, chosen: list[tuple[int, list[Any]]], token: str
    ) -> list[tuple[int, list[Any]]]:
        """The leading chosen records whose resources this claim locked as they were read.

        PostgreSQL: the records were read without locks, so another claim may hold some of their
        resources (SKIP LOCKED passes them over) or have sent them, or an import changed them;
        from the first such record on, nothing is taken (a later record may need its write)."""
        urls = [row.match_url for _, fresh in chosen for row in fresh]
        if not urls:
            return chosen
        marks, params = in_list("u", urls)
        query = (
            "SELECT match_url, state, claim, claimed_at, hash FROM resource"  # noqa: S608
            f" WHERE match_url IN {marks}" + self._db.claim_lock
        )
        now = {row.match_url: row for row in db.execute(query, params)}
        for index, (_, fresh) in enumerate(chosen):
            for row in fresh:
                current = now.get(row.match_url)
                if (
                    current is None
                    or current.hash != row.hash
                    or current.state not in (State.PENDING, State.IN_FLIGHT)
                    or self._held_elsewhere(current, token)
                ):
                    return chosen[:index]
        return chosen

    def _held_elsewhere(self, row: Any, token: str) -> bool:
        """In flight with a live claim of another worker."""
        if row.state != State.IN_FLIGHT or row.claim == token:
            return False
        if row.claimed_at is None or self._clock() - row.claimed_at > self._lease:
            return False
        owner = ClaimToken.parse(row.claim or "")
        if owner is not None and owner.host == self._host and not _process_alive(owner.pid):
            return False  # its process is gone: the claim died with it
        return True

    def complete(self, token: str, written: Sequence[Written]) -> None:
        """The server confirmed these writes; done unless changed meanwhile (then pending)."""
        if not written:
            return
        now = _now_text()
        rows = [
            {
                "hash": w.entry.hash,
                "server_id": w.server_id,
                "server_version": w.server_version,
                "now": now,
                "url": w.entry.match_url,
                "token": token,
            }
            for w in sorted(written, key=lambda w: w.entry.match_url)  # one lock order
        ]
        self._db.write(
            lambda db: db.execute(
                "UPDATE resource SET synced_hash = :hash,"
                " server_id = coalesce(:server_id, server_id),"
                " server_version = coalesce(:server_version, server_version),"
                " attempts = attempts + 1, last_error = NULL, claim = NULL,"
                " claimed_at = NULL, updated_at = :now,"
                " state = CASE WHEN hash = :hash THEN 'done' ELSE 'pending' END"
                " WHERE match_url = :url AND claim = :token",
                rows,
            )
        )

    def mark_dead(self, token: str, entry: OutboxEntry, error: str) -> None:
        """The server refuses this content: a dead letter until it changes or is retried."""
        self._db.write(
            lambda db: db.execute(
                "UPDATE resource SET attempts = attempts + 1, last_error = :error,"
                " claim = NULL, claimed_at = NULL, updated_at = :now,"
                " state = CASE WHEN hash = :hash THEN 'dead' ELSE 'pending' END"
                " WHERE match_url = :url AND claim = :token",
                {
                    "error": error,
                    "now": _now_text(),
                    "hash": entry.hash,
                    "url": entry.match_url,
                    "token": token,
                },
            )
        )

    def skip_older(self, token: str, entries: Sequence[OutboxEntry], reason: str) -> None:
        """The server holds a newer version of their plan: settled unwritten, `reason` kept.

        Done, not dead: nothing to retry; a changed (newer) import makes them pending again.
        """
        if not entries:
            return
        now = _now_text()
        rows = [
            {"reason": reason, "now": now, "hash": e.hash, "url": e.match_url, "token": token}
            for e in entries
        ]
        self._db.write(
            lambda db: db.execute(
                "UPDATE resource SET last_error = :reason, claim = NULL, claimed_at = NULL,"
                " updated_at = :now,"
                " state = CASE WHEN hash = :hash THEN 'done' ELSE 'pending' END"
                " WHERE match_url = :url AND claim = :token",
                rows,
            )
        )

    def release(self, token: str, error: str | None = None) -> int:
        """Give back everything this worker still holds (a temporary error): pending again."""
        return self._db.write(
            lambda db: (
                db.execute(
                    "UPDATE resource SET state = 'pending', claim = NULL, claimed_at = NULL,"
                    " attempts = attempts + 1, last_error = coalesce(:error, last_error),"
                    " updated_at = :now WHERE claim = :token AND state = 'in_flight'",
                    {"error": error, "now": _now_text(), "token": token},
                ).rowcount
            )
        )

    def close_records(self, record_ids: Sequence[int]) -> None:
        """Delete the records none of whose resources is open any more."""
        if not record_ids:
            return
        self._db.write(
            lambda db: db.execute(
                "DELETE FROM record WHERE id = :id AND NOT EXISTS ("
                " SELECT 1 FROM member m JOIN resource r ON r.match_url = m.match_url"
                " WHERE m.record_id = record.id AND r.state IN ('pending', 'in_flight'))",
                [{"id": record_id} for record_id in sorted(record_ids)],
            )
        )

    # --- what the server is believed to hold (servercheck.py) ---

    def server_epoch(self, base_url: str) -> ServerEpoch | None:
        row = self._db.read(
            lambda db: db.execute(
                "SELECT epoch, generation, marker_id FROM server WHERE base_url = :url",
                {"url": base_url},
            ).first()
        )
        return None if row is None else ServerEpoch(row[0], int(row[1]), row[2])

    def record_server_epoch(self, base_url: str, epoch: ServerEpoch) -> None:
        self._db.write(
            lambda db: db.execute(
                "INSERT INTO server (base_url, epoch, generation, marker_id, updated_at)"
                " VALUES (:url, :epoch, :generation, :marker_id, :now)"
                " ON CONFLICT (base_url) DO UPDATE SET epoch = excluded.epoch,"
                " generation = excluded.generation, marker_id = excluded.marker_id,"
                " updated_at = excluded.updated_at",
                {
                    "url": base_url,
                    "epoch": epoch.epoch,
                    "generation": epoch.generation,
                    "marker_id": epoch.marker_id,
                    "now": _now_text(),
                },
            )
        )

    def forget_server_epoch(self, base_url: str) -> None:
        self._db.write(
            lambda db: db.execute("DELETE FROM server WHERE base_url = :url", {"url": base_url})
        )

    def done_count(self) -> int:
        return self._count("SELECT count(*) FROM resource WHERE state = 'done'")

    def sample_done(self, size: int) -> list[Believed]:
        """Up to `size` resources the outbox believes the server holds, chosen at random."""
        rows = self._db.read(
            lambda db: db.execute(
                f"SELECT {_BELIEVED_COLUMNS} FROM resource WHERE state = 'done'"  # noqa: S608
                " ORDER BY random() LIMIT :size",
                {"size": size},
            ).fetchall()
        )
        return [Believed(*row) for row in rows]

    def iter_done(self, chunk: int = 1000) -> Iterator[list[Believed]]:
        """Everything the outbox believes the server holds, by type, `chunk` rows at a time."""
        query = (
            f"SELECT {_BELIEVED_COLUMNS} FROM resource WHERE state = 'done'"  # noqa: S608
            " AND (resource_type, match_url) > (:type, :url)"
            " ORDER BY resource_type, match_url LIMIT :chunk"
        )
        after = ("", "")
        while True:
            params = {"type": after[0], "url": after[1], "chunk": chunk}
            rows = self._db.read(partial(_fetch, query, params))
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
        urls = None if match_urls is None else list(match_urls)

        def run(db: Tx) -> int:
            self._db.bulk_lock(db)
            if urls is None:
                query = "SELECT match_url FROM resource WHERE state = 'done'"
                wanted = {r[0] for r in db.execute(query)}
            else:
                state = "SELECT state FROM resource WHERE match_url = :url"
                wanted = {u for u in urls if db.execute(state, {"url": u}).scalar() == State.DONE}
            if not wanted:
                return 0
            db.execute(
                "UPDATE resource SET state = 'pending', synced_hash = NULL, server_id = NULL,"
                " server_version = NULL, attempts = 0, updated_at = :now"
                " WHERE match_url = :url",
                [{"now": _now_text(), "url": url} for url in sorted(wanted)],
            )
            for members in _requeue_records(db, wanted, self._db.insertion_order):
                _add_members(db, _new_record(db), members)
            db.execute("DELETE FROM source_seen")
            return len(wanted)

        return self._db.write(run)

    def forget(self, resource_type: str, server_ids: Iterable[str]) -> int:
        """Deleted on the server on purpose (`purge`): the outbox no longer holds them, so a
        re-import maps and writes them again instead of calling them unchanged."""
        ids = list(server_ids)

        def run(db: Tx) -> int:
            self._db.bulk_lock(db)
            forgotten = 0
            for server_id in ids:
                urls = [
                    r[0]
                    for r in db.execute(
                        "SELECT match_url FROM resource WHERE resource_type = :type"
                        " AND server_id = :id AND state IN ('done', 'dead')",
                        {"type": resource_type, "id": server_id},
                    )
                ]
                for url in urls:
                    db.execute("DELETE FROM member WHERE match_url = :url", {"url": url})
                    db.execute("DELETE FROM resource WHERE match_url = :url", {"url": url})
                forgotten += len(urls)
            if forgotten:
                db.execute("DELETE FROM source_seen")
            return forgotten

        return self._db.write(run)

    # --- dead letters and statistics ---

    def dead_letters(self) -> list[DeadLetter]:
        rows = self._db.read(
            lambda db: db.execute(
                "SELECT match_url, resource_type, last_error, attempts, updated_at"
                " FROM resource WHERE state = 'dead' ORDER BY updated_at, match_url"
            ).fetchall()
        )
        return [
            DeadLetter(r.match_url, r.resource_type, r.last_error or "", r.attempts, r.updated_at)
            for r in rows
        ]

    def retry_dead(self) -> int:
        """Queue the dead letters again, grouped by the record that last changed them."""
        order = self._db.insertion_order  # first written first: dependencies first

        def run(db: Tx) -> int:
            self._db.bulk_lock(db)
            rows = db.execute(
                "SELECT match_url, record_id FROM resource WHERE state = 'dead'"  # noqa: S608
                f" ORDER BY record_id, {order}"
            ).fetchall()
            groups: dict[int | None, list[str]] = {}
            for row in rows:
                groups.setdefault(row.record_id, []).append(row.match_url)
            for urls in groups.values():
                record_id = _new_record(db)
                _add_members(db, record_id, urls)
                db.execute(
                    "UPDATE resource SET state = 'pending', attempts = 0,"
                    " record_id = :record_id WHERE match_url = :url",
                    [{"record_id": record_id, "url": url} for url in urls],
                )
            return len(rows)

        return self._db.write(run)

    def stats(self) -> OutboxStats:
        rows = self._db.read(
            lambda db: db.execute("SELECT state, count(*) FROM resource GROUP BY state").fetchall()
        )
        return OutboxStats({State(row[0]): int(row[1]) for row in rows})

    def open_count(self) -> int:
        return self._count("SELECT count(*) FROM resource WHERE state IN ('pending', 'in_flight')")

    def _count(self, query: str) -> int:
        return int(self._db.read(lambda db: db.execute(query).scalar()) or 0)


@dataclass(frozen=True, slots=True)
class ClaimResult:
    batch: Batch | None
    blocked: bool  # some records wait for another worker's write


def _open_records(db: Tx, window: int) -> Iterator[tuple[int, list[Any]]]:
    """Records oldest first, each with its open resources in order, read `window` at a time."""
    after = 0
    while True:
        ids = [
            int(row[0])
            for row in db.execute(
                "SELECT id FROM record WHERE id > :after ORDER BY id LIMIT :window",
                {"after": after, "window": window},
            )
        ]
        if not ids:
            return
        marks, params = in_list("r", ids)
        members: dict[int, list[Any]] = {}
        # CROSS JOIN: SQLite then reads member first (by record id), as asked. With a plain JOIN
        # its planner went through the `state` index instead, every open resource per claim
        # (0.6 s per window at 117 000 open resources: the 100 000-patient import stalled).
        for row in db.execute(
            "SELECT m.record_id AS member_of, r.* FROM member m"  # noqa: S608
            " CROSS JOIN resource r"
            f" WHERE r.match_url = m.match_url AND m.record_id IN {marks}"
            " AND r.state IN ('pending', 'in_flight')"
            " ORDER BY m.record_id, m.position",
            params,
        ):
            members.setdefault(int(row.member_of), []).append(row)
        for record_id in ids:
            yield record_id, members.get(record_id, [])
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


def _requeue_records(db: Tx, wanted: set[str], order: str) -> Iterator[list[str]]:
    """Records for requeued resources: grouped by the record that last changed them, each with
    the requeued resources it refers to (conditional references are match URLs), in insertion
    order, which is the mapping's dependencies-first order."""
    groups: dict[int | None, list[str]] = {}
    pending = f"SELECT match_url, record_id FROM resource WHERE state = 'pending' ORDER BY {order}"  # noqa: S608
    for row in db.execute(pending):
        if row[0] in wanted:
            groups.setdefault(row[1], []).append(row[0])
    for urls in groups.values():
        members, todo = set(urls), list(urls)
        while todo:
            body = _stored_body(db, todo.pop())
            for ref in _references(body) if body is not None else ():
                if ref in wanted and ref not in members:
                    members.add(ref)
                    todo.append(ref)
        marks, params = in_list("u", sorted(members))
        ordered = f"SELECT match_url FROM resource WHERE match_url IN {marks} ORDER BY {order}"  # noqa: S608
        yield [r[0] for r in db.execute(ordered, params)]


def _fetch(query: str, params: dict[str, Any], db: Tx) -> list[Any]:
    return list(db.execute(query, params).fetchall())


def _stored_body(db: Tx, match_url: str) -> dict[str, Any] | None:
    body = db.execute(
        "SELECT body FROM resource WHERE match_url = :url", {"url": match_url}
    ).scalar()
    return None if body is None else json.loads(body)


def _new_record(db: Tx) -> int:
    created = db.execute(
        "INSERT INTO record (created_at) VALUES (:now) RETURNING id", {"now": _now_text()}
    )
    return int(created.scalar())


def _add_members(db: Tx, record_id: int, match_urls: Sequence[str]) -> None:
    if match_urls:
        db.execute(
            "INSERT INTO member (record_id, position, match_url)"
            " VALUES (:record_id, :position, :url)",
            [
                {"record_id": record_id, "position": i, "url": url}
                for i, url in enumerate(match_urls)
            ],
        )


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


def _entry(row: Any) -> OutboxEntry:
    return OutboxEntry(
        match_url=row.match_url,
        resource_type=row.resource_type,
        identifier_system=row.id_system,
        identifier_value=row.id_value,
        body=row.body,
        hash=row.hash,
        create_only=bool(row.create_only),
        server_version=row.server_version,
    )
