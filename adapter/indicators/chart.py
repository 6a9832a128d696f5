"""Trend charts (PNG and SVG): each share over the weekly snapshots against its region and unit
targets, and the KVÅ counts per week. matplotlib's object API with the Agg canvas: no pyplot
state, no display, safe in the scheduler's threads."""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal
from pathlib import Path

from matplotlib import colormaps, rc_context
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from adapter.canonical import IndicatorCode
from adapter.indicators.distribution import BANDS, band_label
from adapter.indicators.measures import title
from adapter.indicators.trend import COUNTS, SHARES, UnitTrend

FORMATS = ("png", "svg")
_SAFE = re.compile(r"[^A-Za-z0-9\-_.]")


def chart_stem(unit_hsa_id: str) -> str:
    return f"indikatorer-{_SAFE.sub('_', unit_hsa_id)}"


def _points(
    series: list[tuple[date, Decimal | None]],
) -> tuple[list[date], list[float]]:
    known = [(day, float(value)) for day, value in series if value is not None]
    return [day for day, _ in known], [value for _, value in known]


def _dates(axis: Axes) -> None:
    locator = AutoDateLocator()
    axis.xaxis.set_major_locator(locator)
    axis.xaxis.set_major_formatter(ConciseDateFormatter(locator))


def trend_figure(trend: UnitTrend, profiles_dir: Path) -> Figure:
    """`profiles_dir`: the Measures whose titles head the shares (None: adapter/api's seam)."""
    figure = Figure(figsize=(10, 3.2 * (len(SHARES) + 2)), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(len(SHARES) + 2, 1, sharex=True)
    figure.suptitle(f"Indikatorer för {trend.unit_hsa_id}, veckovis")
    for axis, indicator in zip(axes, SHARES, strict=False):
        days, values = _points(trend.series(indicator))
        axis.plot(days, values, marker="o", label="Andel")
        targets = trend.targets[indicator]
        for target, style, color, whose in (
            (targets.region_percent, "--", "tab:red", "Regionens"),
            (targets.unit_percent, ":", "tab:green", "Enhetens"),
        ):
            if target is not None:
                label = f"{whose} mål {target} %"
                axis.axhline(float(target), linestyle=style, color=color, label=label)
        axis.set_title(title(indicator, profiles_dir), fontsize="medium")
        axis.set_ylim(0, 100)
        axis.set_ylabel("%")
        axis.grid(alpha=0.3)
        axis.legend(loc="lower right", fontsize="small")
        _dates(axis)
    _score_bands(axes[-2], trend)
    counts = axes[-1]
    for indicator in COUNTS:
        days, values = _points(trend.series(indicator))
        counts.plot(days, values, marker="o", label=_count_label(indicator))
    counts.set_title("Registrerade KVÅ-åtgärder per vecka", fontsize="medium")
    counts.set_ylabel("antal")
    counts.yaxis.set_major_locator(MaxNLocator(integer=True))
    counts.set_ylim(0, max(1.0, counts.get_ylim()[1]))
    counts.grid(alpha=0.3)
    counts.legend(loc="upper left", fontsize="small")
    _dates(counts)
    return figure


def _score_bands(axis: Axes, trend: UnitTrend) -> None:
    """plan-quality's plans per score band, stacked per snapshot (the spread over time)."""
    stored = trend.reports.get(IndicatorCode.PLAN_QUALITY, {})
    per_day = {
        day: r.scores.bands for day in trend.days if (r := stored.get(day)) and r.scores is not None
    }
    days = list(per_day)
    bottoms = [0.0] * len(days)
    colors = colormaps["RdYlGn"]
    for i, band in enumerate(BANDS):
        heights = [float(per_day[day][i]) for day in days]
        axis.bar(
            days,  # type: ignore[arg-type]  # dates go through matplotlib's unit converter
            heights,
            bottom=bottoms,
            width=5,
            color=colors((i + 0.5) / len(BANDS)),
            label=band_label(band),
        )
        bottoms = [b + h for b, h in zip(bottoms, heights, strict=True)]
    axis.set_title("Planernas kvalitetspoäng per intervall (antal planer)", fontsize="medium")
    axis.set_ylabel("planer")
    axis.yaxis.set_major_locator(MaxNLocator(integer=True))
    axis.grid(alpha=0.3)
    if days:
        axis.set_ylim(0, max(1.0, *bottoms) * 1.35)  # room for the legend above the bars
        axis.legend(loc="upper left", fontsize="small", title="Poäng", ncols=len(BANDS))
    _dates(axis)


def _count_label(indicator: IndicatorCode) -> str:
    return indicator.value.removeprefix("kva-")


def write_trend_chart(trend: UnitTrend, out_dir: Path, profiles_dir: Path) -> list[Path]:
    """`indikatorer-<unit>.png` and `.svg` in `out_dir`; returns the files."""
    out_dir.mkdir(parents=True, exist_ok=True)
    figure = trend_figure(trend, profiles_dir)
    paths = [out_dir / f"{chart_stem(trend.unit_hsa_id)}.{fmt}" for fmt in FORMATS]
    # No creation date and fixed element ids in the SVG: the same trend gives the same file.
    with rc_context({"svg.hashsalt": "sip-fhir"}):
        for path in paths:
            metadata = {"Date": None} if path.suffix == ".svg" else None
            figure.savefig(path, format=path.suffix[1:], dpi=120, metadata=metadata)
    return paths
