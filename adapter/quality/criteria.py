"""The quality criteria of a plan: rules in code, their selection and weights as data.

A region edits mappings/plan-quality.json: which criteria apply to SIP and to patientkontrakt,
their weights and Swedish labels. Each criterion names one rule below, a pure predicate on the
plan's current version. The rules, by source:

- the law on SIP (HSL 16 kap. 4 §, SoL 2 kap. 7 §): which insatser are needed (`has-actions`);
  which huvudman answers for which (`actions-of-both-huvudman`: insatser of both the region and
  the kommun, since a SIP is their joint plan); what others than region and kommun do
  (`actions-of-others`: an action of the patient or a närstående); which huvudman has the
  overall responsibility (`overall-responsibility`);
- SKR on patientkontrakt: a named fast vårdkontakt (`named-fast-vardkontakt`: name or HSA-id);
  what the care does and what the patient does (`actions-of-care-and-patient`); an agreed
  next time, överenskommen tid (`agreed-appointment`); a plan that holds it together
  (`actions-serve-goals`: goals, and every action tied to one);
- person-centredness: what matters to the patient (`what-matters`), a goal the patient
  expressed (`goal-by-patient`), the patient or a närstående took part (`patient-took-part`),
  consent registered (`consent-registered`: consent "ja"), a follow-up date set
  (`follow-up-date`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from adapter.domain import Consent, ExpressedBy, ParticipantRole, Plan, PlanKind, Responsible

Rule = Callable[[Plan], bool]

_HUVUDMAN = (Responsible.REGION, Responsible.KOMMUN)
_OTHERS = (Responsible.PATIENT, Responsible.NARSTAENDE)
_PATIENT_SIDE = (ParticipantRole.PATIENT.value, ParticipantRole.NARSTAENDE.value)


def has_actions(plan: Plan) -> bool:
    return bool(plan.actions)


def actions_of_both_huvudman(plan: Plan) -> bool:
    responsible = {a.responsible for a in plan.actions}
    return all(h in responsible for h in _HUVUDMAN)


def actions_of_others(plan: Plan) -> bool:
    return any(a.responsible in _OTHERS for a in plan.actions)


def overall_responsibility(plan: Plan) -> bool:
    return plan.overall_responsibility is not None


def named_fast_vardkontakt(plan: Plan) -> bool:
    return any(
        p.role == ParticipantRole.FAST_VARDKONTAKT and bool(p.name or p.hsa_id)
        for p in plan.participants
    )


def actions_of_care_and_patient(plan: Plan) -> bool:
    responsible = {a.responsible for a in plan.actions}
    return any(r in responsible for r in _HUVUDMAN) and any(r in responsible for r in _OTHERS)


def agreed_appointment(plan: Plan) -> bool:
    return bool(plan.agreed_appointments)


def actions_serve_goals(plan: Plan) -> bool:
    return bool(plan.goals) and bool(plan.actions) and all(a.goal for a in plan.actions)


def what_matters(plan: Plan) -> bool:
    return bool(plan.what_matters and plan.what_matters.strip())


def goal_by_patient(plan: Plan) -> bool:
    return any(g.expressed_by is ExpressedBy.PATIENT for g in plan.goals)


def patient_took_part(plan: Plan) -> bool:
    return any(p.role in _PATIENT_SIDE for p in plan.participants)


def consent_registered(plan: Plan) -> bool:
    return plan.consent is Consent.JA


def follow_up_date(plan: Plan) -> bool:
    return plan.next_follow_up is not None


RULES: dict[str, Rule] = {
    "has-actions": has_actions,
    "actions-of-both-huvudman": actions_of_both_huvudman,
    "actions-of-others": actions_of_others,
    "overall-responsibility": overall_responsibility,
    "named-fast-vardkontakt": named_fast_vardkontakt,
    "actions-of-care-and-patient": actions_of_care_and_patient,
    "agreed-appointment": agreed_appointment,
    "actions-serve-goals": actions_serve_goals,
    "what-matters": what_matters,
    "goal-by-patient": goal_by_patient,
    "patient-took-part": patient_took_part,
    "consent-registered": consent_registered,
    "follow-up-date": follow_up_date,
}


class CriteriaError(ValueError):
    """The criteria file is wrong; the message (Swedish) names the file and the field."""


@dataclass(frozen=True, slots=True)
class Criterion:
    id: str  # the code in CodeSystem plan-quality-criterion
    label: str  # Swedish, as the worklist names a criterion the plan does not meet
    applies_to: frozenset[PlanKind]
    weight: Decimal
    rule: Rule

    def met_by(self, plan: Plan) -> bool:
        return self.rule(plan)


@dataclass(frozen=True, slots=True)
class Criteria:
    version: str  # the criteria file's own version: stored with each score
    items: tuple[Criterion, ...]

    def for_kind(self, kind: PlanKind) -> tuple[Criterion, ...]:
        return tuple(c for c in self.items if kind in c.applies_to)


def _text(raw: Mapping[str, Any], field: str, where: str) -> str:
    value = raw.get(field)
    if not isinstance(value, str) or not value.strip():
        raise CriteriaError(f"{where}.{field}: ska vara en text som inte är tom")
    return value.strip()


def _criterion(raw: Any, where: str) -> Criterion:
    if not isinstance(raw, dict):
        raise CriteriaError(f"{where}: ska vara ett objekt")
    rule_id = _text(raw, "rule", where)
    if rule_id not in RULES:
        raise CriteriaError(f"{where}.rule: okänd regel {rule_id!r}; kända: {', '.join(RULES)}")
    kinds = raw.get("applies_to")
    if not isinstance(kinds, list) or not kinds:
        reason = "ska vara en lista med sip och/eller patientkontrakt"
        raise CriteriaError(f"{where}.applies_to: {reason}")
    try:
        applies_to = frozenset(PlanKind(k) for k in kinds)
    except ValueError:
        reason = "tillåtna värden är sip, patientkontrakt"
        raise CriteriaError(f"{where}.applies_to: {reason}") from None
    try:
        weight = Decimal(str(raw.get("weight")))
    except InvalidOperation:
        weight = Decimal(-1)
    if not weight.is_finite() or weight <= 0 or isinstance(raw.get("weight"), bool):
        raise CriteriaError(f"{where}.weight: ska vara ett tal större än 0")
    return Criterion(
        _text(raw, "id", where), _text(raw, "label_sv", where), applies_to, weight, RULES[rule_id]
    )


def parse_criteria(document: Any, origin: str) -> Criteria:
    """The parsed JSON of a criteria file → Criteria; CriteriaError naming `origin` and field."""
    if not isinstance(document, dict):
        raise CriteriaError(f"{origin}: ska vara ett JSON-objekt")
    raw_items = document.get("criteria")
    if not isinstance(raw_items, list) or not raw_items:
        raise CriteriaError(f"{origin}: criteria ska vara en lista som inte är tom")
    items = tuple(_criterion(raw, f"{origin}: criteria[{i}]") for i, raw in enumerate(raw_items))
    seen: set[str] = set()
    for i, item in enumerate(items):
        if item.id in seen:
            raise CriteriaError(f"{origin}: criteria[{i}].id: {item.id!r} finns redan")
        seen.add(item.id)
    for kind in PlanKind:
        if not any(kind in c.applies_to for c in items):
            raise CriteriaError(f"{origin}: inget kriterium gäller {kind.value}")
    version = document.get("version")
    if not isinstance(version, str | int) or isinstance(version, bool) or not str(version).strip():
        raise CriteriaError(f"{origin}: version: ska vara en text som inte är tom")
    return Criteria(str(version).strip(), items)
