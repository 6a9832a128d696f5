"""Ingest through the CLI's pipeline: what the API receives goes the way `sip-fhir import` goes.

A request body (or an uploaded file) is spooled to a file of its own under
`<data_dir>/uploads/` (readable by the owner only, deleted when the import ends) and handed to
`adapter.sync.Importer.run`, the function behind `sip-fhir import`: the same readers, mapping,
outbox (`<data_dir>/outbox.sqlite3`, or the shared database) and sync engine, so a request is
durable once it is in the outbox and an unchanged resend writes nothing. Spooling keeps memory
flat for a large upload.

A caller whose API key is limited to some units (`Principal.ingest_units`) gets only their rows
through: a row of another unit is a row error naming that unit, and a discharge notice (which
names no unit: it is for whichever unit the patient belongs to) is refused, so a unit's key
cannot write other units' patients' data. The rows of its own units still go through.

Row errors keep the readers' wording (Swedish, personnummer masked); only the file name is the
one the caller knows (the upload's name, or e.g. "plans (API)") instead of the spool file's.
"""

from __future__ import annotations

import csv
import functools
import io
import os
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import BinaryIO

from adapter.canonical import ID_PLAN
from adapter.domain import DischargeNotice, Event, Plan, Record, RowError
from adapter.fhirclient import FhirClient, FhirError
from adapter.followup.facts import hsa_id_of
from adapter.personnummer import written
from adapter.readmodel.imports import ImportTouches
from adapter.readmodel.worklists import store_for
from adapter.settings import Settings
from adapter.sources import SourceKind
from adapter.sources import events as event_format
from adapter.sources import prea60 as prea60_format
from adapter.sources.csvfile import load_column_map
from adapter.sync import (
    Importer,
    ImportResult,
    SyncHooks,
    SyncSettings,
    Tally,
    combine,
    metrics_hooks,
    open_outbox,
    outbox_url,
)

MAX_ERRORS_SHOWN = 1000  # row errors in one answer; the count says how many there were
UPLOADS = "uploads"
_CHUNK = 1 << 16
_SUFFIX = {SourceKind.PLANS: ".jsonl"}
_UNIT_COLUMNS = {SourceKind.PREA60: prea60_format.COLUMNS, SourceKind.EVENTS: event_format.COLUMNS}


@dataclass(slots=True)
class IngestReport:
    """What became of one body: rows read, accepted and rejected (with reasons), writes."""

    source: str
    kind: SourceKind
    rows: int = 0
    rejected: int = 0
    duplicates: int = 0
    errors: list[RowError] = field(default_factory=list)
    errors_total: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0  # resources the server already held as they are
    dead: int = 0  # resources the server refused (see `sip-fhir sync --failed`)
    pending: int = 0  # resources still waiting in the outbox
    stopped: str | None = None  # why writing stopped early (masked)
    encoding: str | None = None  # how the body was decoded (utf-8, utf-8-sig, cp1252)
    unconfirmed_runs: list[str] = field(default_factory=list)  # Prea60 runs held back (Swedish)

    @property
    def accepted(self) -> int:
        return self.rows - self.rejected - self.duplicates

    @property
    def unreadable(self) -> bool:
        """Nothing could be read: the body as a whole is wrong (empty, no header, not JSON...)."""
        return self.rows == 0 and any(e.duplicate_of is None for e in self.errors)

    @property
    def all_rejected(self) -> bool:
        """Rows were read and every one was rejected: nothing of the body was written."""
        return self.rejected > 0 and self.accepted == 0

    def add_error(self, error: RowError) -> None:
        self.errors_total += 1
        if len(self.errors) < MAX_ERRORS_SHOWN:
            self.errors.append(replace(error, file=self.source))

    def fill(self, tally: Tally, result: ImportResult) -> None:
        self.rows = tally.rows_read
        self.rejected = tally.rows_rejected
        self.duplicates = tally.rows_duplicate
        self.created = tally.created
        self.updated = tally.updated
        self.unchanged = tally.noop + tally.unchanged + tally.older_skipped
        self.dead = tally.dead
        self.pending = result.open_left
        self.stopped = result.stop.message if result.stop else None
        self.unconfirmed_runs = [check.describe() for check in result.unconfirmed_runs]
        if result.runs_unchecked:
            self.unconfirmed_runs.append(result.runs_unchecked)


