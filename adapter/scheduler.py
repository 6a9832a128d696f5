"""The scheduler: the follow-up scans on a clock (APScheduler 3, in the rules' time zone,
Europe/Stockholm). The follow-up jobs call what `sip-fhir followups` calls (FollowupService.run):

- full scan, Mondays 06:00: every unit of the region — new Tasks, due/overdue, completions and
  cancellations. Weekly is enough for the rules that look ahead: a follow-up Task opens
  follow_up.due_soon_days (14) before it falls due, a week before the scan can be late.
- due check, every day 05:30: the quick scope (patients with open Tasks, and discharge notices of
  the last month) — due → overdue, a Task closed once its record is there, a SIP call for a
  notice that the subscription missed. On a server without subscriptions this is what keeps
  the 3-working-day SIP call visible within a day.
- indicator snapshot, Mondays 07:00 (after the full scan): every unit's indicators for the week
  that ended yesterday, stored as MeasureReports for the trend (`sip-fhir indicators --trend`).

The job store is SQLAlchemy on SQLite (<data_dir>/scheduler.sqlite): a run missed while the
process was down runs once when it is back (within MISFIRE_GRACE), never twice.

Run exactly ONE scheduler. Two would scan the same patients at the same time: the writes stay
correct (a new Task is a conditional update on its identifier, a change is If-Match on the version
read), but the second scan's writes collide (409), re-read and retry, doubling the load on the
FHIR server for nothing. So:
- one API process: SIP_FHIR_SCHEDULER=on (the default) runs it inside the API
  (`scheduler_service`, a lifespan hook of adapter.api.create_app);
- the API scaled out (replicas, or uvicorn --workers): SIP_FHIR_SCHEDULER=off everywhere and one
  `sip-fhir scheduler run` as its own service — or on in exactly one replica.
A file lock (<data_dir>/scheduler.lock) keeps a second scheduler on the same data directory off
(it logs and does not start); on other hosts only the setting can.
"""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any
from zoneinfo import ZoneInfo

from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.cron import CronTrigger
from fastapi import FastAPI

from adapter.followup.params import load_rule_params
from adapter.followup.reconcile import FollowupReport
from adapter.followup.service import FollowupService
from adapter.indicators.store import weekly_snapshot
from adapter.logs import get_logger
from adapter.settings import Settings, get_settings

FULL_SCAN = "followups-full-scan"
DUE_CHECK = "followups-due-check"
INDICATOR_SNAPSHOT = "indicators-weekly-snapshot"
MISFIRE_GRACE = 12 * 3600  # seconds: a scan missed at night still runs in the morning
JOB_STORE = "scheduler.sqlite"
LOCK_FILE = "scheduler.lock"

_log = get_logger("adapter.scheduler")


@dataclass(frozen=True, slots=True)
class JobSpec:
    id: str
    func: str  # "module:function": the persistent store keeps a reference, not the code
    cron: dict[str, Any]
    name: str


JOBS = (
    JobSpec(
        FULL_SCAN,
        "adapter.scheduler:full_scan",
        {"day_of_week": "mon", "hour": 6, "minute": 0},
        "Uppföljning: full genomgång av regionen",
    ),
    JobSpec(
        DUE_CHECK,
        "adapter.scheduler:due_check",
        {"hour": 5, "minute": 30},
        "Uppföljning: förfallokontroll (öppna uppgifter, nya utskrivningsmeddelanden)",
    ),
    JobSpec(
        INDICATOR_SNAPSHOT,
        "adapter.scheduler:indicator_snapshot",
        {"day_of_week": "mon", "hour": 7, "minute": 0},
        "Indikatorer: veckans ögonblicksbild (MeasureReport per enhet, veckan som slutade i går)",
    ),
)


def _log_report(job: str, report: FollowupReport) -> None:
    _log.info(
        "scheduled followups",
        job=job,
        patients=report.patients,
        changes=report.changes,
        open_tasks=len(report.open_tasks),
        errors=len(report.errors),
        seconds=round(report.load_seconds + report.write_seconds, 1),
        cancelled=[c.describe() for c in report.cancelled],
    )
    if report.held:  # over the cap: a person confirms with `sip-fhir followups --confirm-...`
        _log.warning(
            "scheduled followups held cancellations",
            job=job,
            held=len(report.held),
            max_cancellations=report.max_cancellations,
        )


