"""The unit's worklist: one row per patient in its risk group or with an open Task of the unit.

A row says what the vårdsamordnare acts on: the risk (the unit's newest Prea60 run), the plan
(an active SIP, else an active patientkontrakt, else none) with the quality score of the unit's
own active plan and the criteria it does not meet, the latest follow-up, the next due
date (the earliest of the unit's open Tasks and the 90-day follow-up), the open Tasks, and whether
anything is overdue. Overdue rows come first, then by due date.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from enum import StrEnum

from adapter.canonical import TaskBusinessStatus, TaskType
from adapter.domain import PersonId, PlanKind
from adapter.followup.loaded import LoadedPatient, LoadedStates
from adapter.followup.rules import RuleSet
from adapter.followup.state import PatientState
from adapter.followup.tasks import ServerTask
from adapter.quality import PlanQuality
from adapter.worklist.labels import TASK_TITLES


class PlanLabel(StrEnum):
    """The patient's plan as the list shows it."""

    SIP = "SIP"
    PATIENTKONTRAKT = "patientkontrakt"
    NONE = "ingen"


def logical_id(reference: str | None) -> str | None:
    """`123` of `Patient/123`."""
    return reference.rsplit("/", 1)[-1] if reference else None


@dataclass(frozen=True, slots=True)
class TaskItem:
    """An open follow-up Task as the views show it."""

    id: str  # the Task's logical id on the server (used in /tasks/{id}/done)
    task_type: TaskType
    title: str  # Swedish
    description: str | None
    status: str
    due: date | None
    overdue: bool
    unit_hsa_id: str | None
    patient_id: str | None


def task_item(task: ServerTask, as_of: date) -> TaskItem:
    overdue = task.business_status is TaskBusinessStatus.OVERDUE or (
        task.due is not None and task.due < as_of
    )
    description = task.resource.get("description")
    return TaskItem(
        id=task.id,
        task_type=task.task_type,
        title=TASK_TITLES[task.task_type],
        description=description if isinstance(description, str) else None,
        status=task.status,
        due=task.due,
        overdue=overdue,
        unit_hsa_id=task.unit_hsa_id,
        patient_id=logical_id(task.patient_reference),
    )


def open_task_items(
    patient: LoadedPatient, as_of: date, unit_hsa_id: str | None = None
) -> tuple[TaskItem, ...]:
    """The patient's open Tasks (of one unit, if given), the earliest due first."""
    tasks = [
        task_item(task, as_of)
        for task in patient.open_by_key().values()
        if unit_hsa_id is None or task.unit_hsa_id == unit_hsa_id
    ]
    return tuple(sorted(tasks, key=lambda t: (t.due or date.max, t.title, t.id)))


def unit_plan_quality(state: PatientState, unit_hsa_id: str, as_of: date) -> PlanQuality | None:
    """The quality of the unit's own active plan (a SIP before a patientkontrakt), if scored.

    Another unit's plan gives none: its score and what it lacks are content of that unit's plan.
    """
    own = [p for p in state.active_plans(as_of) if p.unit_hsa_id == unit_hsa_id]
    own.sort(key=lambda p: p.kind is not PlanKind.SIP)  # stable: the newest of a kind first
    return next((p.quality for p in own if p.quality is not None), None)


def plan_label(state: PatientState, as_of: date) -> PlanLabel:
    kinds = {plan.kind for plan in state.active_plans(as_of)}
    if PlanKind.SIP in kinds:
        return PlanLabel.SIP
    if PlanKind.PATIENTKONTRAKT in kinds:
        return PlanLabel.PATIENTKONTRAKT
    return PlanLabel.NONE


@dataclass(frozen=True, slots=True)
class WorklistRow:
    patient_id: str  # the Patient's logical id on the server: the opaque reference in URLs
    person: PersonId
    name: str | None
    in_risk_group: bool
    risk_percent: Decimal | None  # at the unit's newest run the patient is in
    run_date: date | None
    plan: PlanLabel
    quality: PlanQuality | None  # of the unit's own active plan (see unit_plan_quality)
    last_follow_up: date | None
    last_follow_up_what: str | None  # "AW010", "UPPF", "ny plan", "ny version av planen"
    follow_up_due: date | None  # latest follow-up + the interval (patients with an active plan)
    due: date | None  # the earliest of the open Tasks' due dates and follow_up_due
    tasks: tuple[TaskItem, ...]
    overdue: bool


def _unit_risk(
    state: PatientState, unit_hsa_id: str, as_of: date
) -> tuple[Decimal | None, date | None]:
    entries = [
        e for e in state.risk_entries if e.unit_hsa_id == unit_hsa_id and e.run_date <= as_of
    ]
    if not entries:
        return None, None
    newest = max(entries, key=lambda e: e.run_date)
    return newest.risk_percent, newest.run_date


def worklist_row(
    patient: LoadedPatient, unit_hsa_id: str, as_of: date, rules: RuleSet, name: str | None
) -> WorklistRow | None:
    """The patient's row on the unit's list, or None if they do not belong there."""
    state = patient.state
    in_group = rules.in_risk_group(state, unit_hsa_id, as_of)
    tasks = open_task_items(patient, as_of, unit_hsa_id)
    if not in_group and not tasks:
        return None
    risk, run = _unit_risk(state, unit_hsa_id, as_of)
    latest = state.latest_follow_up(as_of)
    follow_up_due = rules.follow_up_due(state, as_of) if in_group else None
    dues = [t.due for t in tasks if t.due is not None]
    if follow_up_due is not None:
        dues.append(follow_up_due)
    overdue = any(t.overdue for t in tasks) or (follow_up_due is not None and follow_up_due < as_of)
    return WorklistRow(
        patient_id=logical_id(patient.reference) or patient.reference,
        person=patient.person,
        name=name,
        in_risk_group=in_group,
        risk_percent=risk,
        run_date=run,
        plan=plan_label(state, as_of),
        quality=unit_plan_quality(state, unit_hsa_id, as_of),
        last_follow_up=latest.date if latest else None,
        last_follow_up_what=latest.what if latest else None,
        follow_up_due=follow_up_due,
        due=min(dues, default=None),
        tasks=tasks,
        overdue=overdue,
    )


def row_order(row: WorklistRow) -> tuple[bool, date, str, str]:
    return (not row.overdue, row.due or date.max, row.name or "", row.patient_id)


def worklist_rows(
    loaded: LoadedStates | Iterable[LoadedPatient],
    unit_hsa_id: str,
    as_of: date,
    rules: RuleSet,
    names: Mapping[str, str] | None = None,
) -> list[WorklistRow]:
    """The unit's list on `as_of`; `names` by Patient logical id. Overdue first, then by due."""
    patients = loaded.patients.values() if isinstance(loaded, LoadedStates) else loaded
    names = names or {}
    rows = [
        row
        for patient in patients
        if (
            row := worklist_row(
                patient,
                unit_hsa_id,
                as_of,
                rules,
                names.get(logical_id(patient.reference) or ""),
            )
        )
        is not None
    ]
    return sorted(rows, key=row_order)
