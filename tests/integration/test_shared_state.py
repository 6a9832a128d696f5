"""The services' state on the shared database (SIP_FHIR_DATABASE_URL, PostgreSQL): the audit log,
survey codes, worklist sessions and the scheduler's leader, each seen from two stores at once as
two `serve` processes would (tests/integration/test_shared_serve.py runs real processes)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from pydantic import SecretStr
from sqlalchemy import MetaData, create_engine, inspect, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import NullPool

from adapter import database
from adapter.api.principal import Principal, Role
from adapter.api.sessions import SessionStore
from adapter.audit import AuditEvent, AuditKind, AuditLog, Purpose, audit_url
from adapter.scheduler import AdvisoryLock, LeaderElection
from adapter.settings import Settings
from adapter.survey.codes import CodeStore

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
PATIENT = "193102149824"  # födelsenummer 982: no real person's
VERA = Principal(
    name="Vera",
    subject="apikey:vera",
    roles=frozenset({Role.VARDSAMORDNARE}),
    units=frozenset({"SE2321000057-E00000000001"}),
    method="apikey",
)


@pytest.fixture(autouse=True)
def _fresh_engines() -> Iterator[None]:
    yield
    database.dispose_all()  # each test's database is its own; no pool outlives it


def event(at: datetime, subject: str) -> AuditEvent:
    return AuditEvent(
        at=at,
        kind=AuditKind.PATIENT_READ,
        actor=subject,
        subject=subject,
        resource="Task",
        route="/worklist/{unit}",
        request_id=f"req-{subject}",
        purpose=Purpose.VARD,
        patient=PATIENT,
        unit="SE2321000057-E00000000001",
    )


# --- where each store lives ---


def test_the_audit_log_follows_the_shared_database_else_its_own_file(
    tmp_path: Path, database_url: str
) -> None:
    own = tmp_path / "elsewhere" / "audit.sqlite"
    assert audit_url(Settings(data_dir=tmp_path)) == f"sqlite:///{tmp_path / 'audit.sqlite'}"
    assert audit_url(Settings(data_dir=tmp_path, audit_db=own)) == f"sqlite:///{own}"
    shared = Settings(data_dir=tmp_path, audit_db=own, database_url=SecretStr(database_url))
    assert audit_url(shared) == database_url  # one log for every process of the region
    assert AuditLog.for_settings(shared).path is None
    assert not own.exists()


def test_table_setup_of_processes_starting_together_does_not_collide(database_url: str) -> None:
    """Each `serve` creates the tables it needs at start; on PostgreSQL two CREATE TABLE IF NOT
    EXISTS at the same moment can fail (a duplicate in pg_type) without the setup lock."""
    from adapter.audit import _METADATA as AUDIT
    from adapter.survey.codes import _METADATA as CODES

    def setup(metadata: MetaData) -> None:
        database.open_tables(database_url, metadata)

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(setup, [AUDIT, CODES] * 4))
    tables = set(inspect(database.engine(database_url)).get_table_names())
    assert {"audit_event", "survey_code", "survey_handout"} <= tables


# --- audit log ---


def test_audit_events_of_two_processes_are_one_log(database_url: str) -> None:
    first, second = AuditLog(database_url), AuditLog(database_url)
    first.record([event(T0, "apikey:a")])
    second.record([event(T0.replace(hour=9), "apikey:b")])
    for log in (first, second):
        assert [e.subject for e in log.search(patient=PATIENT)] == ["apikey:b", "apikey:a"]
        assert log.search(subject="apikey:a", until=T0.replace(hour=9)) == [event(T0, "apikey:a")]


def test_audit_readiness_writes_nothing_and_fails_while_the_table_is_locked(
    database_url: str,
) -> None:
    log = AuditLog(database_url)
    log.check()
    assert log.search() == []  # the probe write was rolled back
    blocker = create_engine(database_url, poolclass=NullPool)
    try:
        with blocker.begin() as other:
            other.execute(text("LOCK TABLE audit_event IN EXCLUSIVE MODE"))  # reads still pass
            assert log.search() == []
            started = time.monotonic()
            with pytest.raises(OperationalError, match="timeout"):
                log.check(timeout=0.5)
            assert time.monotonic() - started < 5
    finally:
        blocker.dispose()
    log.check()


# --- survey codes ---


def test_a_code_is_answered_once_even_from_two_processes_at_once(database_url: str) -> None:
    stores = [CodeStore(database_url), CodeStore(database_url)]
    code = stores[0].issue("SE2321000057-E00000000001", date(2026, 3, 2), "plan-1", "patient-1")
    assert stores[1].lookup(code) is not None
    with ThreadPoolExecutor(8) as pool:
        claims = list(pool.map(lambda i: stores[i % 2].claim(code), range(16)))
    assert sum(claim is not None for claim in claims) == 1
    status = stores[1].status(["plan-1"])["plan-1"]
    assert (status.issued, status.answered) == (1, 1)


# --- sessions ---


def test_a_session_started_on_one_process_is_valid_on_another_until_logout(
    database_url: str,
) -> None:
    here, there = SessionStore(database_url), SessionStore(database_url)
    session = here.start(VERA, Purpose.UPPFOLJNING)
    seen = there.get(session.token)
    assert seen is not None
    assert (seen.principal, seen.purpose, seen.csrf) == (VERA, Purpose.UPPFOLJNING, session.csrf)
    seen.flash.append("Klart")  # a message set on one process ...
    again = here.get(session.token)
    assert again is not None and again.take_flash() == ["Klart"]  # ... shown by the other, once
    assert there.get(session.token).take_flash() == []  # type: ignore[union-attr]
    there.end(session.token)
    assert here.get(session.token) is None and len(here) == 0


def test_the_database_never_holds_the_session_token(database_url: str) -> None:
    session = SessionStore(database_url).start(VERA, Purpose.VARD)
    with database.engine(database_url).connect() as connection:
        rows = connection.execute(text("SELECT * FROM page_session")).all()
    assert len(rows) == 1
    assert session.token not in " ".join(str(value) for value in rows[0])


def test_sessions_expire_on_the_shared_clock(database_url: str) -> None:
    now = [1_000.0]
    store = SessionStore(database_url, idle_seconds=10, max_seconds=25, clock=lambda: now[0])
    session = store.start(VERA, Purpose.VARD)
    now[0] += 9
    assert store.get(session.token) is not None
    now[0] += 11
    assert store.get(session.token) is None
    store.start(VERA, Purpose.VARD)  # a new login sweeps the expired rows
    with database.engine(database_url).connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM page_session")).scalar() == 1


# --- the scheduler's leader ---


def wait_for(condition: object, seconds: float) -> float:
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        if condition():  # type: ignore[operator]
            return time.monotonic() - started
        time.sleep(0.05)
    raise AssertionError(f"not within {seconds} s")


def test_one_leader_and_a_follower_takes_over_when_it_stops(
    tmp_path: Path, database_url: str
) -> None:
    settings = Settings(
        data_dir=tmp_path, database_url=SecretStr(database_url), scheduler_retry_seconds=0.2
    )
    elections = [
        LeaderElection(settings, AdvisoryLock(database_url), retry_seconds=0.2).start()
        for _ in range(3)
    ]
    try:
        wait_for(lambda: any(e.leader for e in elections), 10)
        time.sleep(1)  # several rounds: still one
        leaders = [e for e in elections if e.leader]
        assert len(leaders) == 1
        leaders[0].stop()
        rest = [e for e in elections if e is not leaders[0]]
        wait_for(lambda: any(e.leader for e in rest), 5)
        time.sleep(0.6)
        assert sum(e.leader for e in rest) == 1
    finally:
        for election in elections:
            election.stop()


def test_a_leader_whose_connection_dies_steps_down(tmp_path: Path, database_url: str) -> None:
    """The database ended the leader's session (a restart, a killed backend): its lock is gone
    and another process may lead, so it must stop running the jobs."""
    settings = Settings(data_dir=tmp_path, database_url=SecretStr(database_url))
    election = LeaderElection(settings, AdvisoryLock(database_url), retry_seconds=0.2).start()
    try:
        wait_for(lambda: election.leader, 10)
        with database.engine(database_url).begin() as connection:
            ended = connection.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_locks "
                    "WHERE locktype = 'advisory' AND granted"
                )
            ).all()
        assert ended == [(True,)]
        wait_for(lambda: not election.leader, 5)
        wait_for(lambda: election.leader, 5)  # and leads again once the lock is free
    finally:
        election.stop()


def test_an_advisory_lock_is_exclusive_and_released_with_its_connection(
    database_url: str,
) -> None:
    first, second = AdvisoryLock(database_url), AdvisoryLock(database_url)
    assert first.acquire() and first.held()
    # The server drops a vanished leader's session (and lock) in seconds, not TCP's two hours.
    connection = first._connection
    assert connection is not None
    assert connection.execute(text("SHOW tcp_keepalives_idle")).scalar() == "10"
    assert connection.execute(text("SHOW tcp_user_timeout")).scalar() == "30000"  # ms
    assert not second.acquire() and not second.held()
    first.release()
    assert second.acquire()
    second.release()
