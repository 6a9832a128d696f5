"""The weekly indicator snapshot in the scheduler: Mondays 07:00 Swedish time, the week that
ended yesterday, every listing unit."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from adapter import scheduler
from adapter.indicators import store
from adapter.indicators.trend import snapshot_period
from adapter.scheduler import INDICATOR_SNAPSHOT, build_scheduler
from adapter.settings import REPO_ROOT, Settings

STOCKHOLM = ZoneInfo("Europe/Stockholm")


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        _env_file=None,
        data_dir=tmp_path,
        mappings_dir=REPO_ROOT / "mappings",
        base_url="http://localhost:1/fhir",
    )


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        ("2024-12-15T12:00", "2024-12-16T07:00+01:00"),  # Sunday → Monday morning
        ("2024-12-16T07:01", "2024-12-23T07:00+01:00"),  # just missed: next week
        ("2025-03-29T12:00", "2025-03-31T07:00+02:00"),  # over the switch to summer time
    ],
)
def test_the_snapshot_runs_monday_morning_swedish_time(
    settings: Settings, now: str, expected: str
) -> None:
    job = build_scheduler(settings).get_job(INDICATOR_SNAPSHOT)
    assert (job.func, job.args) == (scheduler.run_job, (INDICATOR_SNAPSHOT,))
    assert scheduler.job_function(INDICATOR_SNAPSHOT) is scheduler.indicator_snapshot
    start = datetime.fromisoformat(now).replace(tzinfo=STOCKHOLM)
    assert job.trigger.get_next_fire_time(None, start) == datetime.fromisoformat(expected)


def test_the_job_stores_last_week_for_every_unit(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[dict[str, Any]] = []

    def fake_snapshot(client: Any, units: Any, as_of: date, **kwargs: Any) -> list:
        calls.append({"base": client.base_url, "units": units, "as_of": as_of, **kwargs})
        return []

    monkeypatch.setattr(store, "store_snapshot", fake_snapshot)
    store.weekly_snapshot(settings, today=date(2024, 12, 16))  # a Monday
    (call,) = calls
    assert (call["base"], call["units"], call["as_of"]) == (
        "http://localhost:1/fhir",
        None,
        date(2024, 12, 15),
    )
    assert snapshot_period(call["as_of"]).start == date(2024, 12, 9)  # Monday to Sunday
    assert call["rules"].params.risk_group.threshold_percent == 15
