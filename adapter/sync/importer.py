"""Import: read → map → outbox, in chunks, while the engine's workers post Bundles.

Memory stays flat in the size of the file: records are read lazily, mapped a chunk at a time and
committed to the outbox (on disk) before anything is sent. A source record already mapped with
the same mapping (its digest is in the outbox) is not mapped again, and a resource whose content
hash equals the one the server confirmed is not written again: an unchanged re-import only reads.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from adapter.canonical import EXT_PLAN_VERSION
from adapter.domain import Record, RowError
from adapter.fhirclient import FhirClient, FhirError
from adapter.mapping import MappedResource, MappingError, Mappings, load_mappings, map_record
from adapter.mapping.stale import dropped_goals
from adapter.prea60.guard import RunCheck
from adapter.prea60.importing import RunGate, run_gate
from adapter.sources import Reading, SourceKind, read_file
from adapter.sync.engine import SyncEngine, SyncSettings, SyncStop
from adapter.sync.fingerprint import mapping_fingerprint, record_digest
from adapter.sync.outbox import OUTBOX_FILE, Outbox, Writable
from adapter.sync.progress import Tally
from adapter.sync.servercheck import SPOT_CHECK_SIZE, CheckResult, advance, check_server

# A check of each record before it is mapped: None admits it, a RowError rejects the row.
Admission = Callable[[Record], RowError | None]

# Records per outbox transaction: large enough that commits cost little, small enough that the
# workers get their first Bundle early.
CHUNK_RECORDS = 250


def plan_version(resource: Writable) -> int | None:
    """The source system's version of a plan (the CarePlan's extension); else None."""
    if resource.resource_type != "CarePlan":
        return None
    for extension in resource.resource.get("extension", []):
        if extension.get("url") == EXT_PLAN_VERSION:
            value = extension.get("valueInteger")
            return value if isinstance(value, int) else None
    return None


def open_outbox(where: Path | str) -> Outbox:
    """The outbox in a data directory (its SQLite file) or at a database URL (`outbox_url`),
    with the plan-version rule and a plan's dropped Goals."""
    location = where / OUTBOX_FILE if isinstance(where, Path) else where
    return Outbox(location, version_of=plan_version, stale_of=dropped_goals)


@dataclass(slots=True)
class ImportResult:
    tally: Tally
    stop: SyncStop | None  # why writing stopped early (the rest waits in the outbox)
    open_left: int  # resources still pending in the outbox
    runs: list[RunCheck] = field(default_factory=list)  # the Prea60 runs checked
    runs_unchecked: str | None = None  # why they could not be (Swedish)
    readings: list[Reading] = field(default_factory=list)  # the files read (encoding, counts)
    check: CheckResult | None = None  # what the server check found (None: it could not run)

    @property
    def unconfirmed_runs(self) -> list[RunCheck]:
        return [check for check in self.runs if not check.trusted]

    @property
    def complete(self) -> bool:
        return self.stop is None and self.open_left == 0


def checked_server(
    outbox: Outbox, client: FhirClient, *, spot_check: bool = True
) -> CheckResult | None:
    """`check_server`, unless the server cannot answer: then the writes will say so."""
    try:
        return check_server(outbox, client, spot_check_size=SPOT_CHECK_SIZE if spot_check else 0)
    except FhirError:
        return None


def counted_run(outbox: Outbox, client: FhirClient, tally: Tally, stop: SyncStop | None) -> None:
    """Count a run that wrote on the server's marker (see servercheck.advance)."""
    if stop is None and (tally.created or tally.updated):
        try:
            advance(outbox, client)
        except FhirError:
            pass  # the next run's check compares with the older count: at worst a re-send


