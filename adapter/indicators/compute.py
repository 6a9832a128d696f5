"""Indicators, pure: from patient states to numerators, denominators and subject lists.

Per listing unit and period (both ends included). The share indicators are a snapshot on the
period's last day (`as_of`); the counts cover the whole period.

- plan-coverage: of the unit's risk group (its newest run by `as_of`, risk >= threshold), the
  patients with an active SIP or patientkontrakt.
- followup-90d: of the same risk group, the patients with an active plan whose latest follow-up
  (AW010, UPPF, a new plan version, or the plan's creation — the follow-up rule's own definition)
  is at most follow_up.interval_days before `as_of`: exactly those without an overdue follow-up
  Task. A patient without a plan is in the denominator and not followed up.
- kva-AU124 / kva-AU125 / kva-AW010: events with that code performed by the unit in the period.
  Events only: a plan's own `kva` field names the same act and would count it twice.
- plan-quality: of the unit's active plans on `as_of` (SIP and patientkontrakt it made) that
  carry a quality score (mappings/plan-quality.json, scored at import), the plans scoring at
  least indicators.plan_quality.threshold; with the scores' mean, min, median, max and bands.
  One item per plan: a patient with a SIP and a patientkontrakt counts twice.
- lus-sip-call: discharge notices needing both huvudmän, dated in the period, of patients whose home
  unit (listing unit of the newest Prea60 entry, else the active plan's unit) is the unit. The
  denominator is the notices decided by `as_of` — deadline passed or SIPKALL registered — so a
  notice still inside its deadline without a call is left out until it is decided; the numerator
  those with a SIPKALL from the notice day to the deadline day.

A share with an empty denominator has no value (None), never a division by zero. A snapshot of
a past day reads plans as they are now (a plan counts from its creation day on if active now):
the state holds the current version of each plan, not its history.

Each indicator is a rule per patient state (`_ITEMS_OF`: the items a patient counts for, in the
numerator or not); an `IndicatorTally` adds them up over states fed in any number of chunks,
keeping a PersonId per item, so the per-indicator functions below are the tally fed once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum

from adapter.canonical import IndicatorCode
from adapter.domain import EventCode, PersonId
from adapter.followup.rules import RuleSet
from adapter.followup.state import PatientState
from adapter.indicators.distribution import ScoreSummary, summarise

_HUNDREDTHS = Decimal("0.01")
KVA_INDICATORS = {
    IndicatorCode.KVA_AU124: EventCode.AU124,
    IndicatorCode.KVA_AU125: EventCode.AU125,
    IndicatorCode.KVA_AW010: EventCode.AW010,
}


class Scoring(StrEnum):
    """Measure.scoring of an indicator."""

    PROPORTION = "proportion"  # numerator / denominator, in percent
    COHORT = "cohort"  # a count


@dataclass(frozen=True, slots=True)
class Period:
    start: date
    end: date  # included

    def __post_init__(self) -> None:
        if self.start > self.end:
            raise ValueError(f"perioden börjar {self.start} efter att den slutar {self.end}")

    @classmethod
    def on(cls, day: date) -> Period:
        return cls(day, day)

    def __contains__(self, day: object) -> bool:
        return isinstance(day, date) and self.start <= day <= self.end


@dataclass(frozen=True, slots=True)
class IndicatorResult:
    """One indicator for one unit and period: the summary and the subject lists."""

    indicator: IndicatorCode
    scoring: Scoring
    unit_hsa_id: str
    period: Period
    numerator: int  # a cohort's count
    denominator: int | None  # None for a cohort
    value: Decimal | None  # percent with 2 decimals; the count for a cohort; None if not computable
    numerator_subjects: tuple[PersonId, ...]
    denominator_subjects: tuple[PersonId, ...]  # empty for a cohort
    unit_target_percent: Decimal | None = None
    region_target_percent: Decimal | None = None
    # One patient per counted item, repeats kept (len == the count): a subject-list report's List.
    numerator_items: tuple[PersonId, ...] = ()
    denominator_items: tuple[PersonId, ...] = ()
    scores: ScoreSummary | None = None  # plan-quality only

    @property
    def meets_unit_target(self) -> bool | None:
        if self.value is None or self.unit_target_percent is None:
            return None
        return self.value >= self.unit_target_percent


def percent(numerator: int, denominator: int) -> Decimal | None:
    """numerator/denominator in percent, rounded half up to 2 decimals; None if denominator is 0."""
    if denominator == 0:
        return None
    return (Decimal(100 * numerator) / Decimal(denominator)).quantize(_HUNDREDTHS, ROUND_HALF_UP)


def _person_order(person: PersonId) -> tuple[str, str]:
    return (person.digits, person.kind)


def _subjects(persons: Iterable[PersonId]) -> tuple[PersonId, ...]:
    return tuple(sorted(set(persons), key=_person_order))


def _items(persons: Iterable[PersonId]) -> tuple[PersonId, ...]:
    return tuple(sorted(persons, key=_person_order))


@dataclass(frozen=True, slots=True)
class _Item:
    """One counted item of a patient (a risk-group membership, an event, a notice, a plan)."""

    in_numerator: bool
    score: Decimal | None = None  # a plan's quality score (plan-quality)


# What one patient state counts for an indicator of a unit and period: the per-state rule.
ItemsOf = Callable[[PatientState, str, Period, RuleSet], Iterable[_Item]]


def _risk_group_items(counts_in: Callable[[PatientState, date, RuleSet], bool]) -> ItemsOf:
    def items(state: PatientState, unit_hsa_id: str, period: Period, rules: RuleSet) -> list[_Item]:
        if not rules.in_risk_group(state, unit_hsa_id, period.end):
            return []
        return [_Item(counts_in(state, period.end, rules))]

    return items


def _has_plan(state: PatientState, as_of: date, _rules: RuleSet) -> bool:
    return bool(state.active_plans(as_of))


def _followed_up(state: PatientState, as_of: date, rules: RuleSet) -> bool:
    due = rules.follow_up_due(state, as_of)
    return due is not None and as_of <= due


def _kva_items(
    state: PatientState, unit_hsa_id: str, period: Period, code: EventCode
) -> list[_Item]:
    """The patient once per event."""
    return [
        _Item(True)
        for e in state.events
        if e.code is code and e.unit_hsa_id == unit_hsa_id and e.date in period
    ]


def _kva(code: EventCode) -> ItemsOf:
    return lambda state, unit, period, _rules: _kva_items(state, unit, period, code)


def _sip_call_items(
    state: PatientState, unit_hsa_id: str, period: Period, rules: RuleSet
) -> list[_Item]:
    """One item per notice decided by the period's end; in the numerator if called in time."""
    as_of = period.end
    if state.home_unit(as_of) != unit_hsa_id:
        return []
    decided = []
    for notice in state.notices:
        day = rules.notice_day(notice)
        if not notice.needs_sip or day not in period:
            continue
        deadline = rules.notice_deadline(notice).date()
        call = state.sip_call_on_or_after(day, as_of)
        if call is None and as_of <= deadline:
            continue  # not decided yet
        decided.append(_Item(call is not None and call.date <= deadline))
    return decided


