"""From the resources on the FHIR server back to the facts the rules read (pure).

The inverse of the mapping for the few fields `PatientState` holds. Codes go back through the
same ConceptMaps the mapping used (`Translations`), so a region's mapping edits hold both ways.
Resources that are not the adapter's kind of resource (another risk model, a vårdplan, a
Procedure with an unknown code, an entered-in-error record) are left out, never an error: other
systems write to the same server.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from adapter.canonical import (
    CODE_PATIENTKONTRAKT,
    CODE_PREA60,
    CODE_SIP,
    CS_PLAN_KIND,
    CS_RISK_MODEL,
    EXT_PLAN_KIND,
    HSA_ID,
    ID_CARETEAM,
    ID_PLAN,
    INERA_CAREPLAN_TYPE,
    PERSONNUMMER,
    SAMORDNINGSNUMMER,
    canonical_system,
)
from adapter.domain import EventCode, IdKind, Participant, PersonId, PlanKind
from adapter.followup.calendar import WorkingCalendar
from adapter.followup.rules import Focus, NoticeFocus, PlanFocus, RiskFocus
from adapter.followup.state import (
    CareEvent,
    NoticeFacts,
    PatientState,
    PlanFacts,
    RiskEntry,
    UnitRun,
)
from adapter.followup.tasks import ServerTask, read_task
from adapter.mapping.codes import Mappings
from adapter.mapping.fhir import Json
from adapter.mapping.plans import CAREPLAN_STATUS
from adapter.mapping.readback import (
    business_identifier,
    discharge_facts,
    event_plan_key,
    listing_unit,
    plan_quality,
    plan_revision,
)

_ID_KIND = {PERSONNUMMER: IdKind.PERSONNUMMER, SAMORDNINGSNUMMER: IdKind.SAMORDNINGSNUMMER}
_PLAN_STATUS = {fhir: status for status, fhir in CAREPLAN_STATUS.items()}
# What says a CarePlan is a SIP or a patientkontrakt (mapping/plans.py writes them); Inera's VP
# alone is any vårdplan, not ours to follow up.
_PLAN_KIND = {
    (INERA_CAREPLAN_TYPE, CODE_SIP): PlanKind.SIP,
    (CS_PLAN_KIND, CODE_PATIENTKONTRAKT): PlanKind.PATIENTKONTRAKT,
}
PREA60 = (CS_RISK_MODEL, CODE_PREA60)  # RiskAssessment.method of a Prea60 run (mapping/prea60.py)
_EVENT_CODES = frozenset(code.value for code in EventCode)
_RISK_STATUSES = frozenset({"final", "amended", "corrected"})
_VOID_STATUSES = frozenset({"entered-in-error", "cancelled"})


@dataclass(frozen=True, slots=True)
class Translations:
    """The ConceptMaps read backwards: FHIR coding → the source's participant role / event code."""

    roles: Mapping[tuple[str, str], str]
    events: Mapping[tuple[str, str], EventCode]

    @classmethod
    def from_mappings(cls, mappings: Mappings) -> Translations:
        roles = {
            (c["system"], c["code"]): role
            for role, codings in mappings.participant_role.table.items()
            for c in codings
        }
        events = {
            (c["system"], c["code"]): EventCode(code)
            for code, codings in mappings.event_code.table.items()
            if code in _EVENT_CODES
            for c in codings
        }
        return cls(roles, events)


def _codings(concept: Any) -> list[tuple[str, str]]:
    """(system, code) pairs; a system named by an alias (an OID of old) as its canonical URL."""
    if not isinstance(concept, dict):
        return []
    return [
        (canonical_system(str(c.get("system"))), str(c.get("code")))
        for c in concept.get("coding", ())
    ]


def local_day(value: Any, calendar: WorkingCalendar) -> date | None:
    """The local calendar day of an R4 date or dateTime (a date-only value is that day)."""
    if not isinstance(value, str) or len(value) < 10:
        return None
    try:
        if len(value) == 10:
            return date.fromisoformat(value)
        return calendar.local_date(datetime.fromisoformat(value.replace("Z", "+00:00")))
    except ValueError:
        return None


def reference_of(value: Any) -> str | None:
    """`Type/id` of a literal reference (a base URL and a `_history` part dropped)."""
    reference = value.get("reference") if isinstance(value, dict) else None
    if not isinstance(reference, str) or "?" in reference:
        return None
    parts = reference.split("/_history/")[0].rstrip("/").split("/")
    return "/".join(parts[-2:]) if len(parts) >= 2 else None


def subject_of(resource: Json) -> str | None:
    """The Patient a resource is about: `subject`, or `for` on a Task."""
    ref = reference_of(resource.get("subject") or resource.get("for"))
    return ref if ref and ref.startswith("Patient/") else None


def hsa_id_of(reference: Any) -> str | None:
    """The HSA-id of a logical reference (`{"identifier": {"system": HSA_ID, ...}}`)."""
    ident = reference.get("identifier") if isinstance(reference, dict) else None
    if isinstance(ident, dict) and ident.get("system") == HSA_ID and ident.get("value"):
        return str(ident["value"])
    return None


