"""Several real `sip-fhir serve` (and `scheduler run`) processes on one shared database
(SIP_FHIR_DATABASE_URL, PostgreSQL), each with a data directory of its own: a login on one is
valid on the other and a logout ends it on both, the audit log is one, and exactly one process
leads the scheduler; kill -9 the leader and another takes over, no scheduled run twice. A leader
whose lock connection the database ends mid-job stops at once, and no job runs in two processes
at the same time."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import pairwise
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from adapter.api.apikeys import ApiKeyEntry, add_entry, new_key
from adapter.api.principal import Role
from adapter.api.sessions import COOKIE
from adapter.scheduler import LEADER_LOCK
from tests.support.postgres import free_port
from tests.support.scheduler_probe import SLOW

REPO_ROOT = Path(__file__).resolve().parents[2]
RETRY_ENV = "SIP_FHIR_SCHEDULER_RETRY_SECONDS"
RETRY_SECONDS = 1.0  # SIP_FHIR_SCHEDULER_RETRY_SECONDS of the processes
TAKEOVER_BOUND = 10.0  # seconds: retry interval + start of the scheduler, with room on 2 cores
LEADER = re.compile(r"^sip_fhir_scheduler_leader (\S+)$", re.MULTILINE)


@dataclass
class Process:
    name: str
    popen: subprocess.Popen[bytes]
    url: str | None  # a `serve`'s address; None for `scheduler run`

    def leads(self) -> bool:
        """What the process's /metrics says (a `serve` only)."""
        assert self.url is not None
        found = LEADER.search(httpx.get(f"{self.url}/metrics", timeout=10).text)
        assert found is not None, "no scheduler_leader metric"
        return float(found.group(1)) == 1.0


def wait_for(condition: Callable[[], object], seconds: float, what: str) -> float:
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        if condition():
            return time.monotonic() - started
        time.sleep(0.1)
    raise AssertionError(f"{what}: not within {seconds} s")


