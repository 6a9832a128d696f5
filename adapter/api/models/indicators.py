"""The indicator routes' answers: a unit's indicators now, and their weekly trend with targets.
Percentages are numbers (89.47)."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from adapter.api.clinic import Indicators
from adapter.api.models.base import number
from adapter.indicators.compute import Scoring
from adapter.indicators.measures import title
from adapter.indicators.present import scores_json
from adapter.indicators.trend import COUNTS, SHARES, UnitTrend


class IndicatorOut(BaseModel):
    id: str
    title: str
    scoring: Literal["proportion", "cohort"]
    numerator: int
    denominator: int | None
    value: float | None = Field(description="Andel i procent, eller antal")
    region_target: float | None
    unit_target: float | None
    scores: dict[str, Any] | None = Field(
        default=None,
        description="plan-quality: tröskel, medel, min, median, max (0–1) och planer per intervall",
    )


class IndicatorsOut(BaseModel):
    unit: str
    as_of: date
    period_start: date
    period_end: date
    indicators: list[IndicatorOut]

    @classmethod
    def of(cls, found: Indicators, profiles_dir: Path) -> IndicatorsOut:
        return cls(
            unit=found.unit_hsa_id,
            as_of=found.period.end,
            period_start=found.period.start,
            period_end=found.period.end,
            indicators=[
                IndicatorOut(
                    id=r.indicator.value,
                    title=title(r.indicator, profiles_dir),
                    scoring="cohort" if r.scoring is Scoring.COHORT else "proportion",
                    numerator=r.numerator,
                    denominator=r.denominator,
                    value=number(r.value),
                    region_target=number(r.region_target_percent),
                    unit_target=number(r.unit_target_percent),
                    scores=None if r.scores is None else scores_json(r.scores),
                )
                for r in found.results
            ],
        )


class TrendPointOut(BaseModel):
    day: date
    value: float | None
    numerator: int | None
    denominator: int | None


class TrendSeriesOut(BaseModel):
    id: str
    title: str
    scoring: Literal["proportion", "cohort"]
    region_target: float | None
    unit_target: float | None
    points: list[TrendPointOut]


class TrendOut(BaseModel):
    unit: str
    days: list[date]
    series: list[TrendSeriesOut]

    @classmethod
    def of(cls, unit: str, trend: UnitTrend | None, profiles_dir: Path) -> TrendOut:
        if trend is None:
            return cls(unit=unit, days=[], series=[])
        series = []
        for indicator in (*SHARES, *COUNTS):
            stored = trend.reports.get(indicator, {})
            targets = trend.targets.get(indicator)
            points = []
            for day in trend.days:
                report = stored.get(day)
                points.append(
                    TrendPointOut(
                        day=day,
                        value=number(report.value) if report else None,
                        numerator=report.numerator if report else None,
                        denominator=report.denominator if report else None,
                    )
                )
            series.append(
                TrendSeriesOut(
                    id=indicator.value,
                    title=title(indicator, profiles_dir),
                    scoring="proportion" if indicator in SHARES else "cohort",
                    region_target=number(targets.region_percent) if targets else None,
                    unit_target=number(targets.unit_percent) if targets else None,
                    points=points,
                )
            )
        return cls(unit=unit, days=list(trend.days), series=series)
