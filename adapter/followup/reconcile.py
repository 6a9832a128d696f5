"""Reconciliation: the follow-up Tasks on the server brought in line with the rules.

    report = run_followups(client, rules, as_of, mappings=m, units=["SE2321000057-E00000000001"])

One function for every caller — `sip-fhir followups`, the scheduler's jobs, the subscription
hook (`patient_refs=[...]`): read the state from the server in chunks of patients
(`load.iter_states`), plan per patient what to write (pure: `planning.plan_patient`, asking
`rules.reconcile_plan`), write the Tasks as transaction Bundles (`TaskWriter`, here), and let go of
each chunk before the next is read, so a region scan's memory does not grow with its scope.

Mass cancellation: a scan that would cancel more Tasks than `scan.max_cancellations` of
rules.json (a partial Prea60 run, a unit's data gone missing) does not cancel them unasked. With
`CancelPolicy.ASK` (the CLI) it writes nothing and reports what it would cancel
(`FollowupReport.stopped`); with `HOLD` (scheduler, API, subscription hook) it writes the rest
and keeps those Tasks open (`FollowupReport.held`); `ALLOW` is a person's confirmation.
Duplicates closed as such do not count. Every cancellation written is listed in
`FollowupReport.cancelled`.

Writes: a new Task is `PUT Task?identifier=<ID_TASK>|<key>` (a conditional update: two runs, or
a run and a hook, never make two Tasks of one occasion); a revised, completed or cancelled Task
is `PUT Task/<id>` with `If-Match` on the version read, so a change someone made meanwhile is
never overwritten (the server answers 409: that patient is read again and planned anew). Only
what changed is written: a rerun writes nothing and makes no new versions. A patient's Tasks
travel in one Bundle; a Bundle the server refuses is retried patient by patient, so one bad
patient only stops their own Tasks.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum

from adapter.canonical import TaskBusinessStatus, TaskType
from adapter.domain import PersonId
from adapter.fhirclient import Conflict, FhirClient, FhirError, Rejected
from adapter.followup.load import LoadedPatient, LoadedStates, iter_states, load_states
from adapter.followup.planning import (
    DUPLICATE_REASON,
    CancelledTask,
    PatientWork,
    TaskRow,
    focus_reference,
    plan_all,
    plan_patient,
)
from adapter.followup.rules import ActionKind, RuleSet
from adapter.logs import get_logger
from adapter.mapping import Mappings
from adapter.mapping.fhir import Json
from adapter.metrics import set_task_counts

_log = get_logger("adapter.followup")


class RequestCounter:
    """A FhirClient `on_request` callback: how many round-trips, and their time (seconds)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.count = 0
        self.seconds = 0.0

    def __call__(self, method: str, path: str, status: int | None, seconds: float) -> None:
        with self._lock:
            self.count += 1
            self.seconds += seconds


def local_today(rules: RuleSet) -> date:
    """Today where the rules' calendar is (Europe/Stockholm): `as_of` of a run nobody dated."""
    return datetime.now(rules.calendar.timezone).date()


class CancelPolicy(StrEnum):
    """What a scan does when it would cancel more Tasks than the rules' `scan.max_cancellations`."""

    ASK = "ask"  # write nothing; the caller asks a person (the CLI)
    HOLD = "hold"  # write the rest; keep those Tasks open and flag it (scheduler, API, hook)
    ALLOW = "allow"  # a person confirmed: cancel them


@dataclass(slots=True)
class FollowupReport:
    """What a run did (or, with `dry_run`, would do)."""

    as_of: date
    dry_run: bool
    patients: int = 0  # evaluated
    actions: Counter[tuple[ActionKind, TaskType]] = field(default_factory=Counter)
    open_tasks: list[TaskRow] = field(default_factory=list)
    without_owner: int = 0  # Tasks that cannot be made: no unit and no plan names an owner
    errors: list[str] = field(default_factory=list)
    load_seconds: float = 0.0
    write_seconds: float = 0.0
    bundles: int = 0  # transactions posted (the write round-trips)
    cancelled: list[CancelledTask] = field(default_factory=list)  # written (dry run: would be)
    held: list[CancelledTask] = field(default_factory=list)  # over the cap: not cancelled
    stopped: bool = False  # CancelPolicy.ASK and over the cap: nothing was written
    max_cancellations: int | None = None  # the cap that applied

    def count(self, kind: ActionKind) -> int:
        return sum(n for (k, _), n in self.actions.items() if k is kind)

    @property
    def changes(self) -> int:
        return sum(self.actions.values())

    def open_by_type(self) -> Counter[TaskType]:
        return Counter(row.task_type for row in self.open_tasks)

    def overdue_by_type(self) -> Counter[TaskType]:
        return Counter(
            row.task_type
            for row in self.open_tasks
            if row.business_status is TaskBusinessStatus.OVERDUE
        )


