"""Pure: the stored weekly snapshots of each unit as a trend, with the targets of mappings/.

Only snapshot periods count (the 7 days ending on the snapshot day, see `store.snapshot_period`):
a report of a longer period would put a quarter's count beside a week's.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from adapter.canonical import IndicatorCode
from adapter.followup.rules import RuleSet
from adapter.indicators.compute import Period, Scoring
from adapter.indicators.reports import StoredReport

SNAPSHOT_DAYS = 7  # a weekly snapshot covers the week that ends on its day
SHARES = (
    IndicatorCode.PLAN_COVERAGE,
    IndicatorCode.FOLLOWUP_90D,
    IndicatorCode.LUS_SIP_CALL,
    IndicatorCode.PLAN_QUALITY,
)
COUNTS = (IndicatorCode.KVA_AU124, IndicatorCode.KVA_AU125, IndicatorCode.KVA_AW010)


def snapshot_period(as_of: date) -> Period:
    """The snapshot of `as_of`: shares on that day, counts over the 7 days ending on it."""
    return Period(as_of - timedelta(days=SNAPSHOT_DAYS - 1), as_of)


def is_snapshot(period: Period) -> bool:
    return period == snapshot_period(period.end)


@dataclass(frozen=True, slots=True)
class Targets:
    region_percent: Decimal | None
    unit_percent: Decimal | None


@dataclass(frozen=True, slots=True)
class UnitTrend:
    """One unit: per snapshot day, each indicator's stored report."""

    unit_hsa_id: str
    days: tuple[date, ...]
    reports: dict[IndicatorCode, dict[date, StoredReport]]
    targets: dict[IndicatorCode, Targets]

    def series(self, indicator: IndicatorCode) -> list[tuple[date, Decimal | None]]:
        """(day, value) on every snapshot day; None where the report is missing or has none."""
        stored = self.reports.get(indicator, {})
        return [(day, r.value if (r := stored.get(day)) else None) for day in self.days]

    def scoring(self, indicator: IndicatorCode) -> Scoring:
        return Scoring.PROPORTION if indicator in SHARES else Scoring.COHORT


def unit_trends(reports: Iterable[StoredReport], rules: RuleSet) -> list[UnitTrend]:
    """The snapshot reports per unit (in HSA-id order), with each share's targets."""
    by_unit: dict[str, dict[IndicatorCode, dict[date, StoredReport]]] = defaultdict(
        lambda: defaultdict(dict)
    )
    for report in reports:
        if is_snapshot(report.period):
            by_unit[report.unit_hsa_id][report.indicator][report.period.end] = report
    trends = []
    for unit, indicators in sorted(by_unit.items()):
        days = sorted({day for stored in indicators.values() for day in stored})
        targets = {}
        for indicator in SHARES:
            target = rules.params.indicators.target(indicator)
            targets[indicator] = Targets(target.region_percent, target.for_unit(unit))
        trends.append(UnitTrend(unit, tuple(days), dict(indicators), targets))
    return trends
