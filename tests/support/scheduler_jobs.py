"""In-process scheduler test jobs (adapter/scheduler.py): a job spec that fires at chosen
moments, and a job that records each of its runs in this process."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta

from adapter import scheduler
from adapter.settings import Settings

PROBE = "test-probe"
RUNS: list[float] = []  # monotonic time of every run of `remember` in this process
_LOCK = threading.Lock()


def remember() -> None:
    with _LOCK:
        RUNS.append(time.monotonic())


def firing_at(first: datetime, times: int) -> scheduler.JobSpec:
    """A job that fires `times` times, a second apart, from `first` (then never again)."""
    last = first + timedelta(seconds=times - 1)
    cron = {"second": "*", "start_date": first, "end_date": last}
    return scheduler.JobSpec(PROBE, "tests.support.scheduler_jobs:remember", cron, "Testjobb")


def runs_after(seconds: float) -> int:
    """How many runs there are once `seconds` have passed (a bounded wait, no busy loop)."""
    time.sleep(seconds)
    with _LOCK:
        return len(RUNS)


def soon(settings: Settings, seconds: int) -> datetime:
    """A whole second `seconds` from now, in the scheduler's time zone."""
    now = datetime.now(scheduler.time_zone(settings)).replace(microsecond=0)
    return now + timedelta(seconds=seconds)
