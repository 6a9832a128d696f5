"""What the rules and indicators know about one patient, and the questions they ask of it.

Built from domain records (`from_records`, the local path and tests) or, by the reconciliation,
from the resources on the FHIR server. The facts are the few fields the rules read, so both paths
can fill them; enums, `PersonId` and `Participant` are the domain's own. Every question takes
`as_of` and ignores what lies after it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from adapter.domain import (
    DischargeNotice,
    Event,
    EventCode,
    Participant,
    PersonId,
    Plan,
    PlanKind,
    PlanStatus,
    Prea60Row,
    Record,
)
from adapter.quality import Criteria, PlanQuality, score_plan

_ENDED = (PlanStatus.COMPLETED, PlanStatus.REVOKED)


@dataclass(frozen=True, slots=True)
class UnitRun:
    """One Prea60 run of a listing unit. The newest run per unit defines its risk group."""

    unit_hsa_id: str
    run_date: date


@dataclass(frozen=True, slots=True)
class RiskEntry:
    """The patient's row in one run (a RiskAssessment on the server)."""

    unit_hsa_id: str
    run_date: date
    risk_percent: Decimal
    gp_hsa_id: str | None = None

    @classmethod
    def from_row(cls, row: Prea60Row) -> RiskEntry:
        return cls(row.unit_hsa_id, row.run_date, row.risk_percent, row.gp_hsa_id)


@dataclass(frozen=True, slots=True)
class PlanFacts:
    """The current version of a SIP or patientkontrakt."""

    key: str  # source_system:plan_id
    kind: PlanKind
    status: PlanStatus
    created: date
    updated: date
    version: int
    unit_hsa_id: str
    valid_until: date | None = None
    participants: tuple[Participant, ...] = ()
    quality: PlanQuality | None = None  # the score stored with the plan (ext-plan-quality)

    @classmethod
    def from_plan(cls, plan: Plan, quality: PlanQuality | None = None) -> PlanFacts:
        return cls(
            key=plan.key,
            kind=plan.kind,
            status=plan.status,
            created=plan.created,
            updated=plan.updated,
            version=plan.version,
            unit_hsa_id=plan.unit_hsa_id,
            valid_until=plan.valid_until,
            participants=plan.participants,
            quality=quality,
        )

    def is_active(self, as_of: date) -> bool:
        """Active on `as_of`: a plan past valid_until is still active (it needs renewing)."""
        return self.status is PlanStatus.ACTIVE and self.created <= as_of

    def ended_on(self, as_of: date) -> date | None:
        """The day a completed or revoked plan ended (its last update), if by `as_of`."""
        if self.status in _ENDED and self.updated <= as_of:
            return self.updated
        return None

    def new_version_on(self) -> date | None:
        """A version after the first is a follow-up of the plan, on the day it was made."""
        return self.updated if self.version > 1 else None

    def participant_hsa_id(self, roles: Sequence[str]) -> str | None:
        """HSA-id of the first participant with one of `roles`, in the order of `roles`."""
        for role in roles:
            for participant in self.participants:
                if participant.role == role and participant.hsa_id:
                    return participant.hsa_id
        return None


@dataclass(frozen=True, slots=True)
class CareEvent:
    """A registered action: KVÅ AU124/AU125/AW010 or local UPPF/SIPKALL (a Procedure)."""

    date: date
    code: EventCode
    unit_hsa_id: str  # the unit that performed it
    plan_ref: str | None = None

    @classmethod
    def from_event(cls, event: Event) -> CareEvent:
        return cls(event.date, event.code, event.unit_hsa_id, event.plan_ref)


@dataclass(frozen=True, slots=True)
class NoticeFacts:
    """A discharge notice (utskrivningsklar)."""

    message_id: str
    ready_at: datetime
    needs_sip: bool  # support needed from both huvudmän

    @classmethod
    def from_notice(cls, notice: DischargeNotice) -> NoticeFacts:
        return cls(notice.message_id, notice.ready_at, notice.needs_sip)