def person_of(patient: Json) -> PersonId | None:
    """The personnummer (or samordningsnummer) of a Patient, if it carries one."""
    for ident in patient.get("identifier", ()):
        kind = _ID_KIND.get(str(ident.get("system")))
        value = str(ident.get("value", ""))
        if kind is not None and len(value) == 12 and value.isdigit():
            return PersonId(value, kind)
    return None


def risk_entry(assessment: Json, calendar: WorkingCalendar) -> RiskEntry | None:
    """A Prea60 RiskAssessment → the patient's row of that run."""
    method = _codings(assessment.get("method"))
    if PREA60 not in method:
        return None
    if assessment.get("status") not in _RISK_STATUSES:
        return None
    unit = listing_unit(assessment)
    run = local_day(assessment.get("occurrenceDateTime"), calendar)
    predictions = assessment.get("prediction") or [{}]
    probability = predictions[0].get("probabilityDecimal")
    if unit is None or run is None or probability is None:
        return None
    try:
        risk = Decimal(str(probability))  # str: the JSON number as written, not a binary float
    except InvalidOperation:
        return None
    return RiskEntry(unit, run, risk)


def participants(team: Json | None, translations: Translations) -> tuple[Participant, ...]:
    """CareTeam members with their role as the plan file names it, HSA-id and name."""
    found = []
    for member in (team or {}).get("participant", ()):
        roles = [translations.roles.get(c) for r in member.get("role", ()) for c in _codings(r)]
        role = next((r for r in roles if r), None)
        if role is None:
            continue
        who = member.get("member") or {}
        found.append(Participant(role, who.get("display"), hsa_id_of(who)))
    return tuple(found)


def plan_facts(
    care_plan: Json, team: Json | None, translations: Translations, calendar: WorkingCalendar
) -> PlanFacts | None:
    """A SIP or patientkontrakt CarePlan (with its CareTeam) → the plan's current version."""
    key = business_identifier(care_plan, ID_PLAN)
    codings = [*_codings_of(care_plan.get("category")), *_plan_kind_codings(care_plan)]
    kinds = [_PLAN_KIND[c] for c in codings if c in _PLAN_KIND]
    status = _PLAN_STATUS.get(str(care_plan.get("status")))
    created = local_day(care_plan.get("created"), calendar)
    unit = hsa_id_of(care_plan.get("author"))
    if key is None or not kinds or status is None or created is None or unit is None:
        return None
    revision = plan_revision(care_plan)
    return PlanFacts(
        key=key,
        kind=kinds[0],
        status=status,
        created=created,
        # Written by someone else without our extensions: the first version, as created.
        updated=revision.updated if revision else created,
        version=revision.version if revision else 1,
        unit_hsa_id=unit,
        valid_until=local_day((care_plan.get("period") or {}).get("end"), calendar),
        participants=participants(team, translations),
        quality=plan_quality(care_plan),
    )


def _codings_of(concepts: Any) -> list[tuple[str, str]]:
    return [c for concept in concepts or () for c in _codings(concept)]


def _plan_kind_codings(care_plan: Json) -> list[tuple[str, str]]:
    """The plan-kind extension (a patientkontrakt); older CarePlans had it inside category."""
    extensions = care_plan.get("extension") or ()
    values = [e.get("valueCoding") for e in extensions if e.get("url") == EXT_PLAN_KIND]
    return _codings({"coding": [v for v in values if isinstance(v, dict)]})


def care_event(
    procedure: Json, translations: Translations, calendar: WorkingCalendar
) -> CareEvent | None:
    """A completed Procedure with a KVÅ or local code the event ConceptMap knows."""
    if procedure.get("status") != "completed":
        return None
    codes = [
        translations.events[c] for c in _codings(procedure.get("code")) if c in translations.events
    ]
    day = local_day(
        procedure.get("performedDateTime") or (procedure.get("performedPeriod") or {}).get("start"),
        calendar,
    )
    if not codes or day is None:
        return None
    units = [u for p in procedure.get("performer", ()) if (u := hsa_id_of(p.get("actor")))]
    return CareEvent(day, codes[0], units[0] if units else "", event_plan_key(procedure))


def notice_facts(encounter: Json) -> NoticeFacts | None:
    """A discharge-notice Encounter → the notice (None unless every part is there)."""
    if encounter.get("status") in _VOID_STATUSES:
        return None
    facts = discharge_facts(encounter)
    if facts is None:
        return None
    return NoticeFacts(facts.message_id, facts.ready_at, facts.needs_sip)


@dataclass(slots=True)
class FocusIndex:
    """What a Task can be about, both ways: Focus ↔ the literal reference on this server."""

    by_focus: dict[Focus, str] = field(default_factory=dict)
    by_reference: dict[str, Focus] = field(default_factory=dict)

    def add(self, focus: Focus, reference: str) -> None:
        self.by_focus.setdefault(focus, reference)
        self.by_reference.setdefault(reference, focus)

    def reference(self, focus: Focus) -> str | None:
        return self.by_focus.get(focus)

    def focus(self, reference: str | None) -> Focus | None:
        return self.by_reference.get(reference) if reference else None


