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
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
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


def _subjects(states: Iterable[PatientState]) -> tuple[PersonId, ...]:
    return tuple(sorted({s.patient for s in states}, key=_person_order))


def _items(states: Iterable[PatientState]) -> tuple[PersonId, ...]:
    return tuple(sorted((s.patient for s in states), key=_person_order))


def _proportion(
    indicator: IndicatorCode,
    unit_hsa_id: str,
    period: Period,
    rules: RuleSet,
    denominator: Sequence[PatientState],
    numerator: Sequence[PatientState],
) -> IndicatorResult:
    """A share. A patient appears once per counted item (once per notice for lus-sip-call)."""
    target = rules.params.indicators.target(indicator)
    return IndicatorResult(
        indicator=indicator,
        scoring=Scoring.PROPORTION,
        unit_hsa_id=unit_hsa_id,
        period=period,
        numerator=len(numerator),
        denominator=len(denominator),
        value=percent(len(numerator), len(denominator)),
        numerator_subjects=_subjects(numerator),
        denominator_subjects=_subjects(denominator),
        unit_target_percent=target.for_unit(unit_hsa_id),
        region_target_percent=target.region_percent,
        numerator_items=_items(numerator),
        denominator_items=_items(denominator),
    )


def risk_group(
    states: Iterable[PatientState], unit_hsa_id: str, as_of: date, rules: RuleSet
) -> list[PatientState]:
    """The patients in the unit's risk group on `as_of`."""
    return [s for s in states if rules.in_risk_group(s, unit_hsa_id, as_of)]


def _share_of_risk_group(
    indicator: IndicatorCode,
    counts_in: Callable[[PatientState, date], bool],
    states: Iterable[PatientState],
    unit_hsa_id: str,
    period: Period,
    rules: RuleSet,
) -> IndicatorResult:
    group = risk_group(states, unit_hsa_id, period.end, rules)
    done = [s for s in group if counts_in(s, period.end)]
    return _proportion(indicator, unit_hsa_id, period, rules, group, done)


def plan_coverage(
    states: Iterable[PatientState], unit_hsa_id: str, period: Period, rules: RuleSet
) -> IndicatorResult:
    return _share_of_risk_group(
        IndicatorCode.PLAN_COVERAGE,
        lambda s, as_of: bool(s.active_plans(as_of)),
        states,
        unit_hsa_id,
        period,
        rules,
    )


def followup_in_time(
    states: Iterable[PatientState], unit_hsa_id: str, period: Period, rules: RuleSet
) -> IndicatorResult:
    def followed_up(state: PatientState, as_of: date) -> bool:
        due = rules.follow_up_due(state, as_of)
        return due is not None and as_of <= due

    return _share_of_risk_group(
        IndicatorCode.FOLLOWUP_90D, followed_up, states, unit_hsa_id, period, rules
    )


def kva_count(
    states: Iterable[PatientState], unit_hsa_id: str, period: Period, indicator: IndicatorCode
) -> IndicatorResult:
    code = KVA_INDICATORS[indicator]
    items = [  # the patient once per event
        state
        for state in states
        for e in state.events
        if e.code is code and e.unit_hsa_id == unit_hsa_id and e.date in period
    ]
    count = len(items)
    return IndicatorResult(
        indicator=indicator,
        scoring=Scoring.COHORT,
        unit_hsa_id=unit_hsa_id,
        period=period,
        numerator=count,
        denominator=None,
        value=Decimal(count),
        numerator_subjects=_subjects(items),
        denominator_subjects=(),
        numerator_items=_items(items),
    )


def sip_call_in_time(
    states: Iterable[PatientState], unit_hsa_id: str, period: Period, rules: RuleSet
) -> IndicatorResult:
    as_of = period.end
    decided: list[PatientState] = []  # one entry per notice
    in_time: list[PatientState] = []
    for state in states:
        if state.home_unit(as_of) != unit_hsa_id:
            continue
        for notice in state.notices:
            day = rules.notice_day(notice)
            if not notice.needs_sip or day not in period:
                continue
            deadline = rules.notice_deadline(notice).date()
            call = state.sip_call_on_or_after(day, as_of)
            if call is None and as_of <= deadline:
                continue  # not decided yet
            decided.append(state)
            if call is not None and call.date <= deadline:
                in_time.append(state)
    return _proportion(IndicatorCode.LUS_SIP_CALL, unit_hsa_id, period, rules, decided, in_time)


def plan_quality(
    states: Iterable[PatientState], unit_hsa_id: str, period: Period, rules: RuleSet
) -> IndicatorResult:
    threshold = rules.params.indicators.plan_quality.threshold
    scored = [
        (state, plan.quality.score)
        for state in states
        for plan in state.active_plans(period.end)
        if plan.unit_hsa_id == unit_hsa_id and plan.quality is not None
    ]
    good = [state for state, score in scored if score >= threshold]
    result = _proportion(
        IndicatorCode.PLAN_QUALITY,
        unit_hsa_id,
        period,
        rules,
        [state for state, _ in scored],
        good,
    )
    return replace(result, scores=summarise([score for _, score in scored], threshold))


def listing_units(states: Iterable[PatientState], as_of: date) -> list[str]:
    """The units with a Prea60 run by `as_of`, in order."""
    return sorted(
        {run.unit_hsa_id for s in states for run in s.unit_runs if run.run_date <= as_of}
        | {e.unit_hsa_id for s in states for e in s.risk_entries if e.run_date <= as_of}
    )


def unit_indicators(
    states: Sequence[PatientState], unit_hsa_id: str, period: Period, rules: RuleSet
) -> list[IndicatorResult]:
    """All indicators of one unit, in the order of IndicatorCode."""
    results = {
        IndicatorCode.PLAN_COVERAGE: plan_coverage(states, unit_hsa_id, period, rules),
        IndicatorCode.FOLLOWUP_90D: followup_in_time(states, unit_hsa_id, period, rules),
        IndicatorCode.LUS_SIP_CALL: sip_call_in_time(states, unit_hsa_id, period, rules),
        IndicatorCode.PLAN_QUALITY: plan_quality(states, unit_hsa_id, period, rules),
    }
    for indicator in KVA_INDICATORS:
        results[indicator] = kva_count(states, unit_hsa_id, period, indicator)
    return [results[code] for code in IndicatorCode]
