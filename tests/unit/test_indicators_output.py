"""What people and programs see: JSON, CSV, tables, the trend and its charts, the Measures, and
the command line's argument errors (no server needed)."""

from __future__ import annotations

import csv
import io
import json
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from adapter.canonical import CS_INDICATOR, MEASURE_POPULATION, IndicatorCode, measure_url
from adapter.cli import app
from adapter.domain import EventCode
from adapter.indicators.chart import trend_figure, write_trend_chart
from adapter.indicators.compute import Period, Scoring, unit_indicators
from adapter.indicators.measures import load_measures, short_title, title
from adapter.indicators.present import (
    CSV_COLUMNS,
    indicators_csv,
    indicators_table,
    swedish,
    trend_csv,
    trend_json,
    trend_table,
    unit_json,
)
from adapter.indicators.reports import Population, parse_report, summary_report
from adapter.indicators.trend import is_snapshot, snapshot_period, unit_trends
from adapter.settings import REPO_ROOT
from tests.support.rules import RULES, UNIT, d, entry, event, person, plan, state

PROFILES_DIR = REPO_ROOT / "profiles"
PERIOD = Period(d("2024-12-05"), d("2024-12-11"))


def _states(with_plan: int = 17, group: int = 19) -> list:
    return [
        state(
            patient=person(n),
            entries=(entry("2024-11-25", "27.5"),),
            plans=(plan(f"c:{n}", created="2024-11-01"),) if n < with_plan else (),
            events=(event("2024-12-06", EventCode.AW010),) if n < 3 else (),
        )
        for n in range(group)
    ]


def _results(period: Period = PERIOD, **kwargs: int) -> list:
    return unit_indicators(_states(**kwargs), UNIT, period, RULES)


def _render(table: object) -> str:
    console = Console(record=True, width=200)
    console.print(table)
    return console.export_text()


def test_json_has_the_agreed_shape() -> None:
    body = unit_json(UNIT, PERIOD, _results())
    assert body["unit"] == UNIT
    assert body["as_of"] == "2024-12-11"
    assert body["period"] == {"start": "2024-12-05", "end": "2024-12-11"}
    by_id = {i["id"]: i for i in body["indicators"]}
    assert list(by_id) == [c.value for c in IndicatorCode]
    assert by_id["plan-coverage"] == {
        "id": "plan-coverage",
        "numerator": 17,
        "denominator": 19,
        "value": 89.47,
    }
    assert by_id["kva-AW010"] == {"id": "kva-AW010", "count": 3}
    assert by_id["lus-sip-call"]["value"] is None  # no notices: no value, not 0
    json.dumps(body)  # plain JSON types only


def test_csv_rows_per_indicator_with_targets() -> None:
    rows = list(csv.DictReader(io.StringIO(indicators_csv(_results()))))
    assert tuple(rows[0]) == CSV_COLUMNS
    by_id = {r["id"]: r for r in rows}
    assert by_id["followup-90d"]["value"] == "89.47"  # plans created 2024-11-01: in time
    assert (by_id["followup-90d"]["region_target"], by_id["followup-90d"]["unit_target"]) == (
        "60",
        "80",
    )
    assert by_id["kva-AW010"]["count"] == "3" and by_id["kva-AW010"]["value"] == ""


def test_table_speaks_swedish_and_judges_the_targets() -> None:
    text = _render(indicators_table(UNIT, PERIOD, _results(with_plan=10), PROFILES_DIR))
    coverage = next(line for line in text.splitlines() if "med SIP eller patientkontrakt" in line)
    assert "52,63 %" in coverage and "10 av 19" in coverage
    followup = next(line for line in text.splitlines() if "uppföljda inom 90" in line)
    assert "60 % / 80 %" in followup
    assert "nej / nej" in followup  # 52.63 % < 60 %: neither target met
    assert "3 st" in text
    met = _render(indicators_table(UNIT, PERIOD, _results(with_plan=19), PROFILES_DIR))
    assert "ja / ja" in next(line for line in met.splitlines() if "inom 90" in line)
    assert swedish(None) == "–" and swedish(Decimal("5")) == "5,00 %"


def _stored(days: list[date], period_of: object = snapshot_period) -> list:
    reports = []
    for i, day in enumerate(days):
        results = unit_indicators(_states(with_plan=10 + i), UNIT, period_of(day), RULES)  # type: ignore[operator]
        reports += [parse_report(summary_report(r).resource) for r in results]
    return reports


def test_trend_keeps_weekly_snapshots_only() -> None:
    days = [date(2024, 11, 27), date(2024, 12, 4), date(2024, 12, 11)]
    quarter = _stored([date(2024, 12, 11)], lambda day: Period(date(2024, 10, 1), day))
    (trend,) = unit_trends(_stored(days) + quarter, RULES)
    assert trend.days == tuple(days)
    values = [v for _, v in trend.series(IndicatorCode.PLAN_COVERAGE)]
    assert values == [Decimal("52.63"), Decimal("57.89"), Decimal("63.16")]
    assert trend.targets[IndicatorCode.FOLLOWUP_90D].region_percent == Decimal(60)
    assert trend.targets[IndicatorCode.FOLLOWUP_90D].unit_percent == Decimal(80)
    assert is_snapshot(snapshot_period(date(2024, 1, 3)))
    assert not is_snapshot(Period(date(2024, 1, 1), date(2024, 1, 3)))


