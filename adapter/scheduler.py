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

The job store is SQLAlchemy where the adapter keeps its state (adapter/database.py): the shared
database when SIP_FHIR_DATABASE_URL is set, else <data_dir>/scheduler.sqlite.

Only one scheduler may run the jobs. Two would scan the same patients at the same time: the writes
stay correct (a new Task is a conditional update on its identifier, a change is If-Match on the
version read), but the second scan's writes collide (409), re-read and retry, doubling the load
on the FHIR server for nothing. So:
- on the shared database (PostgreSQL) every `serve` (with SIP_FHIR_SCHEDULER=on) and every
  `sip-fhir scheduler run` takes part in an election: the one holding a session-level advisory
  lock, on a connection of its own, is the leader and runs the jobs; the others are followers
  and try again every SIP_FHIR_SCHEDULER_RETRY_SECONDS. A leader that dies (even kill -9) loses
  its connection and with it the lock, so a follower takes over within about that time; a leader
  whose lock connection is lost steps down at once (it watches the connection), and each job
  run holds the job's own lock, so a run still going in the old leader is never overlapped by
  the new leader's (run_job). A run missed during the takeover runs once in the new leader
  (_stored_next_run). The metric
  `sip_fhir_scheduler_leader` is 1 in the leader, 0 in a follower.
- on SQLite (one machine) a file lock (<data_dir>/scheduler.lock) keeps a second scheduler on
  the same data directory off (it logs and does not start; it does not take over later), and on
  other hosts only the setting can: SIP_FHIR_SCHEDULER=on in exactly one process, or off
  everywhere and one `sip-fhir scheduler run` as its own service.
"""

from __future__ import annotations

import fcntl
import hashlib
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from select import select as wait_readable
from typing import IO, Any, Protocol
from zoneinfo import ZoneInfo

from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.util import ref_to_obj
from fastapi import FastAPI
from sqlalchemy import Connection, create_engine, func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

from adapter.database import is_postgres, state_url
from adapter.followup.params import RULES_FILE, load_rule_params
from adapter.followup.reconcile import FollowupReport
from adapter.followup.service import FollowupService
from adapter.indicators.store import weekly_snapshot
from adapter.logs import get_logger
from adapter.metrics import set_scheduler_leader
from adapter.scheduler_runs import claim_run
from adapter.settings import Settings, get_settings

FULL_SCAN = "followups-full-scan"
DUE_CHECK = "followups-due-check"
INDICATOR_SNAPSHOT = "indicators-weekly-snapshot"
MISFIRE_GRACE = 12 * 3600  # seconds: a scan missed at night still runs in the morning
JOB_STORE = "scheduler.sqlite"
LOCK_FILE = "scheduler.lock"
LEADER_LOCK = 0x5F1F_5C4E  # the advisory lock's key: any fixed number, the same in every process
GUARDED_RUN = "adapter.scheduler:run_job"  # what the store calls: every job through its guard

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


def job_function(job_id: str) -> Any:
    """The function of the job `job_id` of JOBS."""
    return ref_to_obj(next(job.func for job in JOBS if job.id == job_id))


def job_lock_key(job_id: str) -> int:
    """The job's own advisory lock key (a signed 64-bit number from its id)."""
    return int.from_bytes(
        hashlib.sha256(f"sip-fhir job {job_id}".encode()).digest()[:8], signed=True
    )


def run_job(job_id: str) -> None:
    """What the scheduler runs: the job `job_id`, never in two processes at the same time.

    On the shared database the run holds the job's own advisory lock, on a connection of its
    own, from start to end. A leader that lost its election lock mid-run (its connection
    dropped) still holds this one until its run ends, so a new leader's run of the same job
    waits for nothing: it finds the lock taken and is skipped (a log line says so), and the
    next trigger runs as usual. On SQLite one scheduler runs per data directory (the file lock)
    and a job never twice in it (max_instances=1). Either way a fire time runs once: a second
    run for it (a scheduler that read the job store before the first moved it on) is skipped.
    """
    settings = get_settings()
    url = state_url(settings, JOB_STORE)
    if not is_postgres(url):
        _run_once(settings, url, job_id)
        return
    lock = AdvisoryLock(url, key=job_lock_key(job_id))
    try:
        if not lock.acquire():
            _log.warning("scheduled job runs in another process; this run skipped", job=job_id)
            return
        _run_once(settings, url, job_id)
    finally:
        lock.release()


def _run_once(settings: Settings, url: str, job_id: str) -> None:
    """The job, unless a run for its latest fire time has started already (scheduler_runs)."""
    zone = time_zone(settings)
    spec = next(job for job in JOBS if job.id == job_id)
    if not claim_run(url, job_id, job_trigger(spec, zone), datetime.now(zone)):
        _log.warning("scheduled job already run for this time; this run skipped", job=job_id)
        return
    job_function(job_id)()


def job_trigger(job: JobSpec, zone: ZoneInfo) -> CronTrigger:
    return CronTrigger(timezone=zone, **job.cron)


