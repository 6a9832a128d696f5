"""Deeply nested JSON (issue 10.5): a line that cannot be parsed is a row error with its line
number, the other lines go through, and no RecursionError reaches anyone. The API and the
subscription hook on a real server: tests/integration/test_api_hardening.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from adapter import safejson
from adapter.cli import app
from adapter.domain import Plan, RowError
from adapter.settings import REPO_ROOT
from adapter.sources import read_plan_lines, read_plans

EXAMPLE_PLANS = REPO_ROOT / "deploy" / "examples" / "plans.jsonl"


def nested(depth: int, open_: str = "[", close: str = "]") -> str:
    return open_ * depth + close * depth


def good_lines() -> list[str]:
    """Two plans of the examples that are distinct plans (not versions of one)."""
    plans: dict[str, str] = {}
    for line in EXAMPLE_PLANS.read_text(encoding="utf-8").splitlines():
        plans.setdefault(json.loads(line)["plan_id"], line)
    return list(plans.values())[:2]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1", 0),
        ('{"a": [1, {"b": []}]}', 4),
        ('["[[[[", "]]]", "\\"[["]', 1),  # brackets in strings, escaped quotes, do not count
        (nested(2000), 2000),
    ],
)
def test_depth_counts_brackets_outside_strings(text: str, expected: int) -> None:
    assert safejson.depth(text) == expected


@pytest.mark.parametrize("depth", [950, 2000, 100_000])
def test_too_deep_json_is_refused_before_parsing(depth: int) -> None:
    with pytest.raises(safejson.TooDeep) as caught:
        safejson.loads(nested(depth))
    assert isinstance(caught.value, ValueError)  # callers' `except ValueError` covers it
    assert "64 nivåer" in caught.value.reason
    objects = '{"a":' * depth + "1" + "}" * depth
    with pytest.raises(safejson.TooDeep):
        safejson.loads(objects.encode())


def test_json_up_to_the_limit_is_parsed() -> None:
    assert safejson.loads(nested(safejson.MAX_DEPTH)) == json.loads(nested(safejson.MAX_DEPTH))


def test_a_2000_deep_line_between_two_good_ones_is_a_row_error_on_line_2() -> None:
    first, second = good_lines()
    reading = read_plan_lines([first, nested(2000), second], name="plans (API)")
    items = list(reading)
    plans = [i for i in items if isinstance(i, Plan)]
    errors = [i for i in items if isinstance(i, RowError)]
    assert [p.source.line for p in plans] == [1, 3]
    (error,) = errors
    assert (error.line, error.column) == (2, None)
    assert "nästlad djupare än 64 nivåer" in error.reason
    assert (reading.summary.rows, reading.summary.accepted) == (3, 2)


def test_map_reports_the_deep_line_as_a_row_error_without_a_traceback(tmp_path: Path) -> None:
    first, second = good_lines()
    source = tmp_path / "plans-deep.jsonl"
    source.write_text("\n".join([first, nested(2000), second]) + "\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["map", str(source), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2, result.output  # some rows rejected
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output and "RecursionError" not in result.output
    report = (tmp_path / "out" / "radfel.csv").read_text(encoding="utf-8")
    assert "nästlad djupare än 64 nivåer" in report
    assert ";2;" in report or ",2," in report  # line 2 named
    bundle = json.loads((tmp_path / "out" / "plans-deep.bundle.json").read_text("utf-8"))
    care_plans = [e for e in bundle["entry"] if e["resource"]["resourceType"] == "CarePlan"]
    assert len(care_plans) == 2
    assert "UTF-8" in result.output  # the summary names the encoding


def test_a_deep_plans_file_is_read_line_by_line_from_disk(tmp_path: Path) -> None:
    first, _ = good_lines()
    source = tmp_path / "plans.jsonl"
    source.write_text(nested(5000, '{"a":', "}") + "\n" + first + "\n", encoding="utf-8")
    reading = read_plans(source)
    items = list(reading)
    assert [type(i).__name__ for i in items] == ["RowError", "Plan"]