def answers(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture
def admin_key(tmp_path: Path) -> tuple[Path, str]:
    keys = tmp_path / "api-keys.json"  # the region's configuration, the same for every process
    key = new_key()
    add_entry(keys, key, ApiKeyEntry(name="admin", role=Role.ADMIN))
    return keys, key


@pytest.fixture
def start(
    tmp_path: Path, database_url: str, admin_key: tuple[Path, str]
) -> Iterator[Callable[..., Process]]:
    started: list[Process] = []

    def run(name: str, *args: str, env: dict[str, str] | None = None) -> Process:
        port = free_port()
        env = {
            **os.environ,
            "PYTHONPATH": str(REPO_ROOT),
            "SIP_FHIR_DATABASE_URL": database_url,
            "SIP_FHIR_DATA_DIR": str(tmp_path / name),  # nothing shared through files
            "SIP_FHIR_API_KEYS_FILE": str(admin_key[0]),
            "SIP_FHIR_SCHEDULER": "on",
            RETRY_ENV: str(RETRY_SECONDS),
            "SIP_FHIR_LOG_LEVEL": "WARNING",
            **(env or {}),
        }
        command = args or ("serve", "--port", str(port))
        popen = subprocess.Popen(
            [sys.executable, "-m", "tests.support.scheduler_probe", *command],
            cwd=REPO_ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        process = Process(name, popen, None if args else f"http://127.0.0.1:{port}")
        started.append(process)
        return process

    yield run
    for process in started:
        if process.popen.poll() is None:
            process.popen.send_signal(signal.SIGTERM)
    for process in started:
        try:
            process.popen.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.popen.kill()


def probe_runs(database_url: str) -> list[tuple[str, int]]:
    """The probe job's rows: (second fired, pid)."""
    engine = create_engine(database_url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            exists = connection.execute(text("SELECT to_regclass('probe_run')")).scalar()
            if exists is None:
                return []
            rows = connection.execute(text("SELECT fired, pid FROM probe_run ORDER BY fired"))
            return [(str(r[0]), int(r[1])) for r in rows]
    finally:
        engine.dispose()


@pytest.mark.timeout(300)
def test_two_services_share_sessions_audit_log_and_one_scheduler_leader(
    start: Callable[..., Process], database_url: str, admin_key: tuple[Path, str]
) -> None:
    a, b = start("a"), start("b")
    runner = start("runner", "scheduler", "run")  # a third candidate for leader
    for service in (a, b):
        assert service.url is not None
        wait_for(lambda s=service: answers(s.url), 90, f"{service.name} up")  # type: ignore[misc]
    assert a.url is not None and b.url is not None
    key = admin_key[1]

    # A login on A is a session on B.
    login = httpx.post(
        f"{a.url}/ui/login", data={"api_key": key, "purpose": "kvalitet"}, timeout=30
    )
    assert login.status_code == 303, login.text
    cookie = {COOKIE: login.cookies[COOKIE]}
    home = httpx.get(f"{b.url}/ui/", cookies=cookie, timeout=30)
    assert home.status_code == 200, home.text
    found = re.search(r'name="csrf" value="([^"]+)"', home.text)
    assert found is not None

    # One audit log: a search on each process is seen by both.
    searched = set()
    for service in (a, b):
        answer = httpx.post(
            f"{service.url}/audit/search", json={}, headers={"X-API-Key": key}, timeout=30
        )
        assert answer.status_code == 200, answer.text
        searched.add(answer.headers["X-Request-ID"])
    for service in (a, b):
        events = httpx.post(
            f"{service.url}/audit/search", json={}, headers={"X-API-Key": key}, timeout=30
        ).json()["events"]
        assert len(searched) == 2 and searched <= {e["request_id"] for e in events}

    # A logout on B ends the session on A too.
    out = httpx.post(f"{b.url}/ui/logout", data={"csrf": found.group(1)}, cookies=cookie)
    assert out.status_code == 303 and out.headers["location"] == "/ui/login"
    again = httpx.get(f"{a.url}/ui/", cookies=cookie, timeout=30)
    assert (again.status_code, again.headers.get("location")) == (303, "/ui/login")

    # Exactly one leader runs the jobs: the probe job's rows come from one process ...
    processes = {p.popen.pid: p for p in (a, b, runner)}
    wait_for(lambda: len(probe_runs(database_url)) >= 5, 60, "the probe job runs")
    time.sleep(3 * RETRY_SECONDS)  # the followers have tried (and failed) several times
    runs = probe_runs(database_url)
    leader_pid = runs[-1][1]
    assert {pid for _, pid in runs} == {leader_pid}
    leader = processes[leader_pid]
    # ... and the services' metric says which (a `scheduler run` has no /metrics).
    assert [s.leads() for s in (a, b)] == [s is leader for s in (a, b)]

    # kill -9 the leader: another process takes over within the bound.
    before = len(runs)
    leader.popen.send_signal(signal.SIGKILL)
    leader.popen.wait(timeout=10)
    killed = time.monotonic()
    wait_for(
        lambda: any(pid != leader_pid for _, pid in probe_runs(database_url)[before:]),
        TAKEOVER_BOUND,
        "a new leader",
    )
    takeover = time.monotonic() - killed
    time.sleep(3)
    runs = probe_runs(database_url)
    new_leaders = {pid for _, pid in runs[before:]} - {leader_pid}
    assert len(new_leaders) == 1
    (new_pid,) = new_leaders
    survivors = [s for s in (a, b) if s is not leader]
    assert [s.leads() for s in survivors] == [s is processes[new_pid] for s in survivors]

    # No trigger ran twice: one row per second, across the takeover too.
    twice = {fired: n for fired, n in Counter(fired for fired, _ in runs).items() if n > 1}
    assert twice == {}
    print(f"takeover after kill -9: {takeover:.1f} s; {len(runs)} probe runs, none twice")


@dataclass(frozen=True)
class Span:
    pid: int
    started: datetime
    ended: datetime | None


def spans(database_url: str) -> list[Span]:
    """The slow probe job's runs, in the order they started."""
    engine = create_engine(database_url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            if connection.execute(text("SELECT to_regclass('probe_span')")).scalar() is None:
                return []
            query = text("SELECT pid, started, ended FROM probe_span ORDER BY started")
            return [Span(*row) for row in connection.execute(query)]
    finally:
        engine.dispose()


def end_leader_lock_connection(database_url: str) -> datetime:
    """pg_terminate_backend on the session holding the scheduler's leader lock (as when its
    connection drops); the database's clock at that moment."""
    holder = text(
        "SELECT l.pid FROM pg_locks l JOIN pg_database d ON d.oid = l.database"
        " WHERE d.datname = current_database() AND l.locktype = 'advisory' AND l.granted"
        " AND l.classid = 0 AND l.objid = :key AND l.objsubid = 1"
    )
    engine = create_engine(database_url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            backend = connection.execute(holder, {"key": LEADER_LOCK}).scalar_one()
            ended = connection.execute(
                text("SELECT pg_terminate_backend(:pid), clock_timestamp()"), {"pid": backend}
            ).one()
            assert ended[0] is True
            moment: datetime = ended[1]
            return moment
    finally:
        engine.dispose()


JOB_SECONDS = 4.0  # each run of the slow probe job
OLD_LEADER_RETRY = 30.0  # the old leader's periodic check: far later than "at once"


@pytest.mark.timeout(240)
def test_a_leader_that_loses_its_lock_mid_job_stops_at_once_and_no_run_overlaps(
    start: Callable[..., Process], database_url: str
) -> None:
    slow = {SLOW: str(JOB_SECONDS)}
    old = start("old", env={**slow, RETRY_ENV: str(OLD_LEADER_RETRY)})  # a `serve`: /metrics
    wait_for(
        lambda: any(s.pid == old.popen.pid for s in spans(database_url)), 90, "the first leader"
    )
    new = start("new", "scheduler", "run", env={**slow, RETRY_ENV: "0.5"})
    time.sleep(3)  # the second process is up and a follower; the first is mid-run
    assert {s.pid for s in spans(database_url)} == {old.popen.pid}
    assert spans(database_url)[-1].ended is None

    assert old.leads()
    lost = end_leader_lock_connection(database_url)
    stepped_down = wait_for(lambda: not old.leads(), 2.0, "the old leader steps down at once")
    wait_for(lambda: any(s.pid == new.popen.pid for s in spans(database_url)), 30, "the new leader")
    time.sleep(2 * JOB_SECONDS)
    runs = spans(database_url)

    # The old leader started nothing once its lock was gone (it noticed in well under 1 s) ...
    late = [s for s in runs if s.pid == old.popen.pid and s.started > lost + timedelta(seconds=1)]
    assert late == []
    # ... its run in progress went on to its end, and the new leader's runs waited for it:
    # no two runs of the job at the same time.
    for before, after in pairwise(runs):
        assert before.ended is not None and before.ended <= after.started, (before, after)
    assert old.popen.poll() is None and new.popen.poll() is None
    print(f"old leader stepped down {stepped_down:.2f} s after its lock connection ended")
