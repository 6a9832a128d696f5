"""The scheduler (adapter/scheduler.py): Swedish-time triggers, the persistent job store, one
scheduler per data directory, the API lifespan hook, and the jobs calling the followups run."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from adapter import scheduler
from adapter.api import create_app
from adapter.cli import app
from adapter.followup.reconcile import FollowupReport
from adapter.followup.service import FollowupService
from adapter.scheduler import (
    DUE_CHECK,
    FULL_SCAN,
    INDICATOR_SNAPSHOT,
    JOB_STORE,
    SchedulerLock,
    build_scheduler,
    run_blocking,
    scheduler_service,
    start_scheduler,
)
from adapter.settings import Settings, get_settings

STOCKHOLM = ZoneInfo("Europe/Stockholm")


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data")


def stored_job_ids(settings: Settings) -> list[str]:
    with sqlite3.connect(settings.data_dir / JOB_STORE) as db:
        return sorted(row[0] for row in db.execute("select id from apscheduler_jobs"))


@pytest.mark.parametrize(
    ("now", "job", "expected"),
    [
        # A Sunday: the full scan on Monday morning, the due check the same morning.
        ("2024-12-15T12:00", FULL_SCAN, "2024-12-16T06:00+01:00"),
        ("2024-12-15T12:00", DUE_CHECK, "2024-12-16T05:30+01:00"),
        ("2024-12-16T06:00", FULL_SCAN, "2024-12-16T06:00+01:00"),
        ("2024-12-16T06:01", FULL_SCAN, "2024-12-23T06:00+01:00"),
        # Summer time starts on Sunday 2025-03-30: still 06:00 and 05:30 on the clock in Sweden.
        ("2025-03-29T12:00", DUE_CHECK, "2025-03-30T05:30+02:00"),
        ("2025-03-29T12:00", FULL_SCAN, "2025-03-31T06:00+02:00"),
        ("2025-10-25T12:00", DUE_CHECK, "2025-10-26T05:30+01:00"),
    ],
)
def test_jobs_keep_swedish_time(settings: Settings, now: str, job: str, expected: str) -> None:
    built = build_scheduler(settings)
    trigger = built.get_job(job).trigger
    moment = datetime.fromisoformat(now).replace(tzinfo=STOCKHOLM)
    fire = trigger.get_next_fire_time(None, moment)
    assert fire == datetime.fromisoformat(expected)
    assert fire.utcoffset() == datetime.fromisoformat(expected).utcoffset()


def test_the_job_store_persists_the_jobs_once(settings: Settings) -> None:
    for _ in range(2):  # a restart replaces the stored jobs, never adds to them
        running = start_scheduler(settings)
        assert running is not None
        jobs = {job.id: job for job in running.scheduler.get_jobs()}
        assert set(jobs) == {FULL_SCAN, DUE_CHECK, INDICATOR_SNAPSHOT}
        assert jobs[FULL_SCAN].next_run_time.weekday() == 0
        assert (jobs[FULL_SCAN].coalesce, jobs[FULL_SCAN].max_instances) == (True, 1)
        assert jobs[DUE_CHECK].misfire_grace_time == timedelta(hours=12).total_seconds()
        running.stop()
    assert stored_job_ids(settings) == sorted([DUE_CHECK, FULL_SCAN, INDICATOR_SNAPSHOT])


def test_off_means_no_scheduler(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, scheduler=False)
    assert start_scheduler(settings) is None
    assert not (tmp_path / JOB_STORE).exists()


@pytest.mark.parametrize("value", ["off", "false", "0"])
def test_the_environment_turns_it_off(value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIP_FHIR_SCHEDULER", value)
    assert Settings().scheduler is False


def test_a_second_scheduler_on_the_same_data_directory_stays_off(settings: Settings) -> None:
    first = start_scheduler(settings)
    assert first is not None
    try:
        assert start_scheduler(settings) is None
        with pytest.raises(RuntimeError, match="låst"):
            run_blocking(settings)
    finally:
        first.stop()
    again = start_scheduler(settings)
    assert again is not None
    again.stop()


def test_the_api_lifespan_starts_and_stops_it(settings: Settings) -> None:
    api = create_app(settings, hooks=[scheduler_service], readiness_checks={})
    probe = SchedulerLock(settings.data_dir)
    with TestClient(api) as client:
        assert client.get("/healthz").status_code == 200
        assert not probe.acquire()  # the app's scheduler holds the lock
    assert probe.acquire()  # released at shutdown
    probe.release()


def test_the_jobs_run_the_same_reconciliation_as_the_command(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[dict[str, Any]] = []

    def run(self: FollowupService, **kwargs: Any) -> FollowupReport:
        calls.append(kwargs)
        return FollowupReport(datetime.now(STOCKHOLM).date(), dry_run=False)

    monkeypatch.setattr(FollowupService, "run", run)
    monkeypatch.setattr(scheduler, "get_settings", lambda: settings)
    scheduler.full_scan()
    scheduler.due_check()
    assert calls == [{}, {"quick": True}]


def test_stored_jobs_run_the_job_functions_through_their_guard(settings: Settings) -> None:
    built = build_scheduler(settings)
    for job_id, function in ((FULL_SCAN, scheduler.full_scan), (DUE_CHECK, scheduler.due_check)):
        job = built.get_job(job_id)
        assert (job.func, job.args) == (scheduler.run_job, (job_id,))
        assert scheduler.job_function(job_id) is function


def test_cli_lists_the_jobs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIP_FHIR_DATA_DIR", str(tmp_path))
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["scheduler", "jobs"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    assert FULL_SCAN in result.output and DUE_CHECK in result.output
    assert "Europe/Stockholm" in result.output