@dataclass(frozen=True, slots=True)
class RiskMembership:
    """In a unit's risk group: at its newest run, and without a break since `since`."""

    unit_hsa_id: str
    run_date: date  # the unit's newest run
    since: date  # first run of the unbroken streak that ends with the newest run
    risk_percent: Decimal


@dataclass(frozen=True, slots=True)
class FollowUpMark:
    """The latest follow-up of a patient: an AW010/UPPF event, a new plan version or a new plan."""

    date: date
    what: str  # Swedish, for Task texts: "AW010", "UPPF", "ny version av planen", "ny plan"
    plan_key: str | None  # the plan it concerns, when known


@dataclass(frozen=True, slots=True)
class PatientState:
    """What is known about one patient. `unit_runs` are the known runs of the units concerned.

    Pass every known run of each unit (at least those since the patient's first entry): a run
    the patient is absent from breaks the risk-group streak, so a patient who leaves and comes
    back starts a new episode. Runs are also taken from the patient's own entries.
    """

    patient: PersonId
    risk_entries: tuple[RiskEntry, ...] = ()
    unit_runs: tuple[UnitRun, ...] = ()
    plans: tuple[PlanFacts, ...] = ()
    events: tuple[CareEvent, ...] = ()
    notices: tuple[NoticeFacts, ...] = ()

    @classmethod
    def from_records(
        cls,
        patient: PersonId,
        records: Iterable[Record],
        unit_runs: Iterable[UnitRun] = (),
        criteria: Criteria | None = None,
    ) -> PatientState:
        """The state of `patient` from records (others' records are skipped); with `criteria`
        each plan carries its quality score, as the mapping stores it.

        The highest version of a plan wins, and the last notice with a Meddelande-id.
        """
        entries: list[RiskEntry] = []
        plans: dict[str, Plan] = {}
        events: list[CareEvent] = []
        notices: dict[str, NoticeFacts] = {}
        for record in records:
            if record.patient != patient:
                continue
            if isinstance(record, Prea60Row):
                entries.append(RiskEntry.from_row(record))
            elif isinstance(record, Plan):
                known = plans.get(record.key)
                if known is None or record.version >= known.version:
                    plans[record.key] = record
            elif isinstance(record, Event):
                events.append(CareEvent.from_event(record))
            else:
                notices[record.message_id] = NoticeFacts.from_notice(record)
        return cls(
            patient=patient,
            risk_entries=tuple(entries),
            unit_runs=tuple(unit_runs),
            plans=tuple(
                PlanFacts.from_plan(plan, score_plan(plan, criteria) if criteria else None)
                for plan in plans.values()
            ),
            events=tuple(events),
            notices=tuple(notices.values()),
        )

    # --- the risk group ---

    def runs_of(self, unit_hsa_id: str, as_of: date) -> list[date]:
        """Known run dates of a unit up to `as_of`, newest first."""
        runs = {run.run_date for run in self.unit_runs if run.unit_hsa_id == unit_hsa_id}
        runs |= {e.run_date for e in self.risk_entries if e.unit_hsa_id == unit_hsa_id}
        return sorted((run for run in runs if run <= as_of), reverse=True)

    def risk_memberships(self, as_of: date, threshold: Decimal) -> list[RiskMembership]:
        """The units whose newest run (by `as_of`) puts the patient in the risk group."""
        entries: dict[tuple[str, date], RiskEntry] = {
            (e.unit_hsa_id, e.run_date): e for e in self.risk_entries
        }
        memberships = []
        for unit in sorted({e.unit_hsa_id for e in self.risk_entries}):
            streak: list[RiskEntry] = []
            for run in self.runs_of(unit, as_of):
                entry = entries.get((unit, run))
                if entry is None or entry.risk_percent < threshold:
                    break
                streak.append(entry)
            if streak:
                newest, first = streak[0], streak[-1]
                memberships.append(
                    RiskMembership(unit, newest.run_date, first.run_date, newest.risk_percent)
                )
        return memberships

    def in_risk_group(self, unit_hsa_id: str, as_of: date, threshold: Decimal) -> bool:
        return any(m.unit_hsa_id == unit_hsa_id for m in self.risk_memberships(as_of, threshold))

    def home_unit(self, as_of: date) -> str | None:
        """Listing unit of the patient's newest Prea60 entry, else the newest active plan's unit."""
        entries = [e for e in self.risk_entries if e.run_date <= as_of]
        if entries:
            return max(entries, key=lambda e: (e.run_date, e.unit_hsa_id)).unit_hsa_id
        plans = self.active_plans(as_of)
        return plans[0].unit_hsa_id if plans else None

    # --- plans ---

    def plan(self, key: str) -> PlanFacts | None:
        return next((p for p in self.plans if p.key == key), None)

    def active_plans(self, as_of: date) -> list[PlanFacts]:
        """Active plans, the most recently updated first."""
        return _newest_first(p for p in self.plans if p.is_active(as_of))

    def draft_plans(self, as_of: date) -> list[PlanFacts]:
        return _newest_first(
            p for p in self.plans if p.status is PlanStatus.DRAFT and p.created <= as_of
        )

    def last_plan_end(self, as_of: date) -> date | None:
        """When the patient's latest completed or revoked plan ended."""
        ends = [end for p in self.plans if (end := p.ended_on(as_of)) is not None]
        return max(ends, default=None)

    # --- follow-up ---

    def follow_up_marks(self, as_of: date) -> list[FollowUpMark]:
        """Every follow-up up to `as_of`: AW010/UPPF events, and creation and new versions of
        the plans active on `as_of`. Oldest first."""
        marks = [
            FollowUpMark(e.date, e.code.value, e.plan_ref)
            for e in self.events
            if e.code.is_follow_up and e.date <= as_of
        ]
        for plan in self.active_plans(as_of):
            marks.append(FollowUpMark(plan.created, "ny plan", plan.key))
            version_day = plan.new_version_on()
            if version_day is not None and version_day <= as_of:
                marks.append(FollowUpMark(version_day, "ny version av planen", plan.key))
        return sorted(marks, key=lambda m: (m.date, m.plan_key or "", m.what))

    def latest_follow_up(self, as_of: date) -> FollowUpMark | None:
        marks = self.follow_up_marks(as_of)
        return marks[-1] if marks else None

    # --- discharge notices ---

    def sip_call_on_or_after(self, day: date, as_of: date) -> CareEvent | None:
        """The first SIPKALL event on or after `day` (a notice's day), up to `as_of`."""
        calls = [e for e in self.events if e.code is EventCode.SIPKALL and day <= e.date <= as_of]
        return min(calls, key=lambda e: e.date, default=None)

    def notice(self, message_id: str) -> NoticeFacts | None:
        return next((n for n in self.notices if n.message_id == message_id), None)


