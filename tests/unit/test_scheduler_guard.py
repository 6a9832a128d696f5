"""A scheduled job never runs in two processes at the same time, and a fire time runs once
(adapter/scheduler.py run_job, adapter/scheduler_runs.py): on the shared database each run holds
the job's own advisory lock from start to end; a second run for the same fire time (a scheduler
that read the job store before the first moved it on) is skipped, on SQLite too."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

import pytest
from pydantic import SecretStr

from adapter import scheduler
from adapter.scheduler import AdvisoryLock, job_lock_key, run_job
from adapter.settings import Settings
from tests.support import scheduler_jobs
from tests.support.scheduler_jobs import PROBE, firing_at, soon


def start_of_a_second() -> None:
    """Just after a whole second: the next calls fall in one second (one fire time)."""
    time.sleep(1.05 - time.time() % 1.0)


@pytest.fixture
def every_second(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Settings:
    settings = Settings(data_dir=tmp_path)
    monkeypatch.setattr(scheduler, "get_settings", lambda: settings)
    since = soon(settings, 0) - timedelta(minutes=1)
    monkeypatch.setattr(scheduler, "JOBS", (firing_at(since, times=3600),))
    scheduler_jobs.RUNS.clear()
    return settings


def test_a_run_finding_the_job_running_elsewhere_is_skipped(
    every_second: Settings, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    shared = every_second.model_copy(update={"database_url": SecretStr(database_url)})
    monkeypatch.setattr(scheduler, "get_settings", lambda: shared)
    elsewhere = AdvisoryLock(database_url, key=job_lock_key(PROBE))  # another process's run
    assert elsewhere.acquire()
    try:
        run_job(PROBE)
        assert scheduler_jobs.RUNS == []
    finally:
        elsewhere.release()
    start_of_a_second()
    run_job(PROBE)  # that run over: this one runs, and frees the lock when done
    run_job(PROBE)  # another scheduler's run for the same fire time
    assert len(scheduler_jobs.RUNS) == 1
    start_of_a_second()
    run_job(PROBE)  # the next fire time
    assert len(scheduler_jobs.RUNS) == 2


def test_a_fire_time_runs_once_on_sqlite_too(every_second: Settings) -> None:
    start_of_a_second()
    run_job(PROBE)
    run_job(PROBE)
    assert len(scheduler_jobs.RUNS) == 1
    start_of_a_second()
    run_job(PROBE)
    assert len(scheduler_jobs.RUNS) == 2


def test_jobs_have_distinct_lock_keys_apart_from_the_leader_lock() -> None:
    keys = {job_lock_key(job.id) for job in scheduler.JOBS}
    assert len(keys) == len(scheduler.JOBS) and scheduler.LEADER_LOCK not in keys
    assert all(-(2**63) <= key < 2**63 for key in keys)
