"""Indicator plan-quality: the share at or above the threshold, the statistics, the bands; as a
MeasureReport and back, in JSON/CSV/table, and in the trend chart."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import pytest

from adapter.canonical import EXT_QUALITY_SUMMARY, IndicatorCode
from adapter.domain import PlanKind, PlanStatus
from adapter.followup.params import RuleParamsError, parse_rule_params
from adapter.followup.rules import RuleSet
from adapter.followup.state import PlanFacts
from adapter.indicators.chart import trend_figure, write_trend_chart
from adapter.indicators.compute import Period, plan_quality, unit_indicators
from adapter.indicators.distribution import BANDS, band_label, band_of, summarise
from adapter.indicators.present import indicator_json, indicators_csv, scores_text
from adapter.indicators.reports import parse_report, summary_report
from adapter.indicators.trend import snapshot_period, unit_trends
from adapter.mapping.r4 import check_structure
from adapter.quality import PlanQuality
from adapter.settings import REPO_ROOT
from tests.support.rules import RULES, UNIT, UNIT_B, d, person, plan, state

PERIOD = snapshot_period(d("2025-03-10"))


def _scored(key: str, score: str, **kwargs: object) -> PlanFacts:
    return replace(plan(key, **kwargs), quality=PlanQuality(Decimal(score), (), "1"))  # type: ignore[arg-type]


def _unit() -> list:
    """Seven active plans of UNIT scored 0.50 … 1.00, and what must not count."""
    scores = ["0.50", "0.58", "0.58", "0.83", "0.92", "0.92", "1.00"]
    states = [
        state(patient=person(n), plans=(_scored(f"c:P{n}", s),)) for n, s in enumerate(scores)
    ]
    states += [
        state(patient=person(20), plans=(_scored("c:D", "0.08", status=PlanStatus.DRAFT),)),
        state(patient=person(21), plans=(_scored("c:C", "0.17", status=PlanStatus.COMPLETED),)),
        state(patient=person(22), plans=(_scored("c:B", "0.10", unit=UNIT_B),)),
        state(patient=person(23), plans=(plan("c:U"),)),  # no score: written by someone else
        state(patient=person(24), plans=(_scored("c:F", "0.30", created="2025-04-01"),)),
    ]
    return states


def test_share_at_or_above_the_threshold_with_mean_median_and_range() -> None:
    result = plan_quality(_unit(), UNIT, PERIOD, RULES)
    assert (result.numerator, result.denominator, result.value) == (4, 7, Decimal("57.14"))
    scores = result.scores
    assert scores is not None
    assert scores.threshold == Decimal("0.8")
    assert (scores.mean, scores.minimum, scores.median, scores.maximum) == (
        Decimal("0.76"),  # 5.33 / 7 = 0.7614…
        Decimal("0.50"),
        Decimal("0.83"),
        Decimal("1.00"),
    )
    assert scores.bands == (0, 0, 3, 0, 4)
    assert result.denominator_items == tuple(person(n) for n in range(7))


def test_a_patient_with_two_plans_counts_twice() -> None:
    both = state(
        patient=person(1),
        plans=(_scored("c:S", "0.90", kind=PlanKind.SIP), _scored("c:K", "0.40")),
    )
    result = plan_quality([both], UNIT, PERIOD, RULES)
    assert (result.numerator, result.denominator) == (1, 2)
    assert result.numerator_subjects == (person(1),)


def test_the_threshold_comes_from_the_rules() -> None:
    document = json.loads((REPO_ROOT / "mappings" / "rules.json").read_text(encoding="utf-8"))
    document["indicators"]["plan_quality"]["threshold"] = 0.5
    rules = RuleSet.from_params(parse_rule_params(json.dumps(document)))
    result = plan_quality(_unit(), UNIT, PERIOD, rules)
    assert (result.numerator, result.denominator) == (7, 7)
    assert result.scores is not None and result.scores.threshold == Decimal("0.5")


def test_a_threshold_outside_0_to_1_is_refused() -> None:
    document = json.loads((REPO_ROOT / "mappings" / "rules.json").read_text(encoding="utf-8"))
    document["indicators"]["plan_quality"]["threshold"] = 80
    with pytest.raises(RuleParamsError, match="threshold"):
        parse_rule_params(json.dumps(document))


def test_a_unit_without_scored_plans_has_no_value() -> None:
    result = plan_quality(_unit(), "SE2321000057-E00000000009", PERIOD, RULES)
    assert (result.numerator, result.denominator, result.value) == (0, 0, None)
    assert result.scores is not None and result.scores.mean is None
    assert scores_text(result.scores) == "–"


def test_bands_and_median_of_an_even_count() -> None:
    assert [band_of(Decimal(s)) for s in ("0", "0.19", "0.2", "0.59", "0.8", "1")] == [
        0,
        0,
        1,
        2,
        4,
        4,
    ]
    summary = summarise([Decimal("0.25"), Decimal("0.50")], Decimal("0.8"))
    assert summary.median == Decimal("0.38")  # 0.375 rounded half up
    assert band_label(BANDS[1]) == "0,2–0,4"


def test_unit_indicators_include_plan_quality() -> None:
    results = unit_indicators(_unit(), UNIT, PERIOD, RULES)
    assert [r.indicator for r in results] == list(IndicatorCode)
    assert next(r for r in results if r.indicator is IndicatorCode.PLAN_QUALITY).denominator == 7


def test_the_report_carries_statistics_and_bands_and_reads_back() -> None:
    result = plan_quality(_unit(), UNIT, PERIOD, RULES)
    report = summary_report(result).resource
    check_structure(report)
    group = report["group"][0]
    (summary,) = [e for e in group["extension"] if e["url"] == EXT_QUALITY_SUMMARY]
    assert {p["url"]: p["valueDecimal"] for p in summary["extension"]} == {
        "threshold": 0.8,
        "mean": 0.76,
        "min": 0.5,
        "median": 0.83,
        "max": 1.0,
    }
    strata = group["stratifier"][0]["stratum"]
    assert [(s["value"]["text"], s["population"][0]["count"]) for s in strata] == list(
        zip(BANDS, (0, 0, 3, 0, 4), strict=True)
    )
    assert group["measureScore"]["value"] == 0.5714
    stored = parse_report(report)
    assert stored.scores == result.scores
    assert stored.value == Decimal("57.14")


def test_other_indicators_carry_no_statistics() -> None:
    results = unit_indicators(_unit(), UNIT, PERIOD, RULES)
    for result in results:
        report = summary_report(result).resource
        has = "stratifier" in report["group"][0]
        assert has is (result.indicator is IndicatorCode.PLAN_QUALITY)


def test_json_csv_and_table_show_the_scores() -> None:
    result = plan_quality(_unit(), UNIT, PERIOD, RULES)
    shown = indicator_json(result)
    assert shown["scores"] == {
        "threshold": 0.8,
        "mean": 0.76,
        "min": 0.5,
        "median": 0.83,
        "max": 1.0,
        "bands": {"0.0-0.2": 0, "0.2-0.4": 0, "0.4-0.6": 3, "0.6-0.8": 0, "0.8-1.0": 4},
    }
    (row,) = csv.DictReader(io.StringIO(indicators_csv([result])))
    assert (row["value"], row["mean"], row["median"]) == ("57.14", "0.76", "0.83")
    assert scores_text(result.scores) == "medel 0,76; min–median–max 0,50–0,83–1,00"  # type: ignore[arg-type]


def test_the_trend_chart_stacks_the_bands_per_snapshot(tmp_path: Path) -> None:
    days = [d("2025-03-03"), d("2025-03-10")]
    reports = []
    for i, day in enumerate(days):
        states = _unit()[: 5 + 2 * i]
        for result in unit_indicators(states, UNIT, snapshot_period(day), RULES):
            reports.append(parse_report(summary_report(result).resource))
    (trend,) = unit_trends(reports, RULES)
    figure = trend_figure(trend, REPO_ROOT / "profiles")
    bands_axis = figure.axes[-2]
    assert bands_axis.get_title().startswith("Planernas kvalitetspoäng")
    heights = [patch.get_height() for patch in bands_axis.patches]
    assert len(heights) == len(BANDS) * len(days)
    per_day = [sum(heights[j] for j in range(k, len(heights), len(days))) for k in range(2)]
    assert per_day == [5.0, 7.0]  # every plan in exactly one band
    assert {t.get_text() for t in bands_axis.get_legend().get_texts()} >= {"0,4–0,6", "0,8–1,0"}
    paths = write_trend_chart(trend, tmp_path, REPO_ROOT / "profiles")
    assert all(p.stat().st_size > 0 for p in paths)


def test_period_is_a_snapshot_of_its_day() -> None:
    result = plan_quality(_unit(), UNIT, Period(d("2025-01-01"), d("2025-03-10")), RULES)
    assert result.denominator == 7  # a plan created after the day (c:F) is not yet there
