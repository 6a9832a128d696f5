"""Planning the follow-up Tasks, pure: per patient, what the rules decide and the transaction
entries that carry it out (`plan_patient`), and the open Tasks they will have after it.

No I/O: the input is what the loader read (`adapter.followup.loaded`), the output is written by
`adapter.followup.reconcile` (TaskWriter). Writes: a new Task is `PUT Task?identifier=
<ID_TASK>|<key>` (a conditional update), a revised, completed or cancelled Task `PUT Task/<id>`
with `If-Match` on the version read; duplicates of a key are cancelled as such
(DUPLICATE_REASON).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date

from adapter.canonical import ID_DISCHARGE, ID_PLAN, ID_TASK, TaskBusinessStatus, TaskType
from adapter.domain import PersonId
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
from adapter.mapping import match_url
from adapter.mapping.fhir import Json
from adapter.mapping.identifiers import stable_urn

DUPLICATE_REASON = "Dubblett: en äldre öppen uppgift gäller samma tillfälle"
_OUTCOME = {ActionKind.COMPLETE: Outcome.COMPLETED, ActionKind.CANCEL: Outcome.CANCELLED}


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


@dataclass(frozen=True, slots=True)
class WorkPatient:
    """Whose work it is: enough to report it and to read the patient again, not their facts
    (a chunked scan keeps planned work, not what it was planned from)."""

    person: PersonId
    reference: str


@dataclass(slots=True)
class PatientWork:
    """One patient's actions and the transaction entries that carry them out."""

    patient: WorkPatient
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
    who = WorkPatient(patient.person, patient.reference)
    work = PatientWork(who, [], [], [], _by_due(before.values()))
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


def plan_all(
    loaded: LoadedStates, rules: RuleSet, *, hold_cancellations: bool = False
) -> list[PatientWork]:
    return [
        plan_patient(patient, loaded.as_of, rules, hold_cancellations=hold_cancellations)
        for patient in loaded.patients.values()
    ]


__all__ = [
    "DUPLICATE_REASON",
    "CancelledTask",
    "PatientWork",
    "TaskRow",
    "WorkPatient",
    "focus_reference",
    "plan_all",
    "plan_patient",
]
