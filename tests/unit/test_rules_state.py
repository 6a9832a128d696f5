"""PatientState from domain records, and the questions the rules ask of it."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from decimal import Decimal
from typing import Any

from adapter.canonical import TaskBusinessStatus, TaskType
from adapter.domain import (
    Consent,
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
    SourceRef,
)
from adapter.followup.rules import decide
from adapter.followup.state import PatientState, UnitRun, states_from_records, unit_runs_of
from adapter.indicators.compute import Period, plan_coverage
from tests.support.rules import FVK, RULES, UNIT, UNIT_B, at, d, entry, plan, run, state

SRC = SourceRef("test", 2)
LIND = PersonId("193803139801")
OBERG = PersonId("192902279807")
EKSTROM = PersonId("193106199817")
SVENSSON = PersonId("194404029805")


def _row(patient: PersonId, risk: str, run_date: str = "2024-12-09", unit: str = UNIT) -> Prea60Row:
    return Prea60Row(
        patient, "Efternamn", "Förnamn", Decimal(risk), d(run_date), unit, "VC", None, SRC
    )


def _plan(patient: PersonId, plan_id: str, version: int, **kwargs: Any) -> Plan:
    values = {
        "kind": PlanKind.SIP,
        "status": PlanStatus.ACTIVE,
        "title": "SIP",
        "created": d("2024-10-14"),
        "updated": d("2024-10-14"),
        "unit_hsa_id": UNIT,
        "participants": (Participant("fast-vardkontakt", hsa_id=FVK),),
    }
    values.update(kwargs)
    return Plan(
        source_system="lifecare",
        plan_id=plan_id,
        version=version,
        patient=patient,
        source=SRC,
        **values,
    )


_NOTICE = DischargeNotice(
    "LC-9002", OBERG, at("2024-12-20 09:10"), "Ryhov", "Geriatrik", True, False, Consent.OKANT, SRC
)


def _records() -> list[Record]:
    return [
        _row(LIND, "23.5"),
        _row(OBERG, "15.0"),
        _row(EKSTROM, "31.2"),
        _row(SVENSSON, "14.9"),
        _row(LIND, "19.0", "2024-11-11"),
        _row(OBERG, "40.0", "2024-12-02", unit=UNIT_B),
        _plan(
            LIND,
            "VP-1001",
            1,
            kind=PlanKind.PATIENTKONTRAKT,
            created=d("2024-09-02"),
            updated=d("2024-09-02"),
        ),
        # Version 2 read before version 1: the higher version wins whatever the order.
        _plan(EKSTROM, "SIP-77", 2, updated=d("2024-10-21")),
        _plan(EKSTROM, "SIP-77", 1, status=PlanStatus.DRAFT),
        Event(LIND, d("2024-09-02"), EventCode.UPPF, UNIT, SRC, "besök", "lifecare:VP-1001"),
        Event(EKSTROM, d("2024-10-21"), EventCode.AU125, UNIT, SRC, None, "lifecare:SIP-77"),
        _NOTICE,
        # The same Meddelande-id again, corrected: the last one counts.
        replace(_NOTICE, needs_region=True, consent=Consent.JA),
    ]


def test_from_records_keeps_one_patient_and_the_newest_versions() -> None:
    ekstrom = PatientState.from_records(EKSTROM, _records())
    assert ekstrom.patient == EKSTROM
    assert [e.risk_percent for e in ekstrom.risk_entries] == [Decimal("31.2")]
    (sip,) = ekstrom.plans
    assert (sip.key, sip.version, sip.status, sip.new_version_on()) == (
        "lifecare:SIP-77",
        2,
        PlanStatus.ACTIVE,
        d("2024-10-21"),
    )
    assert [e.code for e in ekstrom.events] == [EventCode.AU125]
    assert ekstrom.notices == ()
    oberg = PatientState.from_records(OBERG, _records())
    (notice,) = oberg.notices
    assert notice.needs_sip is True


def test_states_from_records_share_the_unit_runs() -> None:
    states = states_from_records(_records())
    assert set(states) == {LIND, OBERG, EKSTROM, SVENSSON}
    assert set(states[EKSTROM].unit_runs) == {
        UnitRun(UNIT, d("2024-11-11")),
        UnitRun(UNIT, d("2024-12-09")),
    }
    assert set(states[OBERG].unit_runs) == {
        UnitRun(UNIT, d("2024-11-11")),
        UnitRun(UNIT, d("2024-12-09")),
        UnitRun(UNIT_B, d("2024-12-02")),
    }
    assert unit_runs_of(r for r in _records() if isinstance(r, Prea60Row))[0] == UnitRun(
        UNIT, d("2024-11-11")
    )


def test_records_to_decisions_and_coverage() -> None:
    states = states_from_records(_records())
    as_of = d("2024-12-20")
    tasks = {
        p: [(t.task_type, t.business_status) for t in decide(s, as_of, RULES)]
        for p, s in states.items()
    }
    assert tasks[LIND] == [(TaskType.FOLLOW_UP, TaskBusinessStatus.OVERDUE)]  # 09-02 + 90 = 12-01
    assert tasks[OBERG] == [
        (TaskType.ESTABLISH_PLAN, TaskBusinessStatus.DUE),
        (TaskType.ESTABLISH_PLAN, TaskBusinessStatus.DUE),
        (TaskType.SIP_CALL, TaskBusinessStatus.DUE),
    ]
    assert tasks[EKSTROM] == []  # the new version on 10-21 is followed up until 2025-01-19
    assert tasks[SVENSSON] == []
    coverage = plan_coverage(states.values(), UNIT, Period.on(as_of), RULES)
    assert (coverage.numerator, coverage.denominator, coverage.value) == (2, 3, Decimal("66.67"))


def test_memberships_name_the_streak() -> None:
    s = state(
        entries=(entry("2024-11-11"), entry("2024-12-09", "15.0")),
        runs=(run("2024-10-07"), run("2024-11-11"), run("2024-12-09")),
    )
    (m,) = s.risk_memberships(d("2024-12-10"), Decimal(15))
    assert (m.unit_hsa_id, m.run_date, m.since, m.risk_percent) == (
        UNIT,
        d("2024-12-09"),
        d("2024-11-11"),
        Decimal("15.0"),
    )
    assert s.in_risk_group(UNIT, d("2024-12-10"), Decimal(15))
    assert not s.in_risk_group(UNIT_B, d("2024-12-10"), Decimal(15))


def test_plan_ended_and_active_questions() -> None:
    revoked = plan("a:1", status=PlanStatus.REVOKED, created="2024-01-01", updated="2024-05-01")
    completed = plan("a:2", status=PlanStatus.COMPLETED, created="2024-02-01", updated="2024-07-01")
    active = plan("a:3", created="2024-08-01")
    s = state(plans=(revoked, completed, active))
    assert s.last_plan_end(d("2024-06-30")) == d("2024-05-01")
    assert s.last_plan_end(d("2024-12-31")) == d("2024-07-01")
    assert [p.key for p in s.active_plans(d("2024-12-31"))] == ["a:3"]
    assert s.active_plans(d("2024-07-31")) == []
    assert s.home_unit(d("2024-12-31")) == UNIT  # from the active plan: no Prea60 entry
    assert state().home_unit(date(2024, 12, 31)) is None