class Ingestion:
    """Runs spooled bodies through `Importer` (one importer, client and outbox per body)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.spool_dir = settings.data_dir / UPLOADS

    @contextmanager
    def spooled(self, stream: BinaryIO, kind: SourceKind) -> Iterator[Path]:
        """`stream` copied to a private file named for its kind; removed afterwards."""
        self.spool_dir.mkdir(parents=True, exist_ok=True)
        path = self.spool_dir / f"{kind.value}-{uuid.uuid4().hex}{_SUFFIX.get(kind, '.csv')}"
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        try:
            with os.fdopen(fd, "wb") as out:
                while chunk := stream.read(_CHUNK):
                    out.write(chunk)
            yield path
        finally:
            path.unlink(missing_ok=True)

    def run(
        self,
        stream: BinaryIO,
        kind: SourceKind,
        name: str,
        *,
        units: frozenset[str] | None = None,
    ) -> IngestReport:
        """Import one body of `kind`; errors are reported under `name`. With `units`, only
        rows of those units (HSA-ids) are taken."""
        with self.spooled(stream, kind) as path:
            return self.run_files([path], kind, name, units=units)

    def run_files(
        self,
        paths: Sequence[Path],
        kind: SourceKind,
        name: str,
        *,
        units: frozenset[str] | None = None,
    ) -> IngestReport:
        report = IngestReport(name, kind)
        tally = Tally(combine(metrics_hooks(), SyncHooks(row_error=report.add_error)))
        sync_settings = SyncSettings(batch_size=self.settings.batch_size)
        with FhirClient(self.settings.endpoint(), on_retry=tally.client_retry) as client:
            admit = None
            if units is not None:
                owners = plan_owner(client) if kind is SourceKind.PLANS else None
                admit = unit_admission(units, kind, self.settings.mappings_dir, owners)
            touches = ImportTouches()
            importer = Importer(
                open_outbox(outbox_url(self.settings)),
                client,
                self.settings.mappings_dir,
                tally,
                sync_settings,
                admit=touches.admission(admit),
                care_provider_hsa_id=self.settings.care_provider_hsa_id,
            )
            try:
                result = importer.run(paths, kind)
            finally:  # what landed before a failure is written too
                store_for(self.settings).record(touches.touched())
        report.fill(tally, result)
        report.encoding = next(
            (r.summary.encoding for r in result.readings if r.summary.encoding), None
        )
        return report

    def record_events(self, events: Sequence[Event], name: str) -> IngestReport:
        """Registered actions (e.g. a follow-up done in the worklist) as an events file, so
        they take the very path an events*.csv takes."""
        return self.run(
            io.BytesIO(events_csv(events, self.settings.mappings_dir)), SourceKind.EVENTS, name
        )


def events_csv(events: Sequence[Event], mappings_dir: Path) -> bytes:
    """`events` in the events format, under the first header name the column map gives."""
    headers = load_column_map(SourceKind.EVENTS, event_format.COLUMNS, mappings_dir)
    text = io.StringIO()
    writer = csv.writer(text, delimiter=";", lineterminator="\n")
    fields = [column.field for column in event_format.COLUMNS]
    writer.writerow([headers[f][0] for f in fields])
    for event in events:
        values = {
            "personnummer": written(event.patient.digits),
            "date": event.date.isoformat(),
            "code": event.code.value,
            "unit_hsa_id": event.unit_hsa_id,
            "contact_type": event.contact_type or "",
            "plan_ref": event.plan_ref or "",
        }
        writer.writerow([values[f] for f in fields])
    return text.getvalue().encode("utf-8")


PlanOwner = Callable[[str], str | None]  # a plan's key -> the unit that holds it, if any


def unit_admission(
    units: frozenset[str],
    kind: SourceKind,
    mappings_dir: Path,
    holder_of: PlanOwner | None = None,
) -> Callable[[Record], RowError | None]:
    """A check that admits records of `units` only: another unit's row is a row error that
    names the unit, under the unit column's header; a discharge notice, which names no unit,
    is refused with the reason; a plan another unit already holds (`holder_of`) cannot be
    taken over by sending it again under one's own unit."""
    allowed = ", ".join(sorted(units)) or "inga"
    column = _unit_column(kind, mappings_dir)

    def admit(record: Record) -> RowError | None:
        source = record.source
        if isinstance(record, DischargeNotice):
            reason = (
                f"Utskrivningsmeddelanden anger ingen enhet, och nyckeln gäller bara {allowed}: "
                "läs in dem med en nyckel för hela regionen"
            )
            return RowError(source.file, source.line, None, reason)
        if record.unit_hsa_id not in units:
            reason = (
                f"Enheten {record.unit_hsa_id} hör inte till nyckelns enheter ({allowed}); "
                "raden läses inte in"
            )
            return RowError(source.file, source.line, column, reason, value=record.unit_hsa_id)
        if not isinstance(record, Plan) or holder_of is None:
            return None
        try:
            holder = holder_of(record.key)
        except FhirError:
            reason = (
                "Planens enhet kan inte kontrolleras nu (FHIR-servern svarar inte); skicka igen"
            )
            return RowError(source.file, source.line, "plan_id", reason, value=record.plan_id)
        if holder is None or holder in units:
            return None
        reason = (
            f"Planen {record.key} finns redan vid enheten {holder}, som inte hör till "
            f"nyckelns enheter ({allowed}); raden läses inte in"
        )
        return RowError(source.file, source.line, "plan_id", reason, value=holder)

    return admit


def plan_owner(client: FhirClient) -> PlanOwner:
    """The unit of the server's CarePlan with a plan's business key (None: no such plan);
    FhirError when the server does not answer (the row is then held back: unchecked)."""

    @functools.cache
    def owner(key: str) -> str | None:
        params = [("identifier", f"{ID_PLAN}|{key}"), ("_elements", "author")]
        for care_plan in client.search("CarePlan", params, post=True):
            return hsa_id_of(care_plan.get("author"))
        return None

    return owner


def _unit_column(kind: SourceKind, mappings_dir: Path) -> str | None:
    """The unit's column as error reports name it: the CSV header, or the plan's JSON field."""
    if kind is SourceKind.PLANS:
        return "unit_hsa_id"
    columns = _UNIT_COLUMNS.get(kind)
    return load_column_map(kind, columns, mappings_dir)["unit_hsa_id"][0] if columns else None
