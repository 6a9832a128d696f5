"""Reconciliation: the follow-up Tasks on the server brought in line with the rules.

    report = run_followups(client, rules, as_of, mappings=m, units=["SE2321000057-E00000000001"])

One function for every caller — `sip-fhir followups`, the scheduler's jobs, the subscription
hook (`patient_refs=[...]`): read the state from the server (`load.load_states`), plan per patient
what to write (pure: `planning.plan_patient`, asking `rules.reconcile_plan`), write the Tasks as
transaction Bundles (`TaskWriter`, here).

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
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum

from adapter.canonical import TaskBusinessStatus, TaskType
from adapter.domain import PersonId
from adapter.fhirclient import Conflict, FhirClient, FhirError, Rejected
from adapter.followup.load import load_states
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

    def write(self, works: Sequence[PatientWork]) -> None:
        group: list[PatientWork] = []
        for work in works:
            if not work.entries:
                self.record(work)
                continue
            if group and sum(len(w.entries) for w in group) + len(work.entries) > self.batch_size:
                self._send(group)
                group = []
            group.append(work)
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
) -> FollowupReport:
    """Reconcile the Tasks of the patients in scope (see `load.load_states`) on `as_of`.

    A FhirError while reading ends the run (raised); while writing, it is recorded in the
    report and the patients already written stay written. Above the cancellation cap,
    `cancellations` decides (see the module docstring).
    """
    report = FollowupReport(as_of, dry_run, max_cancellations=rules.params.scan.max_cancellations)
    started = time.perf_counter()
    loaded = load_states(
        client,
        as_of=as_of,
        rules=rules,
        units=units,
        patients=patients,
        patient_refs=patient_refs,
        quick=quick,
        mappings=mappings,
    )
    works = plan_all(loaded, rules)
    report.patients = len(works)
    report.load_seconds = time.perf_counter() - started
    started = time.perf_counter()
    writer = TaskWriter(client, rules, as_of, mappings, report, batch_size)
    over_cap = sum(w.rule_cancellations() for w in works) > rules.params.scan.max_cancellations
    if over_cap and cancellations is CancelPolicy.ASK and not dry_run:  # a dry run shows them
        report.stopped = True
        report.held = [c for w in works for c in w.cancelled if c.reason != DUPLICATE_REASON]
        _log.warning("followups stopped: too many cancellations", held=len(report.held))
        return report
    if over_cap and cancellations is CancelPolicy.HOLD and not dry_run:
        works = plan_all(loaded, rules, hold_cancellations=True)
        writer.hold_cancellations = True
        _log.warning("followups: cancellations held", held=sum(len(w.held) for w in works))
    if dry_run:
        for work in works:
            writer.record(work)
    else:
        try:
            writer.write(works)
        except FhirError as error:  # temporary (retries spent), auth or fatal: stop here
            report.errors.append(f"Skrivningen avbröts: {error.message}")
    report.write_seconds = time.perf_counter() - started
    region_scan = units is None and patients is None and patient_refs is None and not quick
    if region_scan and not dry_run and not report.errors:
        _publish_metrics(report)
    _log.info(
        "followups",
        as_of=as_of.isoformat(),
        patients=report.patients,
        changes=report.changes,
        errors=len(report.errors),
        dry_run=dry_run,
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
