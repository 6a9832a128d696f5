"""Indicators counted in parts (`compute.IndicatorTally`): any split of the patients into chunks,
in any order, gives exactly the indicators over all of them at once, and between chunks the tally
keeps person ids and scores, never a patient's state (issue "Region scale" 5)."""

from __future__ import annotations

import gc
import random
from dataclasses import replace
from decimal import Decimal
from types import FunctionType, ModuleType

import pytest

from adapter.canonical import IndicatorCode
from adapter.domain import EventCode, PersonId
from adapter.followup.state import CareEvent, PatientState, PlanFacts
from adapter.indicators.compute import IndicatorTally, Period, unit_indicators
from adapter.quality import PlanQuality
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

UNITS = (UNIT, UNIT_B)
RUNS = ("2024-11-11", "2024-12-09")
PERIOD = Period(d("2024-12-02"), d("2024-12-15"))
CODES = (EventCode.AU124, EventCode.AU125, EventCode.AW010, EventCode.UPPF, EventCode.SIPKALL)
DAYS = ("2024-11-30", "2024-12-02", "2024-12-04", "2024-12-06", "2024-12-10", "2024-12-16")


def _patient(n: int, rng: random.Random) -> PatientState:
    """A patient of one of two units: in or out of its risk group, joined late or not; 0–2 plans
    (of either unit, some scored, made long ago or lately), 0–4 events of either unit in and
    around the period, 0–2 notices (some needing only the kommun, some before the period)."""
    unit = UNITS[n % 2]
    risk = rng.choice(("9.0", "15.0", "27.5"))
    plans = tuple(
        replace(
            plan(
                f"x:P{n}-{k}",
                created=rng.choice(("2024-06-01", "2024-10-01", "2024-12-05")),
                unit=rng.choice(UNITS),
            ),
            quality=PlanQuality(Decimal(rng.choice(("0.42", "0.80", "0.83", "1.00"))), (), "1")
            if rng.random() < 0.8
            else None,
        )
        for k in range(rng.choice((0, 1, 1, 2)))
    )
    events = tuple(
        event(rng.choice(DAYS), rng.choice(CODES), rng.choice(UNITS))
        for _ in range(rng.randrange(5))
    )
    notices = tuple(
        notice(
            f"N{n}-{k}",
            rng.choice(("2024-11-20 10:00", "2024-12-02 10:00", "2024-12-10 10:00")),
            rng.random() < 0.8,
        )
        for k in range(rng.choice((0, 0, 1, 2)))
    )
    return state(
        patient=person(n),
        entries=tuple(entry(day, risk, unit) for day in (RUNS if rng.random() < 0.8 else RUNS[1:])),
        runs=tuple(run(day, u) for day in RUNS for u in UNITS),
        plans=plans,
        events=events,
        notices=notices,
    )


def _region() -> list[PatientState]:
    rng = random.Random(5)
    return [_patient(n, rng) for n in range(120)]


def _all_at_once(states: list[PatientState]) -> list:
    return [r for unit in UNITS for r in unit_indicators(states, unit, PERIOD, RULES)]


def test_the_region_counts_something_of_every_indicator() -> None:
    """The equality below means something: every indicator counts, and no share is all or none."""
    results = _all_at_once(_region())
    assert all(r.numerator > 0 for r in results), [(r.indicator, r.unit_hsa_id) for r in results]
    shares = [r for r in results if r.denominator is not None]
    assert all(r.numerator < r.denominator for r in shares)  # type: ignore[operator]
    quality = [r.scores for r in results if r.indicator is IndicatorCode.PLAN_QUALITY]
    assert all(s is not None and s.minimum != s.maximum for s in quality)
    assert any(len(r.numerator_items) > len(r.numerator_subjects) for r in results)  # repeats


@pytest.mark.parametrize("size", [1, 7, 50, 120])
def test_a_tally_fed_in_chunks_in_any_order_equals_all_at_once(size: int) -> None:
    states = _region()
    chunks = [states[i : i + size] for i in range(0, len(states), size)]
    random.Random(size).shuffle(chunks)
    tally = IndicatorTally(UNITS, PERIOD, RULES)
    for chunk in chunks:
        tally.add(iter(chunk))  # once through, as a chunk of the loader is
    tally.add([])
    assert tally.results() == _all_at_once(states)


def test_a_tally_without_patients_has_no_shares() -> None:
    results = IndicatorTally([UNIT], PERIOD, RULES).results()
    assert [r.indicator for r in results] == list(IndicatorCode)
    assert results == unit_indicators([], UNIT, PERIOD, RULES)
    assert all(r.value is None for r in results if r.denominator is not None)


def _reachable(root: object, stop: set[int]) -> list[object]:
    """Every object reachable from `root` (not through modules, types, functions or `stop`)."""
    seen, todo, found = set(stop), [root], []
    while todo:
        obj = todo.pop()
        if id(obj) in seen or isinstance(obj, ModuleType | type | FunctionType):
            continue
        seen.add(id(obj))
        found.append(obj)
        todo.extend(gc.get_referents(obj))
    return found


def test_a_tally_keeps_person_ids_and_scores_not_states() -> None:
    states = _region()
    tally = IndicatorTally(UNITS, PERIOD, RULES)
    tally.add(states)
    kept = _reachable(tally, {id(RULES)})
    assert not [o for o in kept if isinstance(o, PatientState | PlanFacts | CareEvent)]
    persons = {o for o in kept if isinstance(o, PersonId)}
    assert persons <= {s.patient for s in states} and len(persons) > len(states) // 2
