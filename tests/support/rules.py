"""Builders for the follow-up rule and indicator tests (no tests here)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from adapter.domain import EventCode, Participant, PersonId, PlanKind, PlanStatus
from adapter.followup.rulesfile import load_rules
from adapter.followup.state import (
    CareEvent,
    NoticeFacts,
    PatientState,
    PlanFacts,
    RiskEntry,
    UnitRun,
)
from adapter.settings import REPO_ROOT

RULES = load_rules(REPO_ROOT / "mappings" / "rules.json")
STOCKHOLM = ZoneInfo("Europe/Stockholm")
UNIT = "SE2321000057-E00000000001"  # Aneby vårdcentral
UNIT_B = "SE2321000057-E00000000002"
FVK = "SE2321000057-P00000000011"  # fast vårdkontakt
PATIENT = PersonId("193803139801")


def d(text: str) -> date:
    return date.fromisoformat(text)


def at(text: str) -> datetime:
    """A local (Europe/Stockholm) date-time, "YYYY-MM-DD HH:MM"."""
    return datetime.fromisoformat(text).replace(tzinfo=STOCKHOLM)


def person(number: int) -> PersonId:
    return PersonId(f"1940{number:08d}")


def entry(run: str, risk: str = "23.5", unit: str = UNIT) -> RiskEntry:
    return RiskEntry(unit, d(run), Decimal(risk))


def run(day: str, unit: str = UNIT) -> UnitRun:
    return UnitRun(unit, d(day))


def plan(
    key: str = "cosmic:VP-1001",
    *,
    status: PlanStatus = PlanStatus.ACTIVE,
    created: str = "2024-09-02",
    updated: str | None = None,
    version: int = 1,
    valid_until: str | None = None,
    fast_vardkontakt: str | None = FVK,
    kind: PlanKind = PlanKind.PATIENTKONTRAKT,
    unit: str = UNIT,
) -> PlanFacts:
    participants = (Participant("fast-lakarkontakt", hsa_id="SE2321000057-P00000000021"),)
    if fast_vardkontakt:
        participants += (Participant("fast-vardkontakt", hsa_id=fast_vardkontakt),)
    return PlanFacts(
        key=key,
        kind=kind,
        status=status,
        created=d(created),
        updated=d(updated or created),
        version=version,
        unit_hsa_id=unit,
        valid_until=d(valid_until) if valid_until else None,
        participants=participants,
    )


def event(day: str, code: EventCode, unit: str = UNIT, plan_ref: str | None = None) -> CareEvent:
    return CareEvent(d(day), code, unit, plan_ref)


def notice(message_id: str, ready_at: str, needs_sip: bool = True) -> NoticeFacts:
    return NoticeFacts(message_id, at(ready_at), needs_sip)


def state(
    *,
    entries: tuple[RiskEntry, ...] = (),
    runs: tuple[UnitRun, ...] = (),
    plans: tuple[PlanFacts, ...] = (),
    events: tuple[CareEvent, ...] = (),
    notices: tuple[NoticeFacts, ...] = (),
    patient: PersonId = PATIENT,
) -> PatientState:
    return PatientState(patient, entries, runs, plans, events, notices)
