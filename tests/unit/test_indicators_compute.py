"""Indicators computed by hand: plan coverage, follow-up in time, KVÅ counts, SIP call in time."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from adapter.canonical import IndicatorCode
from adapter.domain import EventCode, PersonId, PlanStatus
from adapter.followup.state import CareEvent, PatientState
from adapter.indicators.compute import (
    IndicatorResult,
    Period,
    Scoring,
    followup_in_time,
    kva_count,
    listing_units,
    percent,
    plan_coverage,
    risk_group,
    sip_call_in_time,
    unit_indicators,
)
from tests.support.rules import (
    RULES,
    UNIT,
    UNIT_B,
    d,
    entry,
    event,
    notice,
    person,
    plan,
    run,
    state,
)

RUN = "2024-12-09"
ASOF = Period(d("2024-10-01"), d("2024-12-11"))


def _patient(n: int, risk: str = "20.0", *, unit: str = UNIT, **kwargs: Any) -> PatientState:
    return state(patient=person(n), entries=(entry(RUN, risk, unit=unit),), **kwargs)


def _aneby(with_plan: int, group: int) -> list[PatientState]:
    """A risk group of `group` patients of whom `with_plan` have an active plan, plus noise."""
    states = []
    for n in range(group):
        risk = "15.0" if n == 0 else "27.5"
        if n < with_plan:
            kind_plan = plan(f"cosmic:VP-{n}", created="2024-06-01")
            states.append(_patient(n, risk, plans=(kind_plan,)))
        elif n % 2:
            states.append(_patient(n, risk, plans=(plan(f"x:{n}", status=PlanStatus.DRAFT),)))
        else:
            states.append(_patient(n, risk, plans=(plan(f"x:{n}", status=PlanStatus.REVOKED),)))
    # Below the threshold, with a plan: in neither count.
    states.append(_patient(100, "14.9", plans=(plan("cosmic:VP-100"),)))
    states.append(_patient(101, "3.0", plans=(plan("cosmic:VP-101"),)))
    # Another unit's risk group.
    states.append(_patient(102, unit=UNIT_B))
    # In the previous run only: has left the group.
    states.append(
        state(
            patient=person(103),
            entries=(entry("2024-11-11"),),
            runs=(run("2024-11-11"), run(RUN)),
            plans=(plan("cosmic:VP-103"),),
        )
    )
    return states


@pytest.mark.parametrize(
    ("with_plan", "group", "value"),
    [(17, 19, Decimal("89.47")), (2, 11, Decimal("18.18")), (19, 19, Decimal("100.00"))],
)
def test_plan_coverage_aneby(with_plan: int, group: int, value: Decimal) -> None:
    result = plan_coverage(_aneby(with_plan, group), UNIT, ASOF, RULES)
    assert (result.numerator, result.denominator, result.value) == (with_plan, group, value)
    assert result.scoring is Scoring.PROPORTION
    assert len(result.denominator_subjects) == group
    assert set(result.numerator_subjects) == {person(n) for n in range(with_plan)}
    assert person(100) not in result.denominator_subjects
    assert person(103) not in result.denominator_subjects


def test_empty_risk_group_has_no_value() -> None:
    states = _aneby(17, 19)
    for compute in (plan_coverage, followup_in_time, sip_call_in_time):
        result = compute(states, "SE2321000057-E00000000999", ASOF, RULES)
        assert (result.numerator, result.denominator, result.value) == (0, 0, None)
        assert result.meets_unit_target is None
        assert result.denominator_subjects == ()


def test_patient_joining_and_leaving_mid_period() -> None:
    runs = (run("2024-09-09"), run("2024-12-09"))
    joins = state(
        patient=person(1),
        entries=(entry("2024-12-09"),),
        runs=runs,
        plans=(plan(created="2024-12-10"),),
    )
    stays = state(patient=person(2), entries=(entry("2024-09-09"), entry("2024-12-09")), runs=runs)
    leaves = state(
        patient=person(3),
        entries=(entry("2024-09-09"),),
        runs=runs,
        plans=(plan(created="2024-08-01"),),
    )
    states = [joins, stays, leaves]
    quarter = Period(d("2024-10-01"), d("2024-12-31"))
    end = plan_coverage(states, UNIT, quarter, RULES)
    assert set(end.denominator_subjects) == {person(1), person(2)}
    assert (end.numerator_subjects, end.value) == ((person(1),), Decimal("50.00"))
    middle = plan_coverage(states, UNIT, Period.on(d("2024-11-30")), RULES)
    assert set(middle.denominator_subjects) == {person(2), person(3)}
    assert middle.numerator_subjects == (person(3),)
    followed = followup_in_time(states, UNIT, quarter, RULES)
    assert followed.numerator_subjects == (person(1),)  # plan creation is the first follow-up


def test_followup_within_90_days() -> None:
    # as_of 2024-12-11; 90 days before is 2024-09-12.
    states = [
        _patient(1, plans=(plan(created="2024-09-12"),)),  # exactly 90 days: in time
        _patient(2, plans=(plan(created="2024-09-11"),)),  # 91 days: not
        _patient(
            3, plans=(plan(created="2024-03-01"),), events=(event("2024-11-11", EventCode.UPPF),)
        ),
        _patient(4),  # no plan: in the denominator only
        _patient(5, plans=(plan(created="2024-01-10", updated="2024-12-01", version=2),)),
        _patient(
            6,
            plans=(plan(created="2024-01-10", status=PlanStatus.REVOKED),),
            events=(event("2024-12-01", EventCode.AW010),),
        ),
        _patient(
            7, plans=(plan(created="2024-03-01"),), events=(event("2024-12-12", EventCode.AW010),)
        ),
        _patient(8, "9.0", plans=(plan(created="2024-12-01"),)),  # not in the risk group
    ]
    result = followup_in_time(states, UNIT, ASOF, RULES)
    assert result.indicator is IndicatorCode.FOLLOWUP_90D
    assert (result.numerator, result.denominator, result.value) == (3, 7, Decimal("42.86"))
    assert set(result.numerator_subjects) == {person(1), person(3), person(5)}
    assert (result.unit_target_percent, result.region_target_percent) == (Decimal(80), Decimal(60))
    assert result.meets_unit_target is False


SKARHOLMEN = "SE2321000016-E00000000777"
YEAR_2023 = Period(d("2023-01-01"), d("2023-12-31"))


def _skarholmen() -> list[PatientState]:
    codes = [EventCode.AU124] * 19 + [EventCode.AU125] * 12 + [EventCode.AW010] * 6
    by_patient: dict[int, list[CareEvent]] = {}
    for i, code in enumerate(codes):
        day = ["2023-01-01", "2023-06-15", "2023-12-31"][i % 3]
        by_patient.setdefault(i % 10, []).append(event(day, code, unit=SKARHOLMEN))
    noise = [
        event("2022-12-31", EventCode.AU124, unit=SKARHOLMEN),
        event("2024-01-01", EventCode.AW010, unit=SKARHOLMEN),
        event("2023-05-05", EventCode.AU124, unit=UNIT),  # another unit performed it
        event("2023-05-05", EventCode.UPPF, unit=SKARHOLMEN),
        event("2023-05-05", EventCode.SIPKALL, unit=SKARHOLMEN),
    ]
    by_patient[10] = noise
    return [state(patient=person(n), events=tuple(events)) for n, events in by_patient.items()]


@pytest.mark.parametrize(
    ("indicator", "count"),
    [(IndicatorCode.KVA_AU124, 19), (IndicatorCode.KVA_AU125, 12), (IndicatorCode.KVA_AW010, 6)],
)
def test_kva_counts_skarholmen(indicator: IndicatorCode, count: int) -> None:
    result = kva_count(_skarholmen(), SKARHOLMEN, YEAR_2023, indicator)
    assert result.scoring is Scoring.COHORT
    assert (result.numerator, result.denominator, result.value) == (count, None, Decimal(count))
    assert person(10) not in result.numerator_subjects
    assert len(result.numerator_subjects) == len(set(result.numerator_subjects)) <= 10


def _lus() -> list[PatientState]:
    call = EventCode.SIPKALL
    return [
        _patient(
            1, notices=(notice("N1", "2024-12-02 10:00"),), events=(event("2024-12-04", call),)
        ),
        _patient(
            2,
            notices=(notice("N2", "2024-12-09 10:00"), notice("N3", "2024-12-10 10:00")),
            events=(event("2024-12-13", call),),  # late for N2 (12-12); N3 is due 12-13: in time
        ),
        _patient(3, notices=(notice("N4", "2024-12-30 10:00"),)),  # due 2025-01-07: pending
        _patient(
            4, notices=(notice("N5", "2024-12-30 10:00"),), events=(event("2024-12-31", call),)
        ),
        _patient(5, notices=(notice("N6", "2024-12-11 10:00", needs_sip=False),)),
        _patient(6, notices=(notice("N7", "2024-11-28 10:00"),)),  # before the period
        _patient(
            7,
            unit=UNIT_B,
            notices=(notice("N8", "2024-12-02 10:00"),),
            events=(event("2024-12-03", call),),
        ),
        _patient(
            8, notices=(notice("N9", "2024-12-16 10:00"),), events=(event("2024-12-13", call),)
        ),
    ]


def test_sip_call_in_time_counts_decided_notices() -> None:
    december = Period(d("2024-12-01"), d("2024-12-31"))
    result = sip_call_in_time(_lus(), UNIT, december, RULES)
    # Decided: N1 (in time), N2 (late), N3 (in time), N5 (in time, early), N9 (call came before it).
    assert (result.numerator, result.denominator, result.value) == (3, 5, Decimal("60.00"))
    assert set(result.denominator_subjects) == {person(1), person(2), person(4), person(8)}
    assert set(result.numerator_subjects) == {person(1), person(2), person(4)}


def test_sip_call_in_time_as_of_mid_month() -> None:
    # By 2024-12-12: N1 decided; N2 (due 12-12) and N3 (due 12-13) still open, uncalled.
    result = sip_call_in_time(_lus(), UNIT, Period(d("2024-12-01"), d("2024-12-12")), RULES)
    assert (result.numerator, result.denominator, result.value) == (1, 1, Decimal("100.00"))


def test_unit_indicators_gives_all_in_order() -> None:
    results = unit_indicators(_aneby(17, 19), UNIT, ASOF, RULES)
    assert [r.indicator for r in results] == list(IndicatorCode)
    assert all(isinstance(r, IndicatorResult) and r.unit_hsa_id == UNIT for r in results)
    assert results[0].value == Decimal("89.47")


def test_risk_group_and_listing_units() -> None:
    states = _aneby(17, 19)
    assert len(risk_group(states, UNIT, d(RUN), RULES)) == 19
    assert listing_units(states, d(RUN)) == [UNIT, UNIT_B]
    assert listing_units(states, d("2024-11-30")) == [UNIT]


@pytest.mark.parametrize(
    ("num", "den", "value"),
    [
        (17, 19, "89.47"),
        (2, 3, "66.67"),
        (1, 8, "12.50"),
        (1, 200, "0.50"),
        (1, 3, "33.33"),
        (0, 5, "0.00"),
        (5, 5, "100.00"),
    ],
)
def test_percent_rounds_half_up_to_two_decimals(num: int, den: int, value: str) -> None:
    assert percent(num, den) == Decimal(value)
    assert str(percent(num, den)) == value


def test_percent_of_nothing_is_none() -> None:
    assert percent(0, 0) is None


def test_period_must_not_end_before_it_starts() -> None:
    with pytest.raises(ValueError, match="perioden"):
        Period(d("2024-12-31"), d("2024-01-01"))
    assert d("2023-01-01") in YEAR_2023 and d("2023-12-31") in YEAR_2023
    assert d("2024-01-01") not in YEAR_2023 and d("2022-12-31") not in YEAR_2023


def test_subject_lists_hold_person_ids() -> None:
    result = plan_coverage(_aneby(17, 19), UNIT, ASOF, RULES)
    assert all(isinstance(p, PersonId) for p in result.denominator_subjects)
    assert [p.digits for p in result.denominator_subjects] == sorted(
        p.digits for p in result.denominator_subjects
    )