def test_trend_outputs() -> None:
    days = [date(2024, 12, 4), date(2024, 12, 11)]
    trends = unit_trends(_stored(days), RULES)
    (unit,) = trend_json(trends)
    plan_rows = [s for s in unit["snapshots"] if s["id"] == "plan-coverage"]
    assert plan_rows == [
        {"day": "2024-12-04", "id": "plan-coverage", "numerator": 10, "denominator": 19,
         "value": 52.63},
        {"day": "2024-12-11", "id": "plan-coverage", "numerator": 11, "denominator": 19,
         "value": 57.89},
    ]  # fmt: skip
    rows = list(csv.DictReader(io.StringIO(trend_csv(trends))))
    assert len(rows) == 2 * len(IndicatorCode)
    text = _render(trend_table(trends[0], PROFILES_DIR))
    assert "57,89 % (11/19)" in text and "60 % / 80 %" in text


def test_trend_chart_png_and_svg(tmp_path: Path) -> None:
    days = [date(2024, 11, 27), date(2024, 12, 4), date(2024, 12, 11)]
    (trend,) = unit_trends(_stored(days), RULES)
    png, svg = write_trend_chart(trend, tmp_path / "a", PROFILES_DIR)
    assert png.name == f"indikatorer-{UNIT}.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = svg.read_text(encoding="utf-8")
    assert "<svg" in text and "Regionens mål 60 %" in text and "Enhetens mål 80 %" in text
    _, again = write_trend_chart(trend, tmp_path / "b", PROFILES_DIR)
    assert again.read_bytes() == svg.read_bytes()  # the same trend, the same file


def test_titles_come_from_the_measures_in_the_folder_given(tmp_path: Path) -> None:
    """The tables and charts take their Measures' folder: no lookup of the global settings."""
    for source in PROFILES_DIR.glob("Measure-*.json"):
        resource = json.loads(source.read_text(encoding="utf-8"))
        resource["title"] = f"Egen {resource['title']}"
        resource["group"][0]["code"]["coding"][0]["display"] = "Egen kort titel"
        (tmp_path / source.name).write_text(json.dumps(resource), encoding="utf-8")
    coverage = IndicatorCode.PLAN_COVERAGE
    assert title(coverage, tmp_path).startswith("Egen ")
    assert short_title(coverage, tmp_path) == "Egen kort titel"
    assert "Egen kort titel" in _render(indicators_table(UNIT, PERIOD, _results(), tmp_path))
    assert "Egen kort titel" not in _render(
        indicators_table(UNIT, PERIOD, _results(), PROFILES_DIR)
    )
    (trend,) = unit_trends(_stored([date(2024, 12, 4)]), RULES)
    assert "Egen kort titel" in _render(trend_table(trend, tmp_path))
    shares = trend_figure(trend, tmp_path).axes[0].get_title()
    assert shares == title(IndicatorCode.PLAN_COVERAGE, tmp_path)


def test_every_indicator_has_a_measure_that_matches_what_is_computed() -> None:
    measures = load_measures(PROFILES_DIR)
    results = {r.indicator: r for r in _results()}
    for code in IndicatorCode:
        measure = measures[code]
        assert measure.url == measure_url(code.value)
        assert measure.scoring is results[code].scoring
        (group,) = measure.resource["group"]
        assert group["code"]["coding"][0] == {
            "system": CS_INDICATOR,
            "code": code.value,
            "display": measure.short_title,
        }
        populations = {p["code"]["coding"][0]["code"] for p in group["population"]}
        wanted = {Population.INITIAL} | (
            {Population.DENOMINATOR, Population.NUMERATOR}
            if measure.scoring is Scoring.PROPORTION
            else set()
        )
        assert populations == {p.value for p in wanted}
        assert all(
            p["code"]["coding"][0]["system"] == MEASURE_POPULATION for p in group["population"]
        )
        assert measure.resource["improvementNotation"]["coding"][0]["code"] == "increase"
    codes = json.loads((PROFILES_DIR / "CodeSystem-indicator.json").read_text(encoding="utf-8"))
    assert [c["code"] for c in codes["concept"]] == [c.value for c in IndicatorCode]


runner = CliRunner()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["indicators"], "Ange en enhet med --unit"),
        (["indicators", "--unit", UNIT, "--period", "2024-01-01"], "ogiltig period"),
        (["indicators", "--unit", UNIT, "--as-of", "11/12/2024"], "Ogiltigt datum"),
        (
            ["indicators", "--unit", UNIT, "--period", "2024-01-01/2024-03-31", "--as-of",
             "2024-03-30"],
            "periodens sista dag",
        ),
        (["indicators", "--trend", "--format", "fhir"], "table, csv eller json"),
        (["report", "--post"], "SIP_FHIR_REGISTRY_BASE_URL"),
    ],
)  # fmt: skip
def test_bad_arguments_exit_2_with_a_swedish_reason(
    args: list[str], message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SIP_FHIR_REGISTRY_BASE_URL", raising=False)
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert message in result.output
