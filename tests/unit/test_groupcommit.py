"""Group commit (adapter/groupcommit.py): callers that arrive while a transaction runs share the
next one; each returns only once its own rows are committed, and a failed transaction fails
every caller in it. Then the same on the audit log's real SQLite file."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from adapter.audit import AuditEvent, AuditKind, AuditLog, Purpose
from adapter.groupcommit import GroupCommit, GroupWriteError

WAIT = 10.0


def until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


class Writer:
    """Runs `write` in a thread; keeps what it raised."""

    def __init__(self, write: Callable[[], None]) -> None:
        self.error: BaseException | None = None
        self.returned = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(write,), daemon=True)
        self.thread.start()

    def _run(self, write: Callable[[], None]) -> None:
        try:
            write()
        except BaseException as error:
            self.error = error
        self.returned.set()


def blocking_commit(
    committed: list[list[int]], release: threading.Event, poison: int | None = None
) -> Callable[[list[int]], None]:
    """The first transaction waits for `release`; a group holding `poison` fails."""

    def commit(rows: list[int]) -> None:
        if not committed:
            committed.append([])  # marks the first transaction as started
            release.wait(WAIT)
            committed[0] = list(rows)
            return
        if poison in rows:
            raise RuntimeError("constraint failed")
        committed.append(sorted(rows))

    return commit


def test_callers_arriving_during_a_transaction_share_the_next_one() -> None:
    committed: list[list[int]] = []
    release = threading.Event()
    group: GroupCommit[int] = GroupCommit(blocking_commit(committed, release))
    first = Writer(lambda: group.write([0]))
    until(lambda: bool(committed))
    others = [Writer(lambda n=n: group.write([n, n + 100])) for n in range(1, 11)]
    until(lambda: group.waiting == 10)
    assert not any(w.returned.is_set() for w in [first, *others])  # nothing committed yet
    release.set()
    for writer in [first, *others]:
        writer.thread.join(WAIT)
        assert writer.returned.is_set() and writer.error is None
    assert committed == [[0], sorted([*range(1, 11), *range(101, 111)])]
    assert group.transactions == 2


def test_a_failed_transaction_fails_every_caller_in_it_and_the_next_group_goes_through() -> None:
    committed: list[list[int]] = []
    release = threading.Event()
    group: GroupCommit[int] = GroupCommit(blocking_commit(committed, release, poison=3))
    first = Writer(lambda: group.write([0]))
    until(lambda: bool(committed))
    doomed = [Writer(lambda n=n: group.write([n])) for n in (2, 3, 4)]
    until(lambda: group.waiting == 3)
    release.set()
    for writer in [first, *doomed]:
        writer.thread.join(WAIT)
    assert first.error is None
    for writer in doomed:  # 2 and 4 were fine, but shared 3's transaction: none is stored
        assert isinstance(writer.error, GroupWriteError)
        assert isinstance(writer.error.__cause__, RuntimeError)
    assert committed == [[0]]
    group.write([5])
    assert committed == [[0], [5]]


def test_one_caller_alone_writes_at_once() -> None:
    committed: list[list[int]] = []
    group: GroupCommit[int] = GroupCommit(lambda rows: committed.append(list(rows)))
    for n in range(3):
        group.write([n])
    assert committed == [[0], [1], [2]] and group.transactions == 3 and group.waiting == 0


# --- on the audit log's SQLite file ---

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


def event(n: int, detail: str | None = None) -> AuditEvent:
    return AuditEvent(
        at=T0 + timedelta(seconds=n),
        kind=AuditKind.PATIENT_READ,
        actor="Vera",
        subject="sub-vera",
        resource="worklist",
        route="/units/{unit}/worklist",
        request_id=f"req-{n}",
        purpose=Purpose.UPPFOLJNING,
        patient="191212129819",
        unit="SE2321000057-E00000000001",
        detail=detail,
    )


def in_transaction(audit: AuditLog) -> bool:
    """A caller has taken the queue and is writing (here: waiting for the file's lock)."""
    writes = audit._writes
    return writes._writing and writes.waiting == 0 and writes.transactions == 0


def locked(path: Path) -> sqlite3.Connection:
    """Another process's writer, holding the file's write lock until it commits."""
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    return holder


def test_audit_writes_of_concurrent_answers_are_one_transaction_and_all_stored(
    tmp_path: Path,
) -> None:
    audit = AuditLog(tmp_path / "audit.sqlite")
    holder = locked(tmp_path / "audit.sqlite")
    writers = [Writer(lambda: audit.record([event(0)]))]
    until(lambda: in_transaction(audit))  # waiting for the lock
    writers += [Writer(lambda n=n: audit.record([event(n)])) for n in range(1, 12)]
    until(lambda: audit._writes.waiting == 11)
    holder.execute("COMMIT")
    for writer in writers:
        writer.thread.join(WAIT)
        assert writer.error is None
    assert audit._writes.transactions == 2
    stored = audit.search(limit=100)
    assert sorted(e.request_id for e in stored) == sorted(f"req-{n}" for n in range(12))


def test_an_audit_group_that_fails_in_the_database_stores_none_and_fails_every_caller(
    tmp_path: Path,
) -> None:
    path = tmp_path / "audit.sqlite"
    audit = AuditLog(path)
    with sqlite3.connect(path) as db:
        db.execute(
            "CREATE TRIGGER refuse BEFORE INSERT ON audit_event WHEN NEW.detail = 'refused' "
            "BEGIN SELECT RAISE(ABORT, 'refused'); END"
        )
    holder = locked(path)
    first = Writer(lambda: audit.record([event(0)]))
    until(lambda: in_transaction(audit))
    group = [
        Writer(lambda n=n: audit.record([event(n, "refused" if n == 2 else None)]))
        for n in (1, 2, 3)
    ]
    until(lambda: audit._writes.waiting == 3)
    holder.execute("COMMIT")
    for writer in [first, *group]:
        writer.thread.join(WAIT)
    assert first.error is None
    assert all(isinstance(w.error, GroupWriteError) for w in group)
    assert [e.request_id for e in audit.search(limit=100)] == ["req-0"]
    audit.record([event(4)])
    assert {e.request_id for e in audit.search(limit=100)} == {"req-0", "req-4"}


@pytest.mark.parametrize("callers", [1, 8])
def test_every_caller_returns_only_after_its_events_can_be_read(
    tmp_path: Path, callers: int
) -> None:
    audit = AuditLog(tmp_path / "audit.sqlite")
    seen: dict[int, bool] = {}

    def record_and_look(n: int) -> None:
        audit.record([event(n)])
        seen[n] = any(e.request_id == f"req-{n}" for e in audit.search(limit=200))

    writers = [Writer(lambda n=n: record_and_look(n)) for n in range(callers * 5)]
    for writer in writers:
        writer.thread.join(WAIT)
        assert writer.error is None
    assert seen == {n: True for n in range(callers * 5)}
