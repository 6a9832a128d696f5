"""The audit log's storage: durable, owner-only, searchable by patient, user and time."""

from __future__ import annotations

import sqlite3
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from adapter.audit import AuditEvent, AuditKind, AuditLog, Purpose

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


def read(
    at: datetime, patient: str = "191212129819", subject: str = "sub-vera", **extra: str
) -> AuditEvent:
    return AuditEvent(
        at=at,
        kind=AuditKind.PATIENT_READ,
        actor="Vera",
        subject=subject,
        resource="Task",
        route="/worklist/{unit}",
        request_id="req-1",
        purpose=Purpose.VARD,
        patient=patient,
        unit="SE2321000057-E00000000001",
        **extra,
    )


@pytest.fixture
def audit(tmp_path: Path) -> AuditLog:
    return AuditLog(tmp_path / "audit" / "audit.sqlite")


def test_events_round_trip(audit: AuditLog) -> None:
    event = read(T0, detail="x")
    audit.record([event])
    assert audit.search() == [event]


def test_recorded_events_are_on_disk_for_another_connection(audit: AuditLog) -> None:
    audit.record([read(T0)])
    with sqlite3.connect(audit.path) as other:
        assert other.execute("SELECT patient, purpose FROM audit_event").fetchall() == [
            ("191212129819", "vard")
        ]
        assert other.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert AuditLog(audit.path).search(patient="191212129819") == [read(T0)]  # reopened


def test_file_is_readable_by_its_owner_only(audit: AuditLog) -> None:
    assert stat.S_IMODE(audit.path.stat().st_mode) == 0o600


def test_search_by_patient_subject_and_time(audit: AuditLog) -> None:
    events = [
        read(T0, patient="191212129819"),
        read(T0 + timedelta(hours=1), patient="195001019800"),
        read(T0 + timedelta(hours=2), patient="191212129819", subject="sub-adam"),
    ]
    audit.record(events)
    assert audit.search(patient="191212129819") == [events[2], events[0]]  # newest first
    assert audit.search(subject="sub-vera") == [events[1], events[0]]
    assert audit.search(since=T0 + timedelta(hours=1)) == [events[2], events[1]]
    assert audit.search(until=T0 + timedelta(hours=1)) == [events[0]]
    assert audit.search(patient="191212129819", subject="sub-vera") == [events[0]]
    assert audit.search(limit=1) == [events[2]]


def test_time_filters_compare_instants_across_zones(audit: AuditLog) -> None:
    audit.record([read(T0)])
    stockholm = datetime(2026, 3, 1, 10, 0, tzinfo=ZoneInfo("Europe/Stockholm"))  # 09:00 UTC
    assert audit.search(until=stockholm) == [read(T0)]
    assert audit.search(since=stockholm) == []


def test_naive_timestamps_are_refused(audit: AuditLog) -> None:
    with pytest.raises(ValueError, match="time zone"):
        audit.record([read(datetime(2026, 3, 1, 8, 0))])
    assert audit.search() == []


def test_one_failing_event_stores_none_of_the_batch(audit: AuditLog) -> None:
    with pytest.raises(ValueError):
        audit.record([read(T0), read(datetime(2026, 3, 1))])
    assert audit.search() == []


def test_check_fails_when_the_database_is_gone(audit: AuditLog) -> None:
    audit.check()
    for path in audit.path.parent.iterdir():
        path.unlink()
    with pytest.raises(sqlite3.Error):
        audit.check()
