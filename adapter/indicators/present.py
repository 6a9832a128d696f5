"""Indicators for people and programs: JSON, CSV and rich tables (Swedish labels and numbers).

JSON and CSV are for programs: dot decimals, `value` in percent with two decimals (a share) and
`count` (a KVÅ count). The tables are for people: Swedish titles, decimal comma, targets.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Sequence
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

from rich.table import Table

from adapter.indicators.compute import IndicatorResult, Period, Scoring
from adapter.indicators.distribution import BANDS, ScoreSummary
from adapter.indicators.measures import short_title
from adapter.indicators.reports import StoredReport
from adapter.indicators.trend import COUNTS, SHARES, UnitTrend

Json = dict[str, Any]
CSV_COLUMNS = (
    "unit",
    "as_of",
    "period_start",
    "period_end",
    "id",
    "numerator",
    "denominator",
    "value",
    "count",
    "region_target",
    "unit_target",
    "mean",
    "min",
    "median",
    "max",
)
SCORE_COLUMNS = ("mean", "min", "median", "max")  # plan-quality's scores, 0–1
TREND_COLUMNS = ("unit", "day", "id", "numerator", "denominator", "value", "count", *SCORE_COLUMNS)


def _number(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


def scores_json(scores: ScoreSummary) -> Json:
    """plan-quality's statistics (0–1) and its plans per band of 0.2."""
    return {
        "threshold": _number(scores.threshold),
        "mean": _number(scores.mean),
        "min": _number(scores.minimum),
        "median": _number(scores.median),
        "max": _number(scores.maximum),
        "bands": dict(zip(BANDS, scores.bands, strict=True)),
    }


def indicator_json(result: IndicatorResult | StoredReport) -> Json:
    """`{"id", "numerator", "denominator", "value"}` for a share, `{"id", "count"}` for a count;
    plan-quality adds `scores` (see `scores_json`)."""
    if result.scoring is Scoring.COHORT:
        return {"id": result.indicator.value, "count": result.numerator}
    shown: Json = {
        "id": result.indicator.value,
        "numerator": result.numerator,
        "denominator": result.denominator,
        "value": _number(result.value),
    }
    if result.scores is not None:
        shown["scores"] = scores_json(result.scores)
    return shown


def period_json(period: Period) -> Json:
    return {"start": period.start.isoformat(), "end": period.end.isoformat()}


