"""Counting an import or sync: a thread-safe tally, and callbacks for progress bars and metrics.

The engine and the importer only count into a `Tally`; the tally forwards each event to the
`SyncHooks` a caller gave (the CLI's progress bar, the API's metrics), so the sync code knows
nothing about either. Hooks are called from worker threads too: keep them quick.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from enum import StrEnum

from adapter import metrics
from adapter.domain import RowError


class WriteOutcome(StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    NOOP = "noop"  # written, but the server already held it (no new version)


def _ignore(*_args: object) -> None:
    return None


@dataclass(slots=True)
class SyncHooks:
    """Optional callbacks; each defaults to doing nothing."""

    rows: Callable[[str, int], None] = _ignore  # source kind, rows read
    row_error: Callable[[RowError], None] = _ignore  # a rejected or repeated row; masked
    queued: Callable[[int, int], None] = _ignore  # resources to write, resources unchanged
    written: Callable[[str, WriteOutcome], None] = _ignore  # resource type, outcome
    dead_letter: Callable[[str, str], None] = _ignore  # resource type, server's message (masked)
    retry: Callable[[str], None] = _ignore  # reason
    outbox_depth: Callable[[int], None] = _ignore  # resources pending or in flight


def metrics_hooks() -> SyncHooks:
    """Hooks that feed the Prometheus metrics of `adapter.metrics`."""
    return SyncHooks(
        rows=metrics.count_rows_in,
        written=lambda resource_type, outcome: metrics.count_resource_written(
            resource_type, outcome.value
        ),
        retry=lambda _reason: metrics.count_retry(),
        outbox_depth=metrics.set_outbox_depth,
    )


def combine(*hooks: SyncHooks) -> SyncHooks:
    """One set of hooks calling each of `hooks` in turn."""

    def fan_out(name: str) -> Callable[..., None]:
        targets = [getattr(h, name) for h in hooks if getattr(h, name) is not _ignore]

        def call(*args: object) -> None:
            for target in targets:
                target(*args)

        return call

    return SyncHooks(**{f.name: fan_out(f.name) for f in fields(SyncHooks)})


@dataclass(slots=True)
class Tally:
    """Counts of one run; every method is safe to call from any thread."""

    hooks: SyncHooks = field(default_factory=SyncHooks)
    rows_read: int = 0
    rows_rejected: int = 0
    rows_duplicate: int = 0  # rows repeating an earlier row: skipped, nothing lost
    queued: int = 0
    unchanged: int = 0
    older_skipped: int = 0  # plan records older than a version already seen (here or on the server)
    older_messages: list[str] = field(default_factory=list)  # why, for those the server had newer
    created: int = 0
    updated: int = 0
    noop: int = 0
    dead: int = 0
    retries: int = 0
    bundles: int = 0
    started: float = field(default_factory=time.monotonic)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def written(self) -> int:
        return self.created + self.updated + self.noop

    @property
    def seconds(self) -> float:
        return time.monotonic() - self.started

    def count_rows(self, kind: str, read: int, rejected: int, duplicates: int) -> None:
        with self._lock:
            self.rows_read += read
            self.rows_rejected += rejected
            self.rows_duplicate += duplicates
        if read:
            self.hooks.rows(kind, read)

    def count_row_error(self, error: RowError) -> None:
        self.hooks.row_error(error)

    def count_queued(self, queued: int, unchanged: int, older_skipped: int) -> None:
        with self._lock:
            self.queued += queued
            self.unchanged += unchanged
            self.older_skipped += older_skipped
        self.hooks.queued(queued, unchanged)

    def count_older_on_server(self, message: str) -> None:
        """A plan record left unwritten: the server holds a newer version (another installation)."""
        with self._lock:
            self.older_skipped += 1
            self.older_messages.append(message)

    def count_written(self, resource_type: str, outcome: WriteOutcome) -> None:
        with self._lock:
            if outcome is WriteOutcome.CREATED:
                self.created += 1
            elif outcome is WriteOutcome.UPDATED:
                self.updated += 1
            else:
                self.noop += 1
        self.hooks.written(resource_type, outcome)

    def count_bundle(self) -> None:
        with self._lock:
            self.bundles += 1

    def count_dead(self, resource_type: str, message: str) -> None:
        with self._lock:
            self.dead += 1
        self.hooks.dead_letter(resource_type, message)

    def count_retry(self, reason: str) -> None:
        with self._lock:
            self.retries += 1
        self.hooks.retry(reason)

    def client_retry(self, _attempt: int, _wait: float, reason: str) -> None:
        """Fits `FhirClient(on_retry=...)`."""
        self.count_retry(reason)

    def depth(self, depth: int) -> None:
        self.hooks.outbox_depth(depth)