@dataclass(slots=True)
class PatientFacts:
    """Everything read about one patient: the state, the Tasks and what Tasks can point at."""

    state: PatientState
    tasks: list[ServerTask]
    focus: FocusIndex


def _ref(resource: Json) -> str:
    return f"{resource['resourceType']}/{resource['id']}"


def patient_facts(
    person: PersonId,
    resources: Iterable[Json],
    translations: Translations,
    calendar: WorkingCalendar,
) -> PatientFacts:
    """The state of `person` from their resources on the server (any order, any types).

    The state's `unit_runs` are left empty: the loader adds them (`with_unit_runs`) once it
    knows the runs of every unit. A plan held twice (two CarePlans with one identifier) counts at
    its highest version.
    """
    by_type: dict[str, list[Json]] = {}
    for resource in resources:
        by_type.setdefault(str(resource.get("resourceType")), []).append(resource)
    index = FocusIndex()

    entries = []
    for assessment in by_type.get("RiskAssessment", ()):
        entry = risk_entry(assessment, calendar)
        if entry is not None:
            entries.append(entry)
            index.add(RiskFocus(entry.unit_hsa_id, entry.run_date), _ref(assessment))

    teams = {_ref(team): team for team in by_type.get("CareTeam", ())}
    teams_by_key = {
        key: team for team in teams.values() if (key := business_identifier(team, ID_CARETEAM))
    }
    plans: dict[str, PlanFacts] = {}
    for care_plan in by_type.get("CarePlan", ()):
        refs = [r for t in care_plan.get("careTeam", ()) if (r := reference_of(t))]
        key = business_identifier(care_plan, ID_PLAN) or ""
        team = next((teams[r] for r in refs if r in teams), teams_by_key.get(key))
        plan = plan_facts(care_plan, team, translations, calendar)
        if plan is None:
            continue
        index.add(PlanFocus(plan.key), _ref(care_plan))
        if plan.key not in plans or plan.version > plans[plan.key].version:
            plans[plan.key] = plan

    events = [
        event
        for procedure in by_type.get("Procedure", ())
        if (event := care_event(procedure, translations, calendar)) is not None
    ]
    notices: dict[str, NoticeFacts] = {}
    for encounter in by_type.get("Encounter", ()):
        notice = notice_facts(encounter)
        if notice is not None:
            notices.setdefault(notice.message_id, notice)
            index.add(NoticeFocus(notice.message_id), _ref(encounter))

    state = ordered_state(person, entries, plans.values(), events, notices.values())
    tasks = [task for t in by_type.get("Task", ()) if (task := read_task(t)) is not None]
    return PatientFacts(state, tasks, index)


def ordered_state(
    person: PersonId,
    entries: Iterable[RiskEntry],
    plans: Iterable[PlanFacts],
    events: Iterable[CareEvent],
    notices: Iterable[NoticeFacts],
    unit_runs: Iterable[UnitRun] = (),
) -> PatientState:
    """A state whose parts are sorted and distinct: the same server content, the same state."""
    return PatientState(
        patient=person,
        risk_entries=tuple(sorted(set(entries), key=lambda e: (e.unit_hsa_id, e.run_date))),
        unit_runs=tuple(sorted(set(unit_runs), key=lambda r: (r.unit_hsa_id, r.run_date))),
        plans=tuple(sorted(plans, key=lambda p: p.key)),
        events=tuple(sorted(events, key=lambda e: (e.date, e.code.value, e.plan_ref or ""))),
        notices=tuple(sorted(notices, key=lambda n: n.message_id)),
    )


def with_unit_runs(state: PatientState, unit_runs: Mapping[str, Iterable[date]]) -> PatientState:
    """`state` with the known runs of the units it has entries in."""
    units = {e.unit_hsa_id for e in state.risk_entries}
    runs = [UnitRun(unit, day) for unit in units for day in unit_runs.get(unit, ())]
    return replace(
        state, unit_runs=tuple(sorted(set(runs), key=lambda r: (r.unit_hsa_id, r.run_date)))
    )


def merged(first: PatientFacts, second: PatientFacts) -> PatientFacts:
    """One patient held as two Patient resources (same personnummer): everything of both."""
    plans = {p.key: p for p in first.state.plans}
    for plan in second.state.plans:
        if plan.key not in plans or plan.version > plans[plan.key].version:
            plans[plan.key] = plan
    notices = {n.message_id: n for n in (*second.state.notices, *first.state.notices)}
    a, b = first.state, second.state
    state = ordered_state(
        a.patient,
        (*a.risk_entries, *b.risk_entries),
        plans.values(),
        (*a.events, *b.events),
        notices.values(),
        (*a.unit_runs, *b.unit_runs),
    )
    index = FocusIndex(dict(first.focus.by_focus), dict(first.focus.by_reference))
    for focus, reference in second.focus.by_focus.items():
        index.add(focus, reference)
    return PatientFacts(state, [*first.tasks, *second.tasks], index)