def _transaction(entries: Iterable[Json]) -> Json:
    return {"resourceType": "Bundle", "type": "transaction", "entry": list(entries)}


@dataclass
class TaskWriter:
    """Writes planned work as transactions (see the module docstring for how failures go)."""

    client: FhirClient
    rules: RuleSet
    as_of: date
    mappings: Mappings
    report: FollowupReport
    batch_size: int
    hold_cancellations: bool = False

    _group: list[PatientWork] = field(default_factory=list)  # added, not yet sent

    def write(self, works: Iterable[PatientWork]) -> None:
        for work in works:
            self.add(work)
        self.flush()

    def add(self, work: PatientWork) -> None:
        """Queue a patient's work: sent in a transaction once the next would pass batch_size."""
        if not work.entries:
            self.record(work)
            return
        queued = sum(len(w.entries) for w in self._group)
        if self._group and queued + len(work.entries) > self.batch_size:
            self.flush()
        self._group.append(work)

    def flush(self) -> None:
        group, self._group = self._group, []
        if group:
            self._send(group)

    def record(self, work: PatientWork, *, written: bool = True) -> None:
        """Count a patient's work: done (written, nothing to write, a dry run) or not written."""
        if written:
            for action in work.actions:
                self.report.actions[(action.kind, action.task_type)] += 1
            self.report.cancelled.extend(work.cancelled)
        self.report.held.extend(work.held)
        self.report.open_tasks.extend(work.rows if written else work.before)
        self.report.without_owner += work.without_owner
        self.report.errors.extend(work.errors)

    def _send(self, group: list[PatientWork], *, replanned: bool = False) -> None:
        try:
            self.client.transaction(_transaction(e for w in group for e in w.entries))
            self.report.bundles += 1
        except (Conflict, Rejected) as error:
            if len(group) > 1:  # find the patient it is about; the others go through
                for work in group:
                    self._send([work], replanned=replanned)
                return
            (work,) = group
            if isinstance(error, Conflict) and not replanned:
                # Someone changed one of the patient's Tasks since it was read: read again.
                self._replan(work)
                return
            self.report.errors.append(f"{work.patient.person}: {error.message}")
            self.record(work, written=False)
            return
        for work in group:
            self.record(work)

    def _replan(self, work: PatientWork) -> None:
        fresh = load_states(
            self.client,
            as_of=self.as_of,
            rules=self.rules,
            patient_refs=[work.patient.reference],
            mappings=self.mappings,
        )
        for patient in fresh.patients.values():
            again = plan_patient(
                patient, self.as_of, self.rules, hold_cancellations=self.hold_cancellations
            )
            if again.entries:
                self._send([again], replanned=True)
            else:
                self.record(again)


