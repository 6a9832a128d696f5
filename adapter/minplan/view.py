"""CarePlan (+ Goals, CareTeam) → "Min plan": what the patient reads, in plain Swedish.

Pure: the resources as read from the FHIR server in, a view model out. The sections follow SKR's
idea of the plan the patient sees in 1177: vad jag gör, vad vården gör, vad kommunen gör, mina
närstående, min fasta vårdkontakt (name and how to reach them), nästa tid, det här är viktigt för
mig. The patient's name is shown (it is their own plan); the personnummer is not: a printed page
gets left on tables and in bags, and the name is enough for the patient to know it is theirs.

How to reach the fasta vårdkontakt: the source formats carry no telephone number, so the page
names the person and the organisation they work for (CareTeam.participant.onBehalfOf), and
says to call the unit's usual number.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from adapter.canonical import (
    CODE_NOPAT,
    CODE_SIP,
    EXT_OVERALL_RESPONSIBILITY,
    EXT_PLAN_UPDATED,
    EXT_WHAT_MATTERS,
    INERA_CAREPLAN_TYPE,
    INERA_FAST_KONTAKT,
    V3_ACT_CODE,
)
from adapter.domain import Responsible
from adapter.followup.facts import reference_of
from adapter.mapping.fhir import Json
from adapter.mapping.readback import extension_value
from adapter.worklist.patient import (
    ActionView,
    AppointmentView,
    GoalView,
    action_view,
    appointment_views,
    goal_view,
    participant_views,
)

# Inera kv_typ_av_fast_kontakt: 1 fast vårdkontakt, 4 the one with the overall coordinating
# responsibility, 2 fast läkarkontakt, 3 fast omsorgskontakt; any other code of it after them
_CONTACT_ORDER = ("1", "4", "2", "3")


@dataclass(frozen=True, slots=True)
class Contact:
    name: str
    role: str  # in words: "fast vårdkontakt"
    organization: str | None


@dataclass(frozen=True, slots=True)
class Doing:
    text: str
    who: str | None  # the person or role doing it, as the plan names them
    goal: str | None


@dataclass(frozen=True, slots=True)
class MinPlan:
    plan_id: str  # the CarePlan's logical id
    unit_hsa_id: str | None
    heading: str  # "Min SIP" / "Mitt patientkontrakt"
    is_sip: bool
    patient_name: str | None
    what_matters: str | None
    my_goals: tuple[str, ...]
    shared_goals: tuple[str, ...]
    i_do: tuple[Doing, ...]
    care_does: tuple[Doing, ...]
    municipality_does: tuple[Doing, ...]
    relatives_do: tuple[Doing, ...]
    contacts: tuple[Contact, ...]
    next_visit: AppointmentView | None
    later_visits: tuple[AppointmentView, ...]
    overall_responsibility: str | None
    updated: date | None
    valid_until: date | None
    not_for_patient: bool = False  # labelled NOPAT: the source says the patient may not see it


def _day(value: Any) -> date | None:
    try:
        return date.fromisoformat(str(value)[:10]) if value else None
    except ValueError:
        return None


def _contacts(team: Json | None) -> tuple[Contact, ...]:
    """The team's fasta kontakter (Inera's code system), fast vårdkontakt first."""
    found: list[tuple[int, Contact]] = []
    members = (team or {}).get("participant", ())
    for member, view in zip(members, participant_views(team), strict=True):
        codes = [
            c.get("code")
            for r in member.get("role", ())
            for c in r.get("coding", ())
            if c.get("system") == INERA_FAST_KONTAKT
        ]
        ranks = [
            _CONTACT_ORDER.index(c) if c in _CONTACT_ORDER else len(_CONTACT_ORDER) for c in codes
        ]
        rank = min(ranks, default=None)
        if rank is not None and view.name:
            found.append((rank, Contact(view.name, view.role or "fast kontakt", view.organization)))
    return tuple(c for _, c in sorted(found, key=lambda f: f[0]))


def _doing(action: ActionView) -> Doing:
    return Doing(action.text, action.performer, action.goal)


def _of(actions: Sequence[ActionView], responsible: Responsible) -> tuple[Doing, ...]:
    return tuple(_doing(a) for a in actions if a.responsible == responsible.value and a.text)


def min_plan(
    care_plan: Json,
    goals: Sequence[Json],
    team: Json | None,
    as_of: date,
    *,
    patient_name: str | None = None,
) -> MinPlan:
    """The patient's plan from the CarePlan and the Goals and CareTeam it references."""
    goal_views: dict[str, GoalView] = {}
    for goal in goals:
        view = goal_view(goal, _day)
        if view is not None:
            goal_views[f"Goal/{goal.get('id')}"] = view
    referenced = [reference_of(g) for g in care_plan.get("goal", ())]
    ordered = [goal_views[r] for r in referenced if r in goal_views]
    details = [a.get("detail") or {} for a in care_plan.get("activity", ())]
    actions = [action_view(d, goal_views) for d in details if d.get("kind") is None]
    booked = [d for d in details if d.get("status") != "cancelled"]
    visits = sorted(
        (v for v in appointment_views(booked, _day, untitled="Planerad tid") if v.day >= as_of),
        key=lambda v: v.day,
    )
    is_sip = any(
        c.get("system") == INERA_CAREPLAN_TYPE and c.get("code") == CODE_SIP
        for category in care_plan.get("category", ())
        for c in category.get("coding", ())
    )
    overall = extension_value(care_plan, EXT_OVERALL_RESPONSIBILITY, "Coding") or {}
    what_matters = extension_value(care_plan, EXT_WHAT_MATTERS, "String")
    author = str(((care_plan.get("author") or {}).get("identifier") or {}).get("value") or "")
    return MinPlan(
        plan_id=str(care_plan.get("id")),
        unit_hsa_id=author or None,
        heading="Min SIP" if is_sip else "Mitt patientkontrakt",
        is_sip=is_sip,
        patient_name=patient_name,
        what_matters=what_matters if isinstance(what_matters, str) and what_matters else None,
        my_goals=tuple(g.text for g in ordered if g.by_patient),
        shared_goals=tuple(g.text for g in ordered if not g.by_patient),
        i_do=_of(actions, Responsible.PATIENT),
        care_does=_of(actions, Responsible.REGION),
        municipality_does=_of(actions, Responsible.KOMMUN),
        relatives_do=_of(actions, Responsible.NARSTAENDE),
        contacts=_contacts(team),
        next_visit=visits[0] if visits else None,
        later_visits=tuple(visits[1:]),
        overall_responsibility=overall.get("display") if is_sip else None,
        updated=_day(extension_value(care_plan, EXT_PLAN_UPDATED, "Date"))
        or _day(care_plan.get("created")),
        valid_until=_day((care_plan.get("period") or {}).get("end")),
        not_for_patient=any(
            c.get("system") == V3_ACT_CODE and c.get("code") == CODE_NOPAT
            for c in (care_plan.get("meta") or {}).get("security", ())
        ),
    )
