"""Sync: the durable outbox (SQLite, or the shared PostgreSQL database) → FHIR client → server.

    Importer(outbox, client, mappings_dir, tally, SyncSettings()).run(paths)   # read, map, write
    SyncEngine(outbox, client, tally, SyncSettings()).drain()                  # resume the rest

Mapped resources are committed to the outbox before any write; writes are conditional on
business identifiers and grouped into transaction Bundles, one source record never split. A
`Tally` counts the run and forwards to `SyncHooks` (progress bars, metrics).
"""

from adapter.sync.engine import DEFAULT_WORKERS, SyncEngine, SyncSettings, SyncStop
from adapter.sync.importer import (
    Importer,
    ImportResult,
    checked_server,
    counted_run,
    open_outbox,
    plan_version,
)
from adapter.sync.outbox import (
    DeadLetter,
    Outbox,
    OutboxOpenError,
    OutboxStats,
    OutboxVersionError,
    State,
    outbox_url,
)
from adapter.sync.progress import SyncHooks, Tally, WriteOutcome, combine, metrics_hooks
from adapter.sync.servercheck import CheckResult, VerifyResult, verify

__all__ = [
    "DEFAULT_WORKERS",
    "CheckResult",
    "DeadLetter",
    "ImportResult",
    "Importer",
    "Outbox",
    "OutboxOpenError",
    "OutboxStats",
    "OutboxVersionError",
    "State",
    "SyncEngine",
    "SyncHooks",
    "SyncSettings",
    "SyncStop",
    "Tally",
    "VerifyResult",
    "WriteOutcome",
    "checked_server",
    "combine",
    "counted_run",
    "metrics_hooks",
    "open_outbox",
    "outbox_url",
    "plan_version",
    "verify",
]