def time_zone(settings: Settings) -> ZoneInfo:
    """The rules' calendar time zone (mappings/rules.json): the jobs keep Swedish time."""
    return ZoneInfo(load_rule_params(settings.mappings_dir / RULES_FILE).calendar.timezone)


def build_scheduler(settings: Settings, *, blocking: bool = False) -> BaseScheduler:
    """A scheduler with the follow-up jobs in its persistent store (not started)."""
    zone = time_zone(settings)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    store = SQLAlchemyJobStore(url=state_url(settings, JOB_STORE))
    kind = BlockingScheduler if blocking else BackgroundScheduler
    scheduler: BaseScheduler = kind(
        jobstores={"default": store},
        timezone=zone,
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": MISFIRE_GRACE},
    )
    store.start(scheduler, "default")  # creates the table; the scheduler's start repeats it
    for job in JOBS:
        trigger = job_trigger(job, zone)
        kept = _stored_next_run(store, job.id, trigger)
        scheduler.add_job(
            GUARDED_RUN,
            trigger,
            args=(job.id,),
            id=job.id,
            name=job.name,
            replace_existing=True,  # the schedule in the code wins over the stored one
            **({} if kept is None else {"next_run_time": kept}),
        )
    return scheduler


def _stored_next_run(
    store: SQLAlchemyJobStore, job_id: str, trigger: CronTrigger
) -> datetime | None:
    """The stored job's next run time when its schedule is the code's (None otherwise: computed
    from now). A run that fell due while no scheduler ran (a restart, a leader's takeover) is
    still stored as the next one: kept, the scheduler runs it once on start (coalesce, within
    MISFIRE_GRACE); recomputed from now, it would be skipped."""
    try:
        stored = store.lookup_job(job_id)
    except Exception as error:  # a job stored by other code (moved function, old pickle)
        _log.warning("stored scheduler job unreadable; rescheduled", job=job_id, error=str(error))
        return None
    if stored is None or repr(stored.trigger) != repr(trigger):
        return None
    kept: datetime | None = stored.next_run_time
    return kept


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


KEEPALIVE = 30  # seconds until a silent peer of the leader's lock connection counts as dead
_CLIENT_KEEPALIVE = {
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 5,
    "keepalives_count": 4,
}
_SERVER_KEEPALIVE = {
    "tcp_keepalives_idle": "10",
    "tcp_keepalives_interval": "5",
    "tcp_keepalives_count": "4",
    "tcp_user_timeout": str(KEEPALIVE * 1000),
}


class AdvisoryLock:
    """The leader's PostgreSQL advisory lock (session level), held on a connection of its own
    outside any pool: the lock lives exactly as long as that connection, so a process that dies
    in any way releases it, and closing the connection can never hand a held lock back to a pool.
    """

    def __init__(self, url: str, *, key: int = LEADER_LOCK) -> None:
        self.key = key
        # Keepalives both ways: a leader host that vanishes (power, network) is noticed by the
        # server within about KEEPALIVE seconds, which ends its session and frees the lock; the
        # leader notices a dead link as fast instead of waiting on TCP's two hours.
        self._engine = create_engine(url, poolclass=NullPool, connect_args=_CLIENT_KEEPALIVE)
        self._connection: Connection | None = None

    def acquire(self) -> bool:
        connection = self._engine.connect()
        try:
            for name, value in _SERVER_KEEPALIVE.items():
                connection.execute(select(func.set_config(name, value, False)))
            got = bool(connection.execute(select(func.pg_try_advisory_lock(self.key))).scalar())
            connection.commit()  # the lock outlives the transaction; idle, not idle in one
        except BaseException:
            connection.close()
            raise
        if not got:
            connection.close()
            return False
        self._connection = connection
        return True

    def held(self) -> bool:
        """Whether the lock is still ours: its connection still answers."""
        if self._connection is None:
            return False
        try:
            self._connection.execute(select(1))
            self._connection.commit()
        except SQLAlchemyError:
            self._close()
            return False
        return True

    def watch(self, seconds: float) -> bool:
        """Wait up to `seconds` for the server to say something on the lock's connection; True
        if it did. An idle session hears nothing until the server ends it (pg_terminate_backend,
        shutdown, a lost link seen by keepalive), so this notices a lost lock at once."""
        if self._connection is None:
            return False
        raw = self._connection.connection.dbapi_connection
        if raw is None:
            return True
        readable, _, _ = wait_readable([raw.fileno()], [], [], seconds)
        return bool(readable)

    def release(self) -> None:
        if self._connection is not None:
            try:
                self._connection.execute(select(func.pg_advisory_unlock(self.key)))
                self._connection.commit()
            except SQLAlchemyError:
                pass  # the connection is gone, and the lock with it
            self._close()
        self._engine.dispose()

    def _close(self) -> None:
        if self._connection is not None:
            try:
                self._connection.close()
            except SQLAlchemyError:
                pass
            self._connection = None


class Scheduling(Protocol):
    """A scheduler this process takes part in, as the API's hook and the CLI see it."""

    @property
    def leader(self) -> bool: ...

    def stop(self) -> None: ...


