"""A scheduled job never runs in two processes at the same time (adapter/scheduler.py, run_job):
on the shared database each run holds the job's own advisory lock from start to end."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapter import scheduler
from adapter.scheduler import AdvisoryLock, job_lock_key, run_job
from adapter.settings import Settings
from tests.support import scheduler_jobs
from tests.support.scheduler_jobs import PROBE, firing_at, soon


def test_a_run_finding_the_job_running_elsewhere_is_skipped(
    tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings(data_dir=tmp_path, database_url=database_url)
    monkeypatch.setattr(scheduler, "get_settings", lambda: settings)
    monkeypatch.setattr(scheduler, "JOBS", (firing_at(soon(settings, 60), times=1),))
    scheduler_jobs.RUNS.clear()
    elsewhere = AdvisoryLock(database_url, key=job_lock_key(PROBE))  # another process's run
    assert elsewhere.acquire()
    try:
        run_job(PROBE)
        assert scheduler_jobs.RUNS == []
    finally:
        elsewhere.release()
    run_job(PROBE)  # that run over: this one runs, and frees the lock when done
    run_job(PROBE)
    assert len(scheduler_jobs.RUNS) == 2
    scheduler_jobs.RUNS.clear()


def test_jobs_have_distinct_lock_keys_apart_from_the_leader_lock() -> None:
    keys = {job_lock_key(job.id) for job in scheduler.JOBS}
    assert len(keys) == len(scheduler.JOBS) and scheduler.LEADER_LOCK not in keys
    assert all(-(2**63) <= key < 2**63 for key in keys)