def _newest_first(plans: Iterable[PlanFacts]) -> list[PlanFacts]:
    return sorted(plans, key=lambda p: (p.updated, p.created, p.key), reverse=True)


def unit_runs_of(rows: Iterable[Prea60Row]) -> tuple[UnitRun, ...]:
    """The distinct runs (unit, run date) in some Prea60 rows, in order."""
    return tuple(
        sorted(
            {UnitRun(row.unit_hsa_id, row.run_date) for row in rows},
            key=lambda r: (r.unit_hsa_id, r.run_date),
        )
    )


def states_from_records(
    records: Iterable[Record], criteria: Criteria | None = None
) -> dict[PersonId, PatientState]:
    """One state per patient found in `records`; every Prea60 run seen counts for every patient.
    With `criteria` the plans carry their quality scores (see `PatientState.from_records`)."""
    by_patient: dict[PersonId, list[Record]] = defaultdict(list)
    for record in records:
        by_patient[record.patient].append(record)
    runs = unit_runs_of(r for recs in by_patient.values() for r in recs if isinstance(r, Prea60Row))
    return {
        patient: PatientState.from_records(patient, recs, _runs_for(runs, recs), criteria)
        for patient, recs in by_patient.items()
    }


def _runs_for(runs: tuple[UnitRun, ...], records: Sequence[Record]) -> tuple[UnitRun, ...]:
    units = {r.unit_hsa_id for r in records if isinstance(r, Prea60Row)}
    return tuple(run for run in runs if run.unit_hsa_id in units)
