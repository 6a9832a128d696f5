"""Group commit: the writes of concurrent callers go to the database in one transaction.

Every caller still returns only once its own rows are committed (or raises), so "stored when
`write` returns" holds; what changes is that callers arriving while a transaction is running
queue up and the next transaction takes them all. On SQLite, where one writer at a time holds
the lock and each commit waits for the disk (synchronous FULL), this turns N commits into about
one per disk wait: the audit log of a worklist page (one write per answer) no longer caps a
busy `serve` process at one answer per fsync.

No thread of its own: the first caller of a burst writes; when its transaction is done it hands
the queue to the first caller still waiting, which writes the next group.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

Row = TypeVar("Row")


class GroupWriteError(RuntimeError):
    """The transaction that carried this caller's rows failed; none of its rows are stored."""


@dataclass(slots=True)
class _Batch(Generic[Row]):
    rows: Sequence[Row]
    done: threading.Event = field(default_factory=threading.Event)
    lead: bool = False  # this caller writes the queue (first of a burst, or handed over)
    error: BaseException | None = None


class GroupCommit(Generic[Row]):
    """`write(rows)` through `commit(all_rows)`, one transaction per group of waiting callers."""

    def __init__(self, commit: Callable[[list[Row]], None]) -> None:
        self._commit = commit
        self._mutex = threading.Lock()
        self._queue: list[_Batch[Row]] = []
        self._writing = False
        self.transactions = 0  # for tests and benchmarks

    @property
    def waiting(self) -> int:
        """Callers queued for the next transaction."""
        with self._mutex:
            return len(self._queue)

    def write(self, rows: Sequence[Row]) -> None:
        """Return once `rows` are committed; raise GroupWriteError if their transaction failed."""
        batch: _Batch[Row] = _Batch(rows)
        with self._mutex:
            self._queue.append(batch)
            if not self._writing:
                self._writing = batch.lead = True
        if not batch.lead:
            batch.done.wait()
        if batch.lead:  # never written yet: a leader's batch is still in the queue
            self._write_queue()
        if batch.error is not None:
            raise GroupWriteError(f"skrivningen misslyckades: {batch.error}") from batch.error

    def _write_queue(self) -> None:
        with self._mutex:
            group, self._queue = self._queue, []
        failure: BaseException | None = None
        try:
            self._commit([row for batch in group for row in batch.rows])
        except BaseException as error:  # every caller of the group must learn it
            failure = error
            for batch in group:
                batch.error = error
        finally:
            with self._mutex:
                self.transactions += 1
                following = self._queue[0] if self._queue else None
                if following is None:
                    self._writing = False
                else:
                    following.lead = True
            for batch in group:
                batch.done.set()
            if following is not None:
                following.done.set()
        if failure is not None and not isinstance(failure, Exception):
            raise failure  # an interrupt goes on up in the thread that got it