@dataclass
class RunningScheduler:
    """SQLite: the scheduler of the one process that holds the data directory's file lock."""

    scheduler: BaseScheduler
    lock: SchedulerLock

    @property
    def leader(self) -> bool:
        return True

    def stop(self) -> None:
        try:
            self.scheduler.shutdown(wait=False)
        finally:
            self.lock.release()
            set_scheduler_leader(False)


class LeaderElection:
    """PostgreSQL: runs the jobs while this process holds the leader lock. A thread tries to
    take the lock every `retry_seconds` while a follower, and checks it is still held as the
    leader (stepping down if not)."""

    def __init__(self, settings: Settings, lock: AdvisoryLock, *, retry_seconds: float) -> None:
        self._settings = settings
        self._lock = lock
        self._retry = retry_seconds
        self._stopped = threading.Event()
        self._scheduler: BaseScheduler | None = None
        self._thread = threading.Thread(target=self._run, name="scheduler-election", daemon=True)

    @property
    def leader(self) -> bool:
        return self._scheduler is not None

    def start(self) -> LeaderElection:
        self._thread.start()
        return self

    def wait(self) -> None:
        """Until stopped (the CLI's foreground process)."""
        while not self._stopped.wait(1.0):
            pass

    def stop(self) -> None:
        self._stopped.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=30)
        self._step_down()
        self._lock.release()

    def _run(self) -> None:
        while not self._stopped.is_set():
            try:
                self._step()
            except Exception as error:  # the database away: try again, never die silently
                _log.warning("scheduler election failed; retrying", error=str(error))
                self._step_down()
            self._pause()

    def _pause(self) -> None:
        """Until the next try (a follower) or check (the leader). The leader watches its lock's
        connection meanwhile and checks at once when the server ends it: no job starts in a
        leader that has lost the lock (the check runs in well under a second)."""
        deadline = time.monotonic() + self._retry
        while not self._stopped.is_set() and (left := deadline - time.monotonic()) > 0:
            step = min(left, 0.5)  # stop() is never kept waiting longer
            if self._scheduler is None:
                self._stopped.wait(step)
            elif self._lock.watch(step):
                return

    def _step(self) -> None:
        if self._scheduler is None:
            if self._lock.acquire():
                scheduler = build_scheduler(self._settings)
                scheduler.start()
                self._scheduler = scheduler
                set_scheduler_leader(True)
                _log.info("scheduler leader: running the jobs", jobs=[j.id for j in JOBS])
        elif not self._lock.held():
            _log.warning("scheduler leader lock lost: stopping the jobs")
            self._step_down()

    def _step_down(self) -> None:
        scheduler, self._scheduler = self._scheduler, None
        set_scheduler_leader(False)
        try:
            if scheduler is not None:
                scheduler.shutdown(wait=False)
        finally:
            self._lock.release()  # a leader that is not running the jobs must not hold it


def start_scheduler(settings: Settings) -> Scheduling | None:
    """Start the follow-up jobs in the background, unless SIP_FHIR_SCHEDULER=off (then None).
    On the shared database: join the leader election. On SQLite: start unless another scheduler
    holds the lock on the data directory (then None, and a log line says why)."""
    if not settings.scheduler:
        _log.info("scheduler off (SIP_FHIR_SCHEDULER=off)")
        return None
    url = state_url(settings, JOB_STORE)
    if is_postgres(url):
        set_scheduler_leader(False)
        retry = settings.scheduler_retry_seconds
        return LeaderElection(settings, AdvisoryLock(url), retry_seconds=retry).start()
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
    set_scheduler_leader(True)
    _log.info("scheduler started", jobs=[j.id for j in JOBS])
    return RunningScheduler(scheduler, lock)


@contextmanager
def scheduler_service(app: FastAPI) -> Iterator[Scheduling | None]:
    """A lifespan hook (adapter.api.create_app(hooks=...)): the scheduler lives with the API."""
    running = start_scheduler(app.state.settings)
    try:
        yield running
    finally:
        if running is not None:
            running.stop()


def run_blocking(settings: Settings) -> None:
    """`sip-fhir scheduler run`: the scheduler as its own process, until stopped.

    On the shared database it joins the leader election (and waits as a follower); on SQLite a
    RuntimeError (Swedish) if another scheduler holds the lock.
    """
    url = state_url(settings, JOB_STORE)
    if is_postgres(url):
        retry = settings.scheduler_retry_seconds
        election = LeaderElection(settings, AdvisoryLock(url), retry_seconds=retry).start()
        try:
            election.wait()  # SIGINT ends it (KeyboardInterrupt); SIGTERM ends the process
        finally:
            election.stop()
        return
    lock = SchedulerLock(settings.data_dir)
    if not lock.acquire():
        raise RuntimeError(f"En annan schemaläggare körs redan ({lock.path} är låst)")
    try:
        scheduler = build_scheduler(settings, blocking=True)
        _log.info("scheduler running", jobs=[j.id for j in JOBS])
        scheduler.start()  # blocks until shutdown (SIGINT/SIGTERM end the process)
    finally:
        lock.release()