def run_followups(
    client: FhirClient,
    rules: RuleSet,
    as_of: date,
    *,
    units: Sequence[str] | None = None,
    patients: Iterable[PersonId] | None = None,
    patient_refs: Iterable[str] | None = None,
    quick: bool = False,
    dry_run: bool = False,
    mappings: Mappings,
    batch_size: int = 200,
    cancellations: CancelPolicy = CancelPolicy.HOLD,
    on_patient: Callable[[LoadedPatient, bool], None] | None = None,
) -> FollowupReport:
    """Reconcile the Tasks of the patients in scope (see `load.load_states`) on `as_of`.

    `on_patient(patient, writes)` sees each patient as read, and whether the run plans to write
    their Tasks (the worklist read model takes its rows from it: adapter/readmodel/scanrows.py).

    A FhirError while reading ends the run (raised); while writing, it is recorded in the
    report, the patients already written stay written and the run stops (no more chunks are
    read). Above the cancellation cap, `cancellations` decides (see the module docstring).
    """
    report = FollowupReport(as_of, dry_run, max_cancellations=rules.params.scan.max_cancellations)
    writer = TaskWriter(client, rules, as_of, mappings, report, batch_size)
    chunks = iter_states(
        client,
        as_of=as_of,
        rules=rules,
        units=units,
        patients=patients,
        patient_refs=patient_refs,
        quick=quick,
        mappings=mappings,
    )
    # Without a cap to decide (a dry run, or cancellations allowed) each chunk is planned,
    # written and let go. Otherwise the planned work waits for the count; the facts it was
    # planned from do not (for a patient with cancellations, the held variant is planned too).
    streaming = dry_run or cancellations is CancelPolicy.ALLOW
    waiting: list[tuple[PatientWork, PatientWork | None]] = []
    clock = _Clock(report)
    for loaded in clock.loading(chunks):
        for patient in loaded.patients.values():
            report.patients += 1
            work = plan_patient(patient, as_of, rules)
            if on_patient is not None:
                on_patient(patient, bool(work.entries))
            if dry_run:
                writer.record(work)
            elif streaming:
                if not clock.writing(writer.add, work):
                    return _done(report, units, patients, patient_refs, quick)
            else:
                held = None
                if cancellations is CancelPolicy.HOLD and work.rule_cancellations():
                    held = plan_patient(patient, as_of, rules, hold_cancellations=True)
                waiting.append((work, held))
        del loaded  # the chunk's facts: no longer needed
    over_cap = sum(w.rule_cancellations() for w, _ in waiting) > rules.params.scan.max_cancellations
    if over_cap and cancellations is CancelPolicy.ASK:
        report.stopped = True
        report.held = [c for w, _ in waiting for c in w.cancelled if c.reason != DUPLICATE_REASON]
        _log.warning("followups stopped: too many cancellations", held=len(report.held))
        return report
    if over_cap and cancellations is CancelPolicy.HOLD:
        writer.hold_cancellations = True
        waiting = [(held or work, None) for work, held in waiting]
        _log.warning("followups: cancellations held", held=sum(len(w.held) for w, _ in waiting))
    for work, _ in waiting:
        if not clock.writing(writer.add, work):
            return _done(report, units, patients, patient_refs, quick)
    clock.writing(writer.flush)
    return _done(report, units, patients, patient_refs, quick)


class _Clock:
    """Times reading (the chunks) and writing apart; a write that fails ends the writing."""

    def __init__(self, report: FollowupReport) -> None:
        self.report = report

    def loading(self, chunks: Iterator[LoadedStates]) -> Iterator[LoadedStates]:
        while True:
            started = time.perf_counter()
            loaded = next(chunks, None)
            self.report.load_seconds += time.perf_counter() - started
            if loaded is None:
                return
            yield loaded
            del loaded  # before the next chunk is read

    def writing(self, write: Callable[..., None], *work: PatientWork) -> bool:
        """False when the write failed: FhirError (retries spent, auth, fatal) stops the run."""
        started = time.perf_counter()
        try:
            write(*work)
        except FhirError as error:
            self.report.errors.append(f"Skrivningen avbröts: {error.message}")
            return False
        finally:
            self.report.write_seconds += time.perf_counter() - started
        return True


def _done(
    report: FollowupReport,
    units: Sequence[str] | None,
    patients: Iterable[PersonId] | None,
    patient_refs: Iterable[str] | None,
    quick: bool,
) -> FollowupReport:
    region_scan = units is None and patients is None and patient_refs is None and not quick
    if region_scan and not report.dry_run and not report.errors:
        _publish_metrics(report)
    _log.info(
        "followups",
        as_of=report.as_of.isoformat(),
        patients=report.patients,
        changes=report.changes,
        errors=len(report.errors),
        dry_run=report.dry_run,
    )
    return report


def _publish_metrics(report: FollowupReport) -> None:
    """The open/overdue Task gauges, from a full scan of the region."""
    open_counts: Counter[tuple[str, str]] = Counter()
    overdue: Counter[tuple[str, str]] = Counter()
    for row in report.open_tasks:
        key = (row.unit_hsa_id or "", row.task_type.value)
        open_counts[key] += 1
        if row.business_status is TaskBusinessStatus.OVERDUE:
            overdue[key] += 1
    set_task_counts(open_counts, overdue)


# The planning's names stay importable from here (one import for callers).
__all__ = [
    "DUPLICATE_REASON",
    "CancelPolicy",
    "CancelledTask",
    "FollowupReport",
    "PatientWork",
    "RequestCounter",
    "TaskRow",
    "TaskWriter",
    "focus_reference",
    "local_today",
    "plan_all",
    "plan_patient",
    "run_followups",
]
