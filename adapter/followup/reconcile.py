"""Reconciliation: the follow-up Tasks on the server brought in line with the rules.

    report = run_followups(client, rules, as_of, units=["SE2321000057-E00000000001"])

One function for every caller — `sip-fhir followups`, the scheduler's jobs, the subscription
hook (`patient_refs=[...]`): read the state from the server (`load.load_states`), ask the rules
what to do per patient (`rules.reconcile_plan`), write the Tasks as transaction Bundles.

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

from adapter.canonical import ID_DISCHARGE, ID_PLAN, ID_TASK, TaskBusinessStatus, TaskType
from adapter.domain import PersonId
from adapter.fhirclient import Conflict, FhirClient, FhirError, Rejected
from adapter.followup.load import load_states
from adapter.followup.loaded import LoadedPatient, LoadedStates
from adapter.followup.rules import (
    Action,
    ActionKind,
    Focus,
    NoticeFocus,
    Outcome,
    Owner,
    PlanFocus,
    RuleSet,
    TaskDecision,
    reconcile_plan,
)
from adapter.followup.tasks import NEW_STATUS, ServerTask, closed_task, new_task, revised_task
from adapter.logs import get_logger
from adapter.mapping import Mappings, match_url
from adapter.mapping.fhir import Json
from adapter.mapping.identifiers import stable_urn
from adapter.metrics import set_task_counts

DUPLICATE_REASON = "Dubblett: en äldre öppen uppgift gäller samma tillfälle"
_OUTCOME = {ActionKind.COMPLETE: Outcome.COMPLETED, ActionKind.CANCEL: Outcome.CANCELLED}
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


@dataclass(frozen=True, slots=True)
class TaskRow:
    """An open Task after the run (the summary table)."""

    person: PersonId
    task_type: TaskType
    due: date | None
    business_status: TaskBusinessStatus | None
    status: str
    owner: Owner | None
    owner_name: str | None
    unit_hsa_id: str | None


class CancelPolicy(StrEnum):
    """What a scan does when it would cancel more Tasks than the rules' `scan.max_cancellations`."""

    ASK = "ask"  # write nothing; the caller asks a person (the CLI)
    HOLD = "hold"  # write the rest; keep those Tasks open and flag it (scheduler, API, hook)
    ALLOW = "allow"  # a person confirmed: cancel them


@dataclass(frozen=True, slots=True)
class CancelledTask:
    """A Task the run cancelled (or would cancel): for the summary; mask `person` to show it."""

    task_id: str
    person: PersonId
    task_type: TaskType
    reason: str

    def describe(self) -> str:
        """Swedish, personnummer masked."""
        return f"Task/{self.task_id} {self.person.masked} {self.task_type.value}: {self.reason}"


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


@dataclass(slots=True)
class PatientWork:
    """One patient's actions and the transaction entries that carry them out."""

    patient: LoadedPatient
    actions: list[Action]
    entries: list[Json]
    rows: list[TaskRow]  # the open Tasks once the entries are written
    before: list[TaskRow]  # ... and as they are now
    without_owner: int = 0
    errors: list[str] = field(default_factory=list)
    cancelled: list[CancelledTask] = field(default_factory=list)  # in `entries`
    held: list[CancelledTask] = field(default_factory=list)  # left out: over the cap

    def rule_cancellations(self) -> int:
        """Cancellations the rules decided (closing a duplicate is not one)."""
        return sum(1 for c in self.cancelled if c.reason != DUPLICATE_REASON)


def focus_reference(patient: LoadedPatient, focus: Focus) -> str | None:
    """The literal reference of what a Task is about; a plan or notice by identifier otherwise."""
    found = patient.facts.focus.reference(focus)
    if found is not None:
        return found
    if isinstance(focus, PlanFocus):
        return match_url("CarePlan", ID_PLAN, focus.plan_key)
    if isinstance(focus, NoticeFocus):
        return match_url("Encounter", ID_DISCHARGE, focus.message_id)
    return None


def _create_entry(resource: Json, key: str) -> Json:
    url = match_url("Task", ID_TASK, key)
    return {
        "fullUrl": stable_urn(url),
        "resource": resource,
        "request": {"method": "PUT", "url": url},
    }


def _update_entry(resource: Json, version: str | None) -> Json:
    request: Json = {"method": "PUT", "url": f"Task/{resource['id']}"}
    if version:
        request["ifMatch"] = f'W/"{version}"'
    return {"resource": resource, "request": request}


def _owner_name(patient: LoadedPatient, owner: Owner | None) -> str | None:
    if owner is None:
        return None
    for plan in patient.state.plans:
        for participant in plan.participants:
            if participant.hsa_id == owner.hsa_id and participant.name:
                return participant.name
    return None