def _quality_items(
    state: PatientState, unit_hsa_id: str, period: Period, rules: RuleSet
) -> list[_Item]:
    threshold = rules.params.indicators.plan_quality.threshold
    return [
        _Item(plan.quality.score >= threshold, plan.quality.score)
        for plan in state.active_plans(period.end)
        if plan.unit_hsa_id == unit_hsa_id and plan.quality is not None
    ]


_ITEMS_OF: dict[IndicatorCode, ItemsOf] = {
    IndicatorCode.PLAN_COVERAGE: _risk_group_items(_has_plan),
    IndicatorCode.FOLLOWUP_90D: _risk_group_items(_followed_up),
    **{indicator: _kva(code) for indicator, code in KVA_INDICATORS.items()},
    IndicatorCode.LUS_SIP_CALL: _sip_call_items,
    IndicatorCode.PLAN_QUALITY: _quality_items,
}


@dataclass(slots=True)
class _Counts:
    """One indicator of one unit so far: a PersonId per counted item, and the plans' scores."""

    numerator: list[PersonId] = field(default_factory=list)
    denominator: list[PersonId] = field(default_factory=list)
    scores: list[Decimal] = field(default_factory=list)

    def add(self, person: PersonId, items: Iterable[_Item]) -> None:
        for item in items:
            self.denominator.append(person)
            if item.in_numerator:
                self.numerator.append(person)
            if item.score is not None:
                self.scores.append(item.score)

    def cohort(self, indicator: IndicatorCode, unit_hsa_id: str, period: Period) -> IndicatorResult:
        """A count: every item is in the numerator."""
        count = len(self.numerator)
        return IndicatorResult(
            indicator=indicator,
            scoring=Scoring.COHORT,
            unit_hsa_id=unit_hsa_id,
            period=period,
            numerator=count,
            denominator=None,
            value=Decimal(count),
            numerator_subjects=_subjects(self.numerator),
            denominator_subjects=(),
            numerator_items=_items(self.numerator),
        )

    def proportion(
        self, indicator: IndicatorCode, unit_hsa_id: str, period: Period, rules: RuleSet
    ) -> IndicatorResult:
        """A share. A patient appears once per counted item (once per notice for lus-sip-call)."""
        target = rules.params.indicators.target(indicator)
        scores = None
        if indicator is IndicatorCode.PLAN_QUALITY:
            scores = summarise(self.scores, rules.params.indicators.plan_quality.threshold)
        return IndicatorResult(
            indicator=indicator,
            scoring=Scoring.PROPORTION,
            unit_hsa_id=unit_hsa_id,
            period=period,
            numerator=len(self.numerator),
            denominator=len(self.denominator),
            value=percent(len(self.numerator), len(self.denominator)),
            numerator_subjects=_subjects(self.numerator),
            denominator_subjects=_subjects(self.denominator),
            unit_target_percent=target.for_unit(unit_hsa_id),
            region_target_percent=target.region_percent,
            numerator_items=_items(self.numerator),
            denominator_items=_items(self.denominator),
            scores=scores,
        )