class Importer:
    """Imports files through one outbox into one server.

    `force` maps and writes every record again, even those the outbox says the server holds.
    `admit` rejects records before anything else looks at them (an API key's units).
    """

    def __init__(
        self,
        outbox: Outbox,
        client: FhirClient,
        mappings_dir: Path,
        tally: Tally,
        sync_settings: SyncSettings,
        *,
        force: bool = False,
        admit: Admission | None = None,
        care_provider_hsa_id: str | None = None,
    ) -> None:
        self.outbox = outbox
        self.admit = admit
        self.mappings_dir = mappings_dir
        self.mappings: Mappings = load_mappings(
            mappings_dir, care_provider_hsa_id=care_provider_hsa_id
        )
        self.tally = tally
        self.force = force
        self.client = client
        self.engine = SyncEngine(outbox, client, tally, sync_settings)
        self.gate = RunGate()

    def run(self, paths: Sequence[Path], kind: SourceKind | str | None = None) -> ImportResult:
        """Import files (each read when its turn comes). The Prea60 runs in them are checked
        first (adapter/prea60/importing.py): a run the guard does not trust is written
        unconfirmed."""
        self.gate = run_gate(self.client, paths, kind, self.mappings_dir)
        # Read lazily.
        readings = [read_file(path, kind, mappings_dir=self.mappings_dir) for path in paths]
        result = self.run_readings(readings)
        result.runs, result.runs_unchecked = self.gate.checks, self.gate.unchecked
        result.readings = readings
        return result

    def run_readings(self, readings: Iterable[Reading]) -> ImportResult:
        """Import any readings, e.g. of an API request body (`read_plan_lines`)."""
        fingerprint = mapping_fingerprint(
            self.mappings_dir, self.mappings.care_provider_hsa_id or ""
        )
        self.outbox.use_fingerprint(fingerprint)
        check = checked_server(self.outbox, self.client)
        run = self.engine.start(producing=True)
        try:
            for reading in readings:
                self._read(reading, run.notify)
        except BaseException:
            run.cancel()  # what was committed stays in the outbox for the next sync
            raise
        finally:
            stop = run.finish()
        counted_run(self.outbox, self.client, self.tally, stop)
        return ImportResult(self.tally, stop, self.outbox.open_count(), check=check)

    def _read(self, reading: Reading, notify: Callable[[], None]) -> None:
        kind = str(reading.kind or "okänd")
        counted = (0, 0, 0)  # rows, accepted, duplicates of `reading.summary` already counted
        records: list[Record] = []

        def flush() -> None:
            nonlocal counted
            self._enqueue(records, kind)
            records.clear()
            summary = reading.summary
            now = (summary.rows, summary.accepted, summary.duplicates)
            rows, accepted, duplicates = (a - b for a, b in zip(now, counted, strict=True))
            counted = now
            self.tally.count_rows(kind, rows, rows - accepted - duplicates, duplicates)
            notify()

        for item in reading:
            if isinstance(item, RowError):
                self.tally.count_row_error(item)
                continue
            refused = self.admit(item) if self.admit is not None else None
            if refused is not None:
                self._reject(kind, refused)
                continue
            records.append(item)
            if len(records) >= CHUNK_RECORDS:
                flush()
        flush()

    def _enqueue(self, records: Sequence[Record], kind: str) -> None:
        if not records:
            return
        digests = [self.gate.digest(record, record_digest(record)) for record in records]
        seen = {} if self.force else self.outbox.seen(digests)
        mapped = [
            (resources, digest)
            for record, digest in zip(records, digests, strict=True)
            if digest not in seen and (resources := self._map(record, kind)) is not None
        ]
        result = self.outbox.enqueue_seen(mapped, force=self.force)
        self.tally.count_queued(
            result.queued, result.unchanged + sum(seen.values()), result.older_skipped
        )

    def _map(self, record: Record, kind: str) -> list[MappedResource] | None:
        try:
            return self.gate.resources(record, map_record(record, self.mappings))
        except MappingError as error:  # well-formed, but not valid FHIR: a rejected row
            source = record.source
            self._reject(kind, RowError(source.file, source.line, error.field, error.reason))
            return None

    def _reject(self, kind: str, error: RowError) -> None:
        """A row the reader accepted, rejected after all (counted as read already)."""
        self.tally.count_rows(kind, 0, 1, 0)
        self.tally.count_row_error(error)