def unit_json(unit_hsa_id: str, period: Period, results: Sequence[IndicatorResult]) -> Json:
    return {
        "unit": unit_hsa_id,
        "as_of": period.end.isoformat(),
        "period": period_json(period),
        "indicators": [indicator_json(r) for r in results],
    }


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _csv(columns: Sequence[str], rows: Iterable[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({key: _text(value) for key, value in row.items()})
    return buffer.getvalue()


def _score_cells(result: IndicatorResult | StoredReport) -> dict[str, Any]:
    scores = result.scores
    if scores is None:
        return {}
    values = (scores.mean, scores.minimum, scores.median, scores.maximum)
    return dict(zip(SCORE_COLUMNS, values, strict=True))


def _csv_row(result: IndicatorResult | StoredReport) -> Json:
    row = indicator_json(result)
    row.pop("scores", None)
    return {**row, **_score_cells(result)}


def indicators_csv(results: Sequence[IndicatorResult]) -> str:
    """One row per unit and indicator; empty cells for what does not apply."""
    rows = []
    for r in results:
        share = r.scoring is Scoring.PROPORTION
        rows.append(
            {
                "unit": r.unit_hsa_id,
                "as_of": r.period.end.isoformat(),
                "period_start": r.period.start.isoformat(),
                "period_end": r.period.end.isoformat(),
                "id": r.indicator.value,
                "numerator": r.numerator if share else None,
                "denominator": r.denominator if share else None,
                "value": r.value if share else None,
                "count": None if share else r.numerator,
                "region_target": r.region_target_percent,
                "unit_target": r.unit_target_percent,
                **_score_cells(r),
            }
        )
    return _csv(CSV_COLUMNS, rows)


# --- for people ---


def swedish(value: Decimal | None, suffix: str = " %") -> str:
    """89.47 → "89,47 %"; None → "–" (no value: an empty denominator)."""
    if value is None:
        return "–"
    return f"{value:.2f}".replace(".", ",") + suffix


def scores_text(scores: ScoreSummary) -> str:
    """ "medel 0,72; min–median–max 0,25–0,75–1,00" (Swedish decimals); "–" without plans."""
    if scores.mean is None:
        return "–"

    def num(value: Decimal | None) -> str:
        return swedish(value, "")

    spread = "–".join(num(v) for v in (scores.minimum, scores.median, scores.maximum))
    return f"medel {num(scores.mean)}; min–median–max {spread}"


def _target(value: Decimal | None) -> str:
    if value is not None and value == value.to_integral_value():
        return f"{int(value)} %"
    return swedish(value)


def _met(value: Decimal | None, target: Decimal | None) -> str:
    if value is None or target is None:
        return "–"
    return "ja" if value >= target else "[red]nej[/]"


def indicators_table(
    unit_hsa_id: str, period: Period, results: Sequence[IndicatorResult], profiles_dir: Path
) -> Table:
    table = Table(
        title=f"Indikatorer för {unit_hsa_id} per {period.end}",
        caption=f"Antalen gäller {period.start} – {period.end}; andelarna {period.end}.",
    )
    table.add_column("Indikator")
    table.add_column("Värde", justify="right")
    table.add_column("Täljare av nämnare", justify="right")
    table.add_column("Mål region / enhet", justify="right")
    table.add_column("Uppnått region / enhet", justify="center")
    table.add_column("Poäng (0–1)")
    for r in results:
        if r.scoring is Scoring.COHORT:
            table.add_row(
                short_title(r.indicator, profiles_dir), f"{r.numerator} st", "", "", "", ""
            )
            continue
        table.add_row(
            short_title(r.indicator, profiles_dir),
            swedish(r.value),
            f"{r.numerator} av {r.denominator}",
            f"{_target(r.region_target_percent)} / {_target(r.unit_target_percent)}",
            f"{_met(r.value, r.region_target_percent)} / {_met(r.value, r.unit_target_percent)}",
            scores_text(r.scores) if r.scores is not None else "",
        )
    return table


# --- the trend ---


def _snapshots(trend: UnitTrend) -> Iterator[tuple[date, StoredReport]]:
    for day in trend.days:
        for indicator in (*SHARES, *COUNTS):
            report = trend.reports.get(indicator, {}).get(day)
            if report is not None:
                yield day, report


def trend_json(trends: Sequence[UnitTrend]) -> list[Json]:
    return [
        {
            "unit": trend.unit_hsa_id,
            "snapshots": [
                {"day": day.isoformat(), **indicator_json(report)}
                for day, report in _snapshots(trend)
            ],
        }
        for trend in trends
    ]


def trend_csv(trends: Sequence[UnitTrend]) -> str:
    rows = (
        {"unit": trend.unit_hsa_id, "day": day, **_csv_row(report)}
        for trend in trends
        for day, report in _snapshots(trend)
    )
    return _csv(TREND_COLUMNS, rows)


def trend_table(trend: UnitTrend, profiles_dir: Path) -> Table:
    table = Table(title=f"Trend för {trend.unit_hsa_id} (veckovisa ögonblicksbilder)")
    table.add_column("Vecka t.o.m.")
    for indicator in (*SHARES, *COUNTS):
        table.add_column(short_title(indicator, profiles_dir), justify="right")
    for day in trend.days:
        cells = [day.isoformat()]
        for indicator in (*SHARES, *COUNTS):
            report = trend.reports.get(indicator, {}).get(day)
            if report is None:
                cells.append("")
            elif indicator in SHARES:
                cells.append(f"{swedish(report.value)} ({report.numerator}/{report.denominator})")
            else:
                cells.append(str(report.numerator))
        table.add_row(*cells)
    targets = ["Mål region / enhet"]  # under the values they judge
    for indicator in (*SHARES, *COUNTS):
        t = trend.targets.get(indicator)
        targets.append(f"{_target(t.region_percent)} / {_target(t.unit_percent)}" if t else "")
    table.add_section()
    table.add_row(*targets, style="dim")
    return table
