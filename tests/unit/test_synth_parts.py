"""`adapter.synth` pieces: calendar, personnummer, risk model, configuration, the CLI."""

from __future__ import annotations

import random
from datetime import date
from pathlib import Path

import pytest
from typer.testing import CliRunner

from adapter.cli import app
from adapter.synth import SynthConfig, SynthError, catalog, generate
from adapter.synth.calendar import WorkingDays, mondays
from adapter.synth.generator import _split
from adapter.synth.people import PersonFactory, UnitStaff, luhn_digit
from adapter.synth.risk import RISK_THRESHOLD, RiskModel
from adapter.synth.story import ListedPatient, Region, _StoryBuilder


def test_luhn_digit_matches_worked_examples() -> None:
    # By hand: weights 2,1,2,...; 3·2 + 1 + 0 + 2 + 1·2 + 4 + (9·2 → 1+8) + 8 + 2·2 = 36 → 4.
    assert luhn_digit("310214982") == "4"  # 310214-9824
    assert luhn_digit("811218987") == "6"  # 811218-9876 (Skatteverket's example, fictional)


def test_mondays_of_2024_are_53_and_start_on_the_first_monday() -> None:
    runs = mondays(date(2024, 1, 1), date(2024, 12, 31))
    assert (len(runs), runs[0], runs[-1]) == (53, date(2024, 1, 1), date(2024, 12, 30))
    assert mondays(date(2024, 1, 2), date(2024, 1, 14)) == [date(2024, 1, 8)]


@pytest.mark.parametrize(
    ("day", "n", "expected"),
    [
        (date(2024, 12, 20), 3, date(2024, 12, 30)),  # julafton, juldagen, annandag jul
        (date(2024, 6, 19), 1, date(2024, 6, 20)),
        (date(2024, 6, 20), 1, date(2024, 6, 24)),  # midsommarafton
        (date(2024, 3, 28), 1, date(2024, 4, 2)),  # långfredag, annandag påsk
        (date(2024, 12, 30), 1, date(2025, 1, 2)),  # nyårsafton, nyårsdagen
        (date(2024, 12, 24), 0, date(2024, 12, 27)),  # 0 moves a day off to the next working day
        (date(2024, 5, 8), 0, date(2024, 5, 8)),
    ],
)
def test_working_days_skip_weekends_holidays_and_eves(day: date, n: int, expected: date) -> None:
    assert WorkingDays().add(day, n) == expected


def test_awkward_days_are_the_weekday_holidays_and_the_day_before() -> None:
    days = WorkingDays().awkward_days(date(2024, 12, 1), date(2024, 12, 31))
    assert days == [date(2024, 12, d) for d in (23, 24, 25, 26, 30, 31)]


def test_person_factory_gives_distinct_valid_people() -> None:
    factory = PersonFactory(random.Random(5), date(2024, 12, 31))
    people = [factory.make() for _ in range(3000)]
    assert len({p.digits for p in people}) == 3000
    for p in people:
        assert luhn_digit(p.digits[2:11]) == p.digits[11]
        assert int(p.digits[10]) % 2 == (p.sex == "M")  # odd birth number: man
    assert people[0].written() == f"{people[0].digits[:8]}-{people[0].digits[8:]}"
    assert people[0].listed_name == f"{people[0].family}, {people[0].given}"


@pytest.mark.parametrize("target", [0.02, 0.1])
def test_risk_model_meets_other_targets(target: float) -> None:
    rng = random.Random(2)
    model = RiskModel(target, 10.0)
    factory = PersonFactory(rng, date(2024, 12, 31))
    weeks, patients, in_group = 26, 3000, 0
    for _ in range(patients):
        person = factory.make()
        trajectory = model.trajectory(rng, 2024 - person.birth.year, weeks)
        in_group += len(trajectory.in_group)
        assert all(r >= 10.0 for _, r in trajectory.listed)
        assert [k for k, r in trajectory.listed if r >= RISK_THRESHOLD] == trajectory.in_group
    assert in_group / (weeks * patients) == pytest.approx(target, rel=0.2)


def test_story_registers_one_event_a_day_and_nothing_after_the_end() -> None:
    rng = random.Random(1)
    end = date(2024, 12, 31)
    region = Region(date(2024, 1, 1), end, mondays(date(2024, 1, 1), end))
    staff = UnitStaff.make(rng, catalog.UNITS[0])
    patient = ListedPatient(PersonFactory(rng, end).make(), staff, None, 80)
    builder = _StoryBuilder(rng, region, patient)
    builder.event(date(2024, 5, 6), "SIPKALL", "telefon", None)
    builder.event(date(2024, 5, 6), "SIPKALL", None, None)  # the same call, from another notice
    builder.event(date(2024, 5, 6), "AU124", "besök", "lifecare:SIP-1")
    builder.event(date(2025, 1, 2), "AW010", "besök", "lifecare:SIP-1")
    assert [(e.code, e.contact) for e in builder.story.events] == [
        ("SIPKALL", "telefon"),
        ("AU124", "besök"),
    ]


def test_split_shares_patients_by_weight_and_loses_none() -> None:
    assert _split(10, [1.0, 1.0, 2.0]) == [3, 2, 5]
    assert sum(_split(9_999, [0.5, 1.4, 1.0, 0.9])) == 9_999


def test_default_period_is_the_year_up_to_end() -> None:
    assert SynthConfig(patients=1).first_day == date(2024, 1, 1)
    assert SynthConfig(patients=1, end=date(2024, 2, 29)).first_day == date(2023, 3, 1)
    assert SynthConfig(patients=1, start=date(2024, 5, 1)).first_day == date(2024, 5, 1)


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        ({"patients": 0}, "--patients"),
        ({"units": 15}, "--units"),
        ({"start": date(2025, 1, 1)}, "--start"),
        ({"start": date(2024, 12, 31)}, "ingen måndag"),
        ({"start": date(2015, 1, 1)}, "för lång"),
        ({"risk_share": 0.6}, "--risk-share"),
        ({"min_listed": 20.0}, "--min-risk"),
    ],
)
def test_bad_configuration_is_refused_in_swedish(
    tmp_path: Path, changes: dict[str, object], fragment: str
) -> None:
    config = SynthConfig(**{"patients": 10, **changes})  # type: ignore[arg-type]
    with pytest.raises(SynthError, match=fragment):
        generate(config, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_cli_writes_the_files_and_reports(tmp_path: Path) -> None:
    out = tmp_path / "region"
    args = ["synth", "--patients", "500", "--out", str(out), "--units", "3", "--seed", "4"]
    result = CliRunner().invoke(app, [*args, "--start", "2024-10-01", "--end", "2024-12-31"])
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in out.iterdir())
    assert names[:3] == ["discharges.csv", "events.csv", "plans.jsonl"]
    assert len([n for n in names if n.startswith("prea60-2024-")]) == 13  # Diver's file per run
    assert "Riskgrupp (≥ 15 %) i senaste körningen" in result.output
    assert "500 vid 3 enheter" in result.output


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--end", "2024-13-01"], "ogiltigt datum"),
        (["--units", "99"], "--units måste vara mellan 1 och 14"),
    ],
)
def test_cli_refuses_bad_arguments(tmp_path: Path, extra: list[str], message: str) -> None:
    args = ["synth", "--patients", "5", "--out", str(tmp_path / "x"), *extra]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2
    assert message in result.output
