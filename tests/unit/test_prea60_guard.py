"""The Prea60 run guard (pure): which runs are stored unconfirmed, and the Swedish reasons."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from adapter.followup.params import Prea60GuardParams
from adapter.followup.rulesfile import load_rules
from adapter.prea60.guard import RunFigures, check_run
from adapter.settings import REPO_ROOT

PARAMS = load_rules(REPO_ROOT / "mappings" / "rules.json").params.prea60_guard
UNIT = "SE2321000057-E00000000001"
PREVIOUS = RunFigures(date(2024, 12, 9), 100, frozenset(f"Patient/{i}" for i in range(20)))


def run(rows: int, group: range) -> RunFigures:
    return RunFigures(date(2024, 12, 16), rows, frozenset(f"Patient/{i}" for i in group))


def test_the_defaults_are_30_percent_dropped_and_half_the_rows() -> None:
    assert PARAMS == Prea60GuardParams(
        max_dropped_share=Decimal("0.30"), min_size_ratio=Decimal("0.50")
    )


def test_the_incident_a_3_row_run_is_held_for_both_reasons() -> None:
    check = check_run(UNIT, run(3, range(3)), PREVIOUS, PARAMS)
    assert not check.trusted and check.dropped == 17
    assert check.reasons == (
        "17 av 20 patienter i riskgruppen från körningen 2024-12-09 skulle falla bort "
        "(gränsen är 30 %)",
        "körningen har 3 rader mot 100 i körningen 2024-12-09 (gränsen är 50 % av den)",
    )
    assert "sip-fhir prea60 confirm --unit SE2321000057-E00000000001 --run 2024-12-16" in (
        check.describe()
    )


@pytest.mark.parametrize(
    ("rows", "group", "trusted"),
    [
        (100, range(20), True),  # the same group
        (100, range(6, 26), True),  # 6 of 20 dropped: 30 %, not more
        (100, range(7, 27), False),  # 7 of 20: 35 %
        (50, range(20), True),  # exactly half the rows
        (49, range(20), False),  # fewer than half
    ],
)
def test_the_limits(rows: int, group: range, trusted: bool) -> None:
    assert check_run(UNIT, run(rows, group), PREVIOUS, PARAMS).trusted is trusted


def test_a_units_first_run_and_an_empty_previous_group_are_trusted() -> None:
    assert check_run(UNIT, run(3, range(3)), None, PARAMS).trusted
    empty = RunFigures(date(2024, 12, 9), 4, frozenset())
    assert check_run(UNIT, run(3, range(0)), empty, PARAMS).trusted