class IndicatorTally:
    """The indicators of `units` for `period` over patient states fed in parts (`add`), so a
    region can be counted one chunk of patients at a time: between parts it keeps a PersonId per
    counted item and the plans' scores, never a state. `results()` equals the indicators over
    all the states at once (each patient fed once), in the order unit, IndicatorCode."""

    def __init__(
        self,
        units: Iterable[str],
        period: Period,
        rules: RuleSet,
        indicators: Iterable[IndicatorCode] = tuple(IndicatorCode),
    ) -> None:
        self.period = period
        self.rules = rules
        chosen = tuple(indicators)
        self._counts = {(unit, code): _Counts() for unit in units for code in chosen}

    def add(self, states: Iterable[PatientState]) -> None:
        for state in states:
            for (unit, code), counts in self._counts.items():
                counts.add(state.patient, _ITEMS_OF[code](state, unit, self.period, self.rules))

    def results(self) -> list[IndicatorResult]:
        return [
            counts.cohort(code, unit, self.period)
            if code in KVA_INDICATORS
            else counts.proportion(code, unit, self.period, self.rules)
            for (unit, code), counts in self._counts.items()
        ]


def _one(
    indicator: IndicatorCode,
    states: Iterable[PatientState],
    unit_hsa_id: str,
    period: Period,
    rules: RuleSet,
) -> IndicatorResult:
    tally = IndicatorTally([unit_hsa_id], period, rules, [indicator])
    tally.add(states)
    return tally.results()[0]


def risk_group(
    states: Iterable[PatientState], unit_hsa_id: str, as_of: date, rules: RuleSet
) -> list[PatientState]:
    """The patients in the unit's risk group on `as_of`."""
    return [s for s in states if rules.in_risk_group(s, unit_hsa_id, as_of)]


def plan_coverage(
    states: Iterable[PatientState], unit_hsa_id: str, period: Period, rules: RuleSet
) -> IndicatorResult:
    return _one(IndicatorCode.PLAN_COVERAGE, states, unit_hsa_id, period, rules)


def followup_in_time(
    states: Iterable[PatientState], unit_hsa_id: str, period: Period, rules: RuleSet
) -> IndicatorResult:
    return _one(IndicatorCode.FOLLOWUP_90D, states, unit_hsa_id, period, rules)


def kva_count(
    states: Iterable[PatientState], unit_hsa_id: str, period: Period, indicator: IndicatorCode
) -> IndicatorResult:
    code = KVA_INDICATORS[indicator]
    counts = _Counts()
    for state in states:
        counts.add(state.patient, _kva_items(state, unit_hsa_id, period, code))
    return counts.cohort(indicator, unit_hsa_id, period)


def sip_call_in_time(
    states: Iterable[PatientState], unit_hsa_id: str, period: Period, rules: RuleSet
) -> IndicatorResult:
    return _one(IndicatorCode.LUS_SIP_CALL, states, unit_hsa_id, period, rules)


def plan_quality(
    states: Iterable[PatientState], unit_hsa_id: str, period: Period, rules: RuleSet
) -> IndicatorResult:
    return _one(IndicatorCode.PLAN_QUALITY, states, unit_hsa_id, period, rules)


def listing_units(states: Iterable[PatientState], as_of: date) -> list[str]:
    """The units with a Prea60 run by `as_of`, in order."""
    return sorted(
        {run.unit_hsa_id for s in states for run in s.unit_runs if run.run_date <= as_of}
        | {e.unit_hsa_id for s in states for e in s.risk_entries if e.run_date <= as_of}
    )


def unit_indicators(
    states: Iterable[PatientState], unit_hsa_id: str, period: Period, rules: RuleSet
) -> list[IndicatorResult]:
    """All indicators of one unit, in the order of IndicatorCode."""
    tally = IndicatorTally([unit_hsa_id], period, rules)
    tally.add(states)
    return tally.results()
