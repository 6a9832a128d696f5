"""A run that fell due while no scheduler ran (a restart, a leader's takeover) runs once when a
scheduler is back, never twice and never not at all (adapter/scheduler.py, `_stored_next_run`)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from adapter import scheduler
from adapter.scheduler import (
    AdvisoryLock,
    LeaderElection,
    RunningScheduler,
    start_scheduler,
)
from adapter.settings import Settings
from tests.support import scheduler_jobs
from tests.support.scheduler_jobs import PROBE, firing_at, runs_after, soon


@pytest.fixture(autouse=True)
def _no_runs() -> Iterator[None]:
    scheduler_jobs.RUNS.clear()
    yield
    scheduler_jobs.RUNS.clear()


def wait_until(moment: datetime) -> None:
    time.sleep(max(0.0, (moment - datetime.now(moment.tzinfo)).total_seconds()))


def test_a_run_missed_while_down_runs_once_after_a_restart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings(data_dir=tmp_path)
    monkeypatch.setattr(scheduler, "get_settings", lambda: settings)
    first = soon(settings, 3)
    monkeypatch.setattr(scheduler, "JOBS", (firing_at(first, times=2),))

    running = start_scheduler(settings)
    assert isinstance(running, RunningScheduler)
    assert running.scheduler.get_job(PROBE).next_run_time == first
    running.stop()  # down while both runs fall due
    wait_until(first + timedelta(seconds=2))
    assert scheduler_jobs.RUNS == []

    back = start_scheduler(settings)
    assert back is not None
    try:
        assert runs_after(2.0) == 1  # the two missed runs, coalesced into one
    finally:
        back.stop()

    again = start_scheduler(settings)  # a second restart does not run it again
    assert again is not None
    try:
        assert runs_after(1.5) == 1
    finally:
        again.stop()


@pytest.mark.timeout(120)
def test_a_run_missed_during_a_leader_takeover_runs_once_in_the_new_leader(
    tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings(data_dir=tmp_path, database_url=database_url)
    monkeypatch.setattr(scheduler, "get_settings", lambda: settings)
    retry = 3.0  # the follower's next try comes after the run fell due
    leader = LeaderElection(settings, AdvisoryLock(database_url), retry_seconds=retry)
    follower = LeaderElection(settings, AdvisoryLock(database_url), retry_seconds=retry)
    first = soon(settings, 2)
    monkeypatch.setattr(scheduler, "JOBS", (firing_at(first, times=1),))
    try:
        leader.start()
        deadline = time.monotonic() + 10
        while not leader.leader and time.monotonic() < deadline:
            time.sleep(0.05)
        assert leader.leader
        follower.start()
        time.sleep(0.3)
        assert not follower.leader
        leader.stop()  # the leader is gone before the run, the follower not yet leader
        wait_until(first + timedelta(seconds=1))
        assert not follower.leader and scheduler_jobs.RUNS == []
        assert runs_after(retry + 1.5) == 1
        assert follower.leader
        assert runs_after(1.0) == 1
    finally:
        follower.stop()
        leader.stop()
