"""The sip-call rule: a discharge notice needing both huvudmän, called within 3 working days."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from adapter.canonical import TaskBusinessStatus, TaskType
from adapter.domain import EventCode
from adapter.followup.rules import NoticeFocus, Owner, OwnerKind, TaskDecision, decide
from adapter.followup.state import NoticeFacts, PatientState
from tests.support.rules import (
    FVK,
    RULES,
    STOCKHOLM,
    UNIT,
    UNIT_B,
    d,
    entry,
    event,
    notice,
    plan,
    state,
)

LC_9001 = notice("LC-9001", "2024-12-19 14:30")  # deadline end of Friday 2024-12-27


def _sip_calls(s: PatientState, as_of: str) -> list[TaskDecision]:
    return [t for t in decide(s, d(as_of), RULES) if t.task_type is TaskType.SIP_CALL]


def test_notice_needing_both_huvudman_gives_a_task_due_at_end_of_third_working_day() -> None:
    (task,) = _sip_calls(state(notices=(LC_9001,)), "2024-12-19")
    assert task.occasion == "LC-9001"
    assert task.focus == NoticeFocus("LC-9001")
    assert task.opens_on == d("2024-12-19")
    assert task.due == d("2024-12-27")
    assert task.due_at.tzinfo == STOCKHOLM
    assert (task.due_at.hour, task.due_at.minute, task.due_at.second) == (23, 59, 59)
    assert task.business_status is TaskBusinessStatus.DUE


def test_due_on_the_deadline_day_overdue_the_day_after() -> None:
    s = state(notices=(LC_9001,))
    assert _sip_calls(s, "2024-12-27")[0].business_status is TaskBusinessStatus.DUE
    assert _sip_calls(s, "2024-12-28")[0].business_status is TaskBusinessStatus.OVERDUE


def test_notice_needing_one_huvudman_gives_no_task() -> None:
    s = state(notices=(notice("LC-9002", "2024-12-20 09:10", needs_sip=False),))
    assert _sip_calls(s, "2024-12-20") == []


def test_notice_after_as_of_is_not_seen() -> None:
    assert _sip_calls(state(notices=(LC_9001,)), "2024-12-18") == []


@pytest.mark.parametrize("called", ["2024-12-19", "2024-12-20", "2024-12-27", "2025-01-15"])
def test_sipkall_on_or_after_the_notice_day_fulfils(called: str) -> None:
    s = state(notices=(LC_9001,), events=(event(called, EventCode.SIPKALL),))
    assert _sip_calls(s, "2025-01-20") == []


def test_sipkall_before_the_notice_does_not_fulfil() -> None:
    s = state(notices=(LC_9001,), events=(event("2024-12-18", EventCode.SIPKALL),))
    assert len(_sip_calls(s, "2024-12-20")) == 1


def test_other_events_do_not_fulfil() -> None:
    s = state(notices=(LC_9001,), events=(event("2024-12-20", EventCode.AU125),))
    assert len(_sip_calls(s, "2024-12-20")) == 1


def test_sipkall_after_as_of_is_not_seen() -> None:
    s = state(notices=(LC_9001,), events=(event("2024-12-23", EventCode.SIPKALL),))
    assert len(_sip_calls(s, "2024-12-20")) == 1


def test_notice_of_friday_evening_across_the_weekend() -> None:
    s = state(notices=(notice("LC-1", "2024-11-29 22:45"),))
    assert _sip_calls(s, "2024-11-29")[0].due == d("2024-12-04")


def test_notice_on_a_holiday() -> None:
    s = state(notices=(notice("LC-2", "2024-12-25 11:00"),))
    assert _sip_calls(s, "2024-12-25")[0].due == d("2025-01-02")


def test_one_task_per_notice() -> None:
    s = state(notices=(LC_9001, notice("LC-9003", "2024-12-20 08:00")))
    assert {t.occasion for t in _sip_calls(s, "2024-12-20")} == {"LC-9001", "LC-9003"}


def test_owner_fast_vardkontakt_of_the_active_plan() -> None:
    s = state(notices=(LC_9001,), plans=(plan(),), entries=(entry("2024-12-09"),))
    assert _sip_calls(s, "2024-12-19")[0].owner == Owner(OwnerKind.PRACTITIONER, FVK)


def test_owner_falls_back_to_the_listing_unit_of_the_newest_prea60_entry() -> None:
    s = state(
        notices=(LC_9001,),
        entries=(entry("2024-11-11", "5.0", unit=UNIT_B), entry("2024-12-09", "8.0")),
    )
    (task,) = _sip_calls(s, "2024-12-19")
    assert task.owner == Owner(OwnerKind.ORGANIZATION, UNIT)
    assert task.unit_hsa_id == UNIT


def test_owner_falls_back_to_the_plans_unit_without_prea60() -> None:
    s = state(notices=(LC_9001,), plans=(plan(fast_vardkontakt=None, unit=UNIT_B),))
    assert _sip_calls(s, "2024-12-19")[0].owner == Owner(OwnerKind.ORGANIZATION, UNIT_B)


def test_no_owner_known() -> None:
    (task,) = _sip_calls(state(notices=(LC_9001,)), "2024-12-19")
    assert task.owner is None
    assert task.unit_hsa_id is None


def test_utc_notice_time_counts_from_the_stockholm_day() -> None:
    late = NoticeFacts("LC-3", datetime(2024, 11, 28, 23, 30, tzinfo=UTC), True)
    (task,) = _sip_calls(state(notices=(late,)), "2024-11-29")
    assert task.opens_on == d("2024-11-29")
    assert task.due == d("2024-12-04")
    assert task.due_at.astimezone(STOCKHOLM).date() == d("2024-12-04")