def plan_patient(
    patient: LoadedPatient, as_of: date, rules: RuleSet, *, hold_cancellations: bool = False
) -> PatientWork:
    """Pure: what to write for one patient, and the open Tasks they will have after it.

    `hold_cancellations` leaves the rules' cancellations out (listed in `held`).
    """
    open_tasks = {t.key: t for t in patient.open_by_key().values()}
    planned = reconcile_plan(
        patient.open_tasks(), patient.state, as_of, rules, patient.closed_keys()
    )
    before: dict[str, TaskRow] = {}
    for key, task in open_tasks.items():
        before[key] = TaskRow(
            patient.person,
            task.task_type,
            task.due,
            task.business_status,
            task.status,
            task.owner,
            _owner_name(patient, task.owner),
            task.unit_hsa_id,
        )
    work = PatientWork(patient, [], [], [], _by_due(before.values()))
    after = dict(before)
    for action in planned:
        decision = action.decision
        if decision is not None and decision.owner is None:
            work.without_owner += 1  # the profile requires an owner; nobody to give it to
            continue
        if action.kind is ActionKind.CANCEL:
            cancel = CancelledTask(
                open_tasks[action.key].id, patient.person, action.task_type, action.reason or ""
            )
            if hold_cancellations:
                work.held.append(cancel)
                continue
            work.cancelled.append(cancel)
        entry = _entry(patient, action, as_of, open_tasks)
        if isinstance(entry, str):
            work.errors.append(entry)
            continue
        work.actions.append(action)
        work.entries.append(entry)
        if decision is None:
            after.pop(action.key, None)
        else:
            status = open_tasks[action.key].status if action.key in open_tasks else NEW_STATUS
            after[action.key] = _row(patient, decision, status)
    for duplicate in patient.duplicate_tasks():
        work.actions.append(
            Action(ActionKind.CANCEL, duplicate.key, duplicate.task_type, reason=DUPLICATE_REASON)
        )
        resource = closed_task(duplicate.resource, Outcome.CANCELLED, DUPLICATE_REASON)
        work.entries.append(_update_entry(resource, duplicate.version))
        work.cancelled.append(
            CancelledTask(duplicate.id, patient.person, duplicate.task_type, DUPLICATE_REASON)
        )
    work.rows = _by_due(after.values())
    return work


def _by_due(rows: Iterable[TaskRow]) -> list[TaskRow]:
    return sorted(rows, key=lambda r: (r.due or date.max, r.task_type.value))


def _row(patient: LoadedPatient, decision: TaskDecision, status: str) -> TaskRow:
    return TaskRow(
        patient.person,
        decision.task_type,
        decision.due,
        decision.business_status,
        status,
        decision.owner,
        _owner_name(patient, decision.owner),
        decision.unit_hsa_id,
    )


def _entry(
    patient: LoadedPatient, action: Action, as_of: date, open_tasks: dict[str, ServerTask]
) -> Json | str:
    """The transaction entry of an action, or why there is none (Swedish)."""
    decision = action.decision
    if action.kind in _OUTCOME:
        task = open_tasks[action.key]
        resource = closed_task(task.resource, _OUTCOME[action.kind], action.reason or "")
        return _update_entry(resource, task.version)
    if decision is None:
        raise ValueError(f"{action.kind} without a decision")
    reference = focus_reference(patient, decision.focus)
    if reference is None:
        return f"{patient.person}: hittar inte det uppgiften gäller ({decision.focus})"
    if action.kind is ActionKind.CREATE:
        resource = new_task(
            decision,
            patient_reference=patient.reference,
            focus_reference=reference,
            authored_on=as_of,
        )
        return _create_entry(resource, decision.key)
    task = open_tasks[action.key]
    return _update_entry(
        revised_task(task.resource, decision, focus_reference=reference), task.version
    )


def _transaction(entries: Iterable[Json]) -> Json:
    return {"resourceType": "Bundle", "type": "transaction", "entry": list(entries)}


@dataclass
class TaskWriter:
    """Writes planned work as transactions (see the module docstring for how failures go)."""

    client: FhirClient
    rules: RuleSet
    as_of: date
    mappings: Mappings | None
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
    mappings: Mappings | None = None,
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


def plan_all(
    loaded: LoadedStates, rules: RuleSet, *, hold_cancellations: bool = False
) -> list[PatientWork]:
    return [
        plan_patient(patient, loaded.as_of, rules, hold_cancellations=hold_cancellations)
        for patient in loaded.patients.values()
    ]


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
