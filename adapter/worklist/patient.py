"""One patient as the vårdsamordnare sees them: the plans with their goals and who does what
(region, kommun, the patient, a närstående), the follow-up history and the open Tasks.

Built from what the follow-up loader read (the state the rules see, and the Tasks) plus the
plans' own resources (CarePlan, Goal, CareTeam as JSON), which hold the texts the state leaves out.
Only SIP and patientkontrakt CarePlans of the adapter (business identifier ID_PLAN) are shown.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from adapter.canonical import (
    EXT_DATA_ABSENT_REASON,
    EXT_HUVUDMAN,
    EXT_OVERALL_RESPONSIBILITY,
    EXT_PERFORMER_ROLE,
    EXT_RESPONSIBLE,
    EXT_WHAT_MATTERS,
)
from adapter.domain import PersonId, PlanKind
from adapter.followup.facts import Translations, local_day, plan_facts, reference_of
from adapter.followup.loaded import LoadedPatient
from adapter.followup.rules import RuleSet
from adapter.mapping.fhir import Json
from adapter.mapping.readback import extension_value
from adapter.quality import PlanQuality
from adapter.worklist.labels import (
    EVENT_TEXTS,
    NEW_PLAN,
    NEW_VERSION,
    PATIENT,
)
from adapter.worklist.rows import PlanLabel, TaskItem, logical_id, open_task_items


def patient_name(patient: Json) -> str | None:
    """The Patient's name as text (`name.text`, else given + family), or None. A name marked
    data-absent-reason (a stub's "Namn okänt", mapping/patient.py) is no name."""
    for name in patient.get("name", ()):
        if any(e.get("url") == EXT_DATA_ABSENT_REASON for e in name.get("extension", ())):
            continue
        if name.get("text"):
            return str(name["text"])
        parts = [*name.get("given", ()), name.get("family")]
        text = " ".join(str(p) for p in parts if p)
        if text:
            return text
    return None


@dataclass(frozen=True, slots=True)
class RiskView:
    unit_hsa_id: str
    run_date: date
    risk_percent: Decimal
    in_risk_group: bool


@dataclass(frozen=True, slots=True)
class GoalView:
    text: str
    by_patient: bool  # the patient's own goal (Goal.expressedBy = the Patient)
    due: date | None


@dataclass(frozen=True, slots=True)
class ActionView:
    text: str
    responsible: str | None  # region | kommun | patient | narstaende
    responsible_label: str | None  # Regionen, Kommunen, Patienten, Närstående
    performer: str | None  # who, as the plan names them
    role: str | None  # their role in the plan, in words
    goal: str | None  # the goal's text


@dataclass(frozen=True, slots=True)
class AppointmentView:
    day: date
    text: str


@dataclass(frozen=True, slots=True)
class ParticipantView:
    role: str | None
    name: str | None
    organization: str | None
    huvudman: str | None


@dataclass(frozen=True, slots=True)
class PlanView:
    id: str  # the CarePlan's logical id
    key: str  # source_system:plan_id
    unit_hsa_id: str  # the unit whose plan it is: its content is shown to that unit only
    kind: PlanLabel
    status: str  # Swedish
    active: bool
    title: str | None
    created: date
    updated: date
    version: int
    valid_until: date | None
    what_matters: str | None
    overall_responsibility: str | None  # SIP: the huvudman with the overall responsibility
    goals: tuple[GoalView, ...]
    actions: tuple[ActionView, ...]
    appointments: tuple[AppointmentView, ...]
    participants: tuple[ParticipantView, ...]
    quality: PlanQuality | None = None  # the score stored with the plan, unmet criteria named


@dataclass(frozen=True, slots=True)
class PlanElsewhere:
    """Another unit's plan as a caller outside it sees it: that it exists, never its content."""

    unit_hsa_id: str
    kind: PlanLabel
    status: str  # Swedish
    active: bool
    created: date
    updated: date
    valid_until: date | None


@dataclass(frozen=True, slots=True)
class HistoryItem:
    day: date
    code: str  # AU124, AU125, AW010, UPPF, SIPKALL, or "plan" for a plan or a new version
    text: str  # Swedish
    unit_hsa_id: str | None
    plan_key: str | None


@dataclass(frozen=True, slots=True)
class PatientView:
    patient_id: str
    person: PersonId
    name: str | None
    units: tuple[str, ...]  # the units the patient belongs to (risk, plans, Tasks) that are shown
    risks: tuple[RiskView, ...]
    plans: tuple[PlanView, ...]
    history: tuple[HistoryItem, ...]  # newest first
    tasks: tuple[TaskItem, ...]  # open, the earliest due first
    last_follow_up: date | None
    follow_up_due: date | None
    plans_elsewhere: tuple[PlanElsewhere, ...] = ()  # other units' plans, summaries only


def patient_units(patient: LoadedPatient) -> set[str]:
    """Every unit the patient belongs to: Prea60 lists, plans and the adapter's Tasks."""
    state = patient.state
    units = {e.unit_hsa_id for e in state.risk_entries} | {p.unit_hsa_id for p in state.plans}
    units |= {t.unit_hsa_id for t in patient.tasks if t.unit_hsa_id}
    return units


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


def _concept_text(concept: Any) -> str | None:
    if not isinstance(concept, dict):
        return None
    return _text(concept.get("text")) or next(
        (c["display"] for c in concept.get("coding", ()) if _text(c.get("display"))), None
    )


def _coding(element: Json, url: str) -> Json:
    value = extension_value(element, url, "Coding")
    return value if isinstance(value, dict) else {}


def _who(reference: Any) -> str | None:
    """A performer or member as words: its display, or "Patienten" for the Patient."""
    if not isinstance(reference, dict):
        return None
    if _text(reference.get("display")):
        return str(reference["display"])
    target = reference_of(reference) or str(reference.get("reference", ""))
    return PATIENT if target.startswith("Patient") else None


def _goal(goal: Json, calendar_day: Any) -> GoalView | None:
    text = _text((goal.get("description") or {}).get("text"))
    if text is None:
        return None
    targets = goal.get("target") or [{}]
    by_patient = str((goal.get("expressedBy") or {}).get("reference", "")).startswith("Patient")
    return GoalView(text, by_patient, calendar_day(targets[0].get("dueDate")))


def _action(detail: Json, goals: dict[str, GoalView]) -> ActionView:
    responsible = _coding(detail, EXT_RESPONSIBLE)
    goal_refs = [reference_of(g) for g in detail.get("goal", ())]
    goal = next((goals[r].text for r in goal_refs if r in goals), None)
    return ActionView(
        text=_text(detail.get("description")) or "",
        responsible=_text(responsible.get("code")),
        responsible_label=_text(responsible.get("display")),
        performer=next((w for p in detail.get("performer", ()) if (w := _who(p))), None),
        role=_concept_text(extension_value(detail, EXT_PERFORMER_ROLE, "CodeableConcept")),
        goal=goal,
    )


def appointment_views(
    details: Iterable[Json], calendar_day: Callable[[Any], date | None], *, untitled: str
) -> list[AppointmentView]:
    """The booked times among a CarePlan's activity details (those with a start day), in their
    order; `untitled` stands for a missing description."""
    return [
        AppointmentView(start, _text(d.get("description")) or untitled)
        for d in details
        if d.get("kind") == "Appointment"
        and (start := calendar_day((d.get("scheduledPeriod") or {}).get("start"))) is not None
    ]


def _participants(team: Json | None) -> tuple[ParticipantView, ...]:
    return tuple(
        ParticipantView(
            role=next((t for r in member.get("role", ()) if (t := _concept_text(r))), None),
            name=_who(member.get("member")),
            organization=_text((member.get("onBehalfOf") or {}).get("display")),
            huvudman=_text(_coding(member, EXT_HUVUDMAN).get("display")),
        )
        for member in (team or {}).get("participant", ())
    )


def _ref(resource: Json) -> str:
    return f"{resource.get('resourceType')}/{resource.get('id')}"


def plan_views(
    resources: Iterable[Json], translations: Translations, rules: RuleSet, as_of: date
) -> list[PlanView]:
    """The SIP and patientkontrakt CarePlans among `resources` (with their Goals and CareTeams),
    active first, then the most recently changed."""
    by_ref = {_ref(r): r for r in resources}

    def day(value: Any) -> date | None:
        return local_day(value, rules.calendar)

    views = []
    for care_plan in by_ref.values():
        if care_plan.get("resourceType") != "CarePlan":
            continue
        teams = [
            by_ref.get(r or "") for t in care_plan.get("careTeam", ()) if (r := reference_of(t))
        ]
        team = next((t for t in teams if t is not None), None)
        facts = plan_facts(care_plan, team, translations, rules.calendar)
        if facts is None:
            continue
        goals: dict[str, GoalView] = {}
        for goal_ref in care_plan.get("goal", ()):
            ref = reference_of(goal_ref)
            goal = _goal(by_ref[ref], day) if ref in by_ref else None
            if ref and goal is not None:
                goals[ref] = goal
        activities = [a.get("detail") or {} for a in care_plan.get("activity", ())]
        appointments = appointment_views(activities, day, untitled="")
        views.append(
            PlanView(
                id=str(care_plan.get("id")),
                key=facts.key,
                unit_hsa_id=facts.unit_hsa_id,
                kind=PlanLabel.SIP if facts.kind is PlanKind.SIP else PlanLabel.PATIENTKONTRAKT,
                status=facts.status.swedish,
                active=facts.is_active(as_of),
                title=_text(care_plan.get("title")),
                created=facts.created,
                updated=facts.updated,
                version=facts.version,
                valid_until=facts.valid_until,
                what_matters=_text(extension_value(care_plan, EXT_WHAT_MATTERS, "String")),
                overall_responsibility=_text(
                    _coding(care_plan, EXT_OVERALL_RESPONSIBILITY).get("display")
                ),
                goals=tuple(goals.values()),
                actions=tuple(_action(d, goals) for d in activities if d.get("kind") is None),
                appointments=tuple(sorted(appointments, key=lambda a: a.day)),
                participants=_participants(team),
                quality=facts.quality,
            )
        )
    return sorted(
        views,
        key=lambda v: (not v.active, -v.updated.toordinal(), v.key),
    )


def history(patient: LoadedPatient, as_of: date) -> tuple[HistoryItem, ...]:
    """Registered events and plans (made, new versions) up to `as_of`, newest first."""
    state = patient.state
    items = [
        HistoryItem(e.date, e.code.value, EVENT_TEXTS[e.code], e.unit_hsa_id or None, e.plan_ref)
        for e in state.events
        if e.date <= as_of
    ]
    for plan in state.plans:
        if plan.created <= as_of:
            items.append(HistoryItem(plan.created, "plan", NEW_PLAN, plan.unit_hsa_id, plan.key))
        version_day = plan.new_version_on()
        if version_day is not None and version_day <= as_of:
            text = f"{NEW_VERSION} (version {plan.version})"
            items.append(HistoryItem(version_day, "plan", text, plan.unit_hsa_id, plan.key))
    return tuple(sorted(items, key=lambda i: (i.day, i.code, i.text), reverse=True))


def _risks(patient: LoadedPatient, as_of: date, rules: RuleSet) -> tuple[RiskView, ...]:
    newest: dict[str, RiskView] = {}
    for entry in sorted(patient.state.risk_entries, key=lambda e: e.run_date):
        if entry.run_date <= as_of:
            in_group = rules.in_risk_group(patient.state, entry.unit_hsa_id, as_of)
            newest[entry.unit_hsa_id] = RiskView(
                entry.unit_hsa_id, entry.run_date, entry.risk_percent, in_group
            )
    return tuple(newest[unit] for unit in sorted(newest))


def patient_view(
    patient: LoadedPatient,
    plan_resources: Sequence[Json],
    as_of: date,
    rules: RuleSet,
    translations: Translations,
    *,
    name: str | None = None,
) -> PatientView:
    latest = patient.state.latest_follow_up(as_of)
    return PatientView(
        patient_id=logical_id(patient.reference) or patient.reference,
        person=patient.person,
        name=name,
        units=tuple(sorted(patient_units(patient))),
        risks=_risks(patient, as_of, rules),
        plans=tuple(plan_views(plan_resources, translations, rules, as_of)),
        history=history(patient, as_of),
        tasks=open_task_items(patient, as_of),
        last_follow_up=latest.date if latest else None,
        follow_up_due=rules.follow_up_due(patient.state, as_of),
    )


# Public names for the readers of single plan resources (adapter/minplan).
goal_view = _goal
action_view = _action
participant_views = _participants