def full_scan() -> None:
    """The Monday job."""
    _log_report(FULL_SCAN, FollowupService(get_settings()).run())


def due_check() -> None:
    """The daily job."""
    _log_report(DUE_CHECK, FollowupService(get_settings()).run(quick=True))


def indicator_snapshot() -> None:
    """The Monday job after the full scan: every unit's indicators for the week that ended
    yesterday, stored for the trend (adapter.indicators.store.weekly_snapshot)."""
    weekly_snapshot(get_settings())


def time_zone(settings: Settings) -> ZoneInfo:
    """The rules' calendar time zone (mappings/rules.json): the jobs keep Swedish time."""
    return ZoneInfo(load_rule_params(settings.mappings_dir / "rules.json").calendar.timezone)


def build_scheduler(settings: Settings, *, blocking: bool = False) -> BaseScheduler:
    """A scheduler with the follow-up jobs in its persistent store (not started)."""
    zone = time_zone(settings)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    store = SQLAlchemyJobStore(url=f"sqlite:///{settings.data_dir / JOB_STORE}")
    kind = BlockingScheduler if blocking else BackgroundScheduler
    scheduler: BaseScheduler = kind(
        jobstores={"default": store},
        timezone=zone,
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": MISFIRE_GRACE},
    )
    for job in JOBS:
        scheduler.add_job(
            job.func,
            CronTrigger(timezone=zone, **job.cron),
            id=job.id,
            name=job.name,
            replace_existing=True,  # the schedule in the code wins over the stored one
        )
    return scheduler


class SchedulerLock:
    """An exclusive lock on <data_dir>/scheduler.lock, held while a scheduler runs."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / LOCK_FILE
        self._file: IO[str] | None = None

    def acquire(self) -> bool:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = self.path.open("a")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            return False
        self._file = handle
        return True

    def release(self) -> None:
        if self._file is not None:
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None


@dataclass
class RunningScheduler:
    scheduler: BaseScheduler
    lock: SchedulerLock

    def stop(self) -> None:
        try:
            self.scheduler.shutdown(wait=False)
        finally:
            self.lock.release()


def start_scheduler(settings: Settings) -> RunningScheduler | None:
    """Start the follow-up jobs in the background, unless SIP_FHIR_SCHEDULER=off or another
    scheduler holds the lock on the data directory (then None, and a log line says why)."""
    if not settings.scheduler:
        _log.info("scheduler off (SIP_FHIR_SCHEDULER=off)")
        return None
    lock = SchedulerLock(settings.data_dir)
    if not lock.acquire():
        _log.warning("scheduler not started: another one runs", lock=str(lock.path))
        return None
    try:
        scheduler = build_scheduler(settings)
        scheduler.start()
    except Exception:
        lock.release()
        raise
    _log.info("scheduler started", jobs=[j.id for j in JOBS])
    return RunningScheduler(scheduler, lock)


@contextmanager
def scheduler_service(app: FastAPI) -> Iterator[RunningScheduler | None]:
    """A lifespan hook (adapter.api.create_app(hooks=...)): the scheduler lives with the API."""
    running = start_scheduler(app.state.settings)
    try:
        yield running
    finally:
        if running is not None:
            running.stop()


def run_blocking(settings: Settings) -> None:
    """`sip-fhir scheduler run`: the scheduler as its own process, until stopped.

    RuntimeError (Swedish) if another scheduler holds the lock.
    """
    lock = SchedulerLock(settings.data_dir)
    if not lock.acquire():
        raise RuntimeError(f"En annan schemaläggare körs redan ({lock.path} är låst)")
    try:
        scheduler = build_scheduler(settings, blocking=True)
        _log.info("scheduler running", jobs=[j.id for j in JOBS])
        scheduler.start()  # blocks until shutdown (SIGINT/SIGTERM end the process)
    finally:
        lock.release()
