"""The follow-up rules: risk group, establish-plan, follow-up, renew-plan, owners and Task keys."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from adapter.canonical import TaskBusinessStatus, TaskType
from adapter.domain import EventCode, IdKind, PersonId, PlanStatus
from adapter.followup.rules import (
    Owner,
    OwnerKind,
    PlanFocus,
    RiskFocus,
    TaskDecision,
    applicable,
    decide,
    task_key,
)
from adapter.followup.state import CareEvent, PatientState, PlanFacts, RiskEntry
from tests.support.rules import FVK, PATIENT, RULES, UNIT, UNIT_B, d, entry, event, plan, run, state
from tests.support.rules import person as other_person

DUE_DAYS = RULES.params.establish_plan.due_days
INTERVAL = RULES.params.follow_up.interval_days
WINDOW = RULES.params.follow_up.due_soon_days
RENEW_DAYS = RULES.params.renew_plan.due_days


def _of_type(decisions: list[TaskDecision], task_type: TaskType) -> list[TaskDecision]:
    return [x for x in decisions if x.task_type is task_type]


def _only(decisions: list[TaskDecision], task_type: TaskType) -> TaskDecision:
    found = _of_type(decisions, task_type)
    assert len(found) == 1, decisions
    return found[0]


# --- Task keys ---


def test_task_key_is_an_opaque_stable_digest() -> None:
    key = task_key(PATIENT, TaskType.FOLLOW_UP, "2024-09-02")
    assert len(key) == 64 and int(key, 16) >= 0
    assert PATIENT.digits not in key and PATIENT.digits[:8] not in key
    assert key == task_key(PersonId(PATIENT.digits), TaskType.FOLLOW_UP, "2024-09-02")


def test_task_key_differs_by_patient_type_occasion_and_id_kind() -> None:
    keys = {
        task_key(PATIENT, TaskType.FOLLOW_UP, "2024-09-02"),
        task_key(PATIENT, TaskType.FOLLOW_UP, "2024-09-03"),
        task_key(PATIENT, TaskType.RENEW_PLAN, "2024-09-02"),
        task_key(other_person(1), TaskType.FOLLOW_UP, "2024-09-02"),
        task_key(
            PersonId(PATIENT.digits, IdKind.SAMORDNINGSNUMMER), TaskType.FOLLOW_UP, "2024-09-02"
        ),
    }
    assert len(keys) == 5


# --- risk group and establish-plan ---


def test_threshold_exactly_15_is_in_the_risk_group() -> None:
    s = state(entries=(entry("2024-12-09", "15.0"),))
    task = _only(decide(s, d("2024-12-11"), RULES), TaskType.ESTABLISH_PLAN)
    assert task.focus == RiskFocus(UNIT, d("2024-12-09"))
    assert task.unit_hsa_id == UNIT


def test_threshold_14_9_is_not() -> None:
    s = state(entries=(entry("2024-12-09", "14.9"),))
    assert decide(s, d("2024-12-11"), RULES) == []


def test_establish_plan_due_date_and_status() -> None:
    s = state(entries=(entry("2024-12-09"),))
    due = d("2024-12-09") + timedelta(days=DUE_DAYS)
    on_due = _only(decide(s, due, RULES), TaskType.ESTABLISH_PLAN)
    assert on_due.due == due and on_due.opens_on == d("2024-12-09")
    assert on_due.business_status is TaskBusinessStatus.DUE
    assert on_due.due_at.date() == due and on_due.due_at.hour == 23
    after = _only(decide(s, due + timedelta(days=1), RULES), TaskType.ESTABLISH_PLAN)
    assert after.business_status is TaskBusinessStatus.OVERDUE
    assert after.key == on_due.key


def test_run_after_as_of_is_not_seen() -> None:
    s = state(entries=(entry("2024-12-09"),))
    assert decide(s, d("2024-12-08"), RULES) == []


def test_rerun_of_the_unit_keeps_the_same_task() -> None:
    first = state(entries=(entry("2024-11-11"),), runs=(run("2024-11-11"),))
    second = state(
        entries=(entry("2024-11-11"), entry("2024-12-09", "31.2")),
        runs=(run("2024-11-11"), run("2024-12-09")),
    )
    a = _only(decide(first, d("2024-11-12"), RULES), TaskType.ESTABLISH_PLAN)
    b = _only(decide(second, d("2024-12-10"), RULES), TaskType.ESTABLISH_PLAN)
    assert a.key == b.key
    assert a.occasion == f"{UNIT}|2024-11-11"
    assert b.focus == RiskFocus(UNIT, d("2024-12-09"))  # the newest assessment


def test_patient_absent_from_newest_run_has_left() -> None:
    s = state(entries=(entry("2024-11-11"),), runs=(run("2024-11-11"), run("2024-12-09")))
    assert decide(s, d("2024-12-10"), RULES) == []
    assert decide(s, d("2024-12-08"), RULES) != []  # before the newer run it still applied


def test_newer_run_below_threshold_drops_the_patient() -> None:
    s = state(entries=(entry("2024-11-11"), entry("2024-12-09", "14.9")))
    assert decide(s, d("2024-12-10"), RULES) == []


def test_re_entry_after_leaving_gets_a_new_task() -> None:
    runs = (run("2024-10-07"), run("2024-11-11"), run("2024-12-09"))
    s = state(entries=(entry("2024-10-07"), entry("2024-12-09")), runs=runs)
    before = _only(decide(s, d("2024-10-08"), RULES), TaskType.ESTABLISH_PLAN)
    after = _only(decide(s, d("2024-12-10"), RULES), TaskType.ESTABLISH_PLAN)
    assert after.key != before.key
    assert after.occasion == f"{UNIT}|2024-12-09"


def test_unbroken_streak_starts_at_its_first_run() -> None:
    runs = (run("2024-09-09"), run("2024-10-07"), run("2024-11-11"))
    s = state(
        entries=(entry("2024-09-09", "12.0"), entry("2024-10-07"), entry("2024-11-11")),
        runs=runs,
    )
    task = _only(decide(s, d("2024-11-12"), RULES), TaskType.ESTABLISH_PLAN)
    assert task.occasion == f"{UNIT}|2024-10-07"
    assert task.due == d("2024-10-07") + timedelta(days=DUE_DAYS)


@pytest.mark.parametrize("status", [PlanStatus.DRAFT, PlanStatus.COMPLETED, PlanStatus.REVOKED])
def test_only_an_active_plan_counts(status: PlanStatus) -> None:
    s = state(entries=(entry("2024-12-09"),), plans=(plan(status=status, created="2024-10-01"),))
    assert _only(decide(s, d("2024-12-10"), RULES), TaskType.ESTABLISH_PLAN)


def test_active_plan_means_no_establish_plan() -> None:
    s = state(entries=(entry("2024-12-09"),), plans=(plan(created="2024-11-01"),))
    assert _of_type(decide(s, d("2024-12-10"), RULES), TaskType.ESTABLISH_PLAN) == []


def test_plan_created_after_as_of_is_not_active_yet() -> None:
    s = state(entries=(entry("2024-12-09"),), plans=(plan(created="2024-12-20"),))
    assert _only(decide(s, d("2024-12-10"), RULES), TaskType.ESTABLISH_PLAN)


def test_revoked_plan_starts_a_new_occasion_from_its_end() -> None:
    runs = (run("2024-09-09"), run("2024-12-09"))
    entries = (entry("2024-09-09"), entry("2024-12-09"))
    revoked = plan(status=PlanStatus.REVOKED, created="2024-10-01", updated="2024-12-16")
    before = _only(
        decide(state(entries=entries, runs=runs), d("2024-09-10"), RULES), TaskType.ESTABLISH_PLAN
    )
    after = _only(
        decide(state(entries=entries, runs=runs, plans=(revoked,)), d("2024-12-17"), RULES),
        TaskType.ESTABLISH_PLAN,
    )
    assert before.occasion == f"{UNIT}|2024-09-09"
    assert after.occasion == f"{UNIT}|2024-12-16"
    assert after.due == d("2024-12-16") + timedelta(days=DUE_DAYS)


def test_plan_past_valid_until_is_still_active_for_establish_plan() -> None:
    s = state(
        entries=(entry("2024-12-09"),),
        plans=(plan(created="2024-01-10", valid_until="2024-07-10"),),
    )
    decisions = decide(s, d("2024-12-10"), RULES)
    assert _of_type(decisions, TaskType.ESTABLISH_PLAN) == []
    assert _only(decisions, TaskType.RENEW_PLAN)


def test_one_task_per_unit_whose_risk_group_the_patient_is_in() -> None:
    s = state(entries=(entry("2024-12-09"), entry("2024-12-02", unit=UNIT_B)))
    tasks = _of_type(decide(s, d("2024-12-10"), RULES), TaskType.ESTABLISH_PLAN)
    assert {t.unit_hsa_id for t in tasks} == {UNIT, UNIT_B}
    assert {t.owner for t in tasks} == {
        Owner(OwnerKind.ORGANIZATION, UNIT),
        Owner(OwnerKind.ORGANIZATION, UNIT_B),
    }


def test_establish_plan_owner_is_the_unit_or_a_drafts_fast_vardkontakt() -> None:
    bare = state(entries=(entry("2024-12-09"),))
    task = _only(decide(bare, d("2024-12-10"), RULES), TaskType.ESTABLISH_PLAN)
    assert task.owner == Owner(OwnerKind.ORGANIZATION, UNIT)
    drafted = state(entries=(entry("2024-12-09"),), plans=(plan(status=PlanStatus.DRAFT),))
    task = _only(decide(drafted, d("2024-12-10"), RULES), TaskType.ESTABLISH_PLAN)
    assert task.owner == Owner(OwnerKind.PRACTITIONER, FVK)


# --- follow-up ---


SINCE = "2024-08-12"  # the first run of the streak in `_followed`


def _followed(
    *events: CareEvent,
    plans: tuple[PlanFacts, ...] | None = None,
    entries: tuple[RiskEntry, ...] | None = None,
) -> PatientState:
    return state(
        entries=entries if entries is not None else (entry(SINCE), entry("2024-12-09")),
        runs=(run(SINCE), run("2024-12-09")),
        plans=plans if plans is not None else (plan(created="2024-09-02"),),
        events=events,
    )


def test_follow_up_exactly_90_days_is_due_not_overdue() -> None:
    due = d("2024-09-02") + timedelta(days=INTERVAL)
    assert due == d("2024-12-01")
    task = _only(decide(_followed(), due, RULES), TaskType.FOLLOW_UP)
    assert task.due == due
    assert task.business_status is TaskBusinessStatus.DUE
    assert task.occasion == f"2024-09-02|{SINCE}"
    assert task.focus == PlanFocus("cosmic:VP-1001")


def test_follow_up_day_91_is_overdue() -> None:
    task = _only(decide(_followed(), d("2024-12-02"), RULES), TaskType.FOLLOW_UP)
    assert task.business_status is TaskBusinessStatus.OVERDUE


def test_follow_up_opens_the_due_soon_window_before_it_falls_due() -> None:
    opens = d("2024-12-01") - timedelta(days=WINDOW)
    assert _of_type(decide(_followed(), opens - timedelta(days=1), RULES), TaskType.FOLLOW_UP) == []
    pending = _only(applicable(_followed(), opens - timedelta(days=1), RULES), TaskType.FOLLOW_UP)
    assert pending.opens_on == opens
    assert _only(decide(_followed(), opens, RULES), TaskType.FOLLOW_UP).key == pending.key


@pytest.mark.parametrize("code", [EventCode.AW010, EventCode.UPPF])
def test_follow_up_event_moves_the_occasion(code: EventCode) -> None:
    s = _followed(event("2024-11-20", code))
    task = _only(decide(s, d("2025-02-17"), RULES), TaskType.FOLLOW_UP)
    assert task.occasion == f"2024-11-20|{SINCE}"
    assert task.due == d("2024-11-20") + timedelta(days=INTERVAL)
    assert code.value in task.description


@pytest.mark.parametrize("code", [EventCode.AU124, EventCode.AU125, EventCode.SIPKALL])
def test_other_events_are_not_follow_ups(code: EventCode) -> None:
    task = _only(
        decide(_followed(event("2024-11-20", code)), d("2024-12-01"), RULES), TaskType.FOLLOW_UP
    )
    assert task.occasion == f"2024-09-02|{SINCE}"


def test_follow_up_event_after_as_of_is_not_seen() -> None:
    s = _followed(event("2024-12-05", EventCode.AW010))
    assert (
        _only(decide(s, d("2024-12-02"), RULES), TaskType.FOLLOW_UP).occasion
        == f"2024-09-02|{SINCE}"
    )


def test_new_plan_version_is_a_follow_up_but_an_edit_of_version_1_is_not() -> None:
    v2 = plan(created="2024-09-02", updated="2024-11-15", version=2)
    task = _only(decide(_followed(plans=(v2,)), d("2025-02-13"), RULES), TaskType.FOLLOW_UP)
    assert task.occasion == f"2024-11-15|{SINCE}"
    v1 = plan(created="2024-09-02", updated="2024-11-15", version=1)
    task = _only(decide(_followed(plans=(v1,)), d("2024-12-01"), RULES), TaskType.FOLLOW_UP)
    assert task.occasion == f"2024-09-02|{SINCE}"


def test_no_follow_up_outside_the_risk_group() -> None:
    s = _followed(entries=(entry("2024-08-12"),))  # absent from the 2024-12-09 run
    assert _of_type(decide(s, d("2024-12-10"), RULES), TaskType.FOLLOW_UP) == []


def test_follow_up_occasion_changes_when_the_patient_comes_back() -> None:
    runs = (run(SINCE), run("2024-12-09"), run("2025-01-13"))
    before = state(entries=(entry(SINCE), entry("2024-12-09")), runs=runs, plans=(plan(),))
    back = replace(before, risk_entries=(entry(SINCE), entry("2025-01-13")))
    a = _only(decide(before, d("2024-12-10"), RULES), TaskType.FOLLOW_UP)
    b = _only(decide(back, d("2025-01-14"), RULES), TaskType.FOLLOW_UP)
    assert (a.occasion, b.occasion) == (f"2024-09-02|{SINCE}", "2024-09-02|2025-01-13")
    assert a.key != b.key


def test_no_follow_up_without_an_active_plan() -> None:
    s = _followed(plans=(plan(status=PlanStatus.DRAFT),))
    assert _of_type(decide(s, d("2024-12-10"), RULES), TaskType.FOLLOW_UP) == []


def test_follow_up_focuses_on_the_plan_followed_up_last() -> None:
    sip = plan("lifecare:SIP-77", created="2024-08-20", fast_vardkontakt="SE-P-SIP")
    kontrakt = plan(created="2024-09-02")
    s = _followed(
        event("2024-10-01", EventCode.AW010, plan_ref="lifecare:SIP-77"), plans=(sip, kontrakt)
    )
    task = _only(decide(s, d("2024-12-30"), RULES), TaskType.FOLLOW_UP)
    assert task.focus == PlanFocus("lifecare:SIP-77")
    assert task.owner == Owner(OwnerKind.PRACTITIONER, "SE-P-SIP")


def test_follow_up_owner_falls_back_to_the_plans_unit() -> None:
    s = _followed(plans=(plan(fast_vardkontakt=None, unit=UNIT_B),))
    task = _only(decide(s, d("2024-12-01"), RULES), TaskType.FOLLOW_UP)
    assert task.owner == Owner(OwnerKind.ORGANIZATION, UNIT_B)


def test_owner_ignores_a_participant_without_hsa_id() -> None:
    p = plan(fast_vardkontakt="")
    task = _only(decide(_followed(plans=(p,)), d("2024-12-01"), RULES), TaskType.FOLLOW_UP)
    assert task.owner == Owner(OwnerKind.ORGANIZATION, UNIT)


# --- renew-plan ---


def test_renew_plan_not_on_valid_until_but_the_day_after() -> None:
    s = state(plans=(plan(valid_until="2025-03-02"),))
    assert _of_type(decide(s, d("2025-03-02"), RULES), TaskType.RENEW_PLAN) == []
    task = _only(decide(s, d("2025-03-03"), RULES), TaskType.RENEW_PLAN)
    assert task.opens_on == d("2025-03-03")
    assert task.due == d("2025-03-02") + timedelta(days=RENEW_DAYS)
    assert task.occasion == "cosmic:VP-1001|2025-03-02"
    assert task.focus == PlanFocus("cosmic:VP-1001")
    assert task.owner == Owner(OwnerKind.PRACTITIONER, FVK)
    assert task.business_status is TaskBusinessStatus.DUE


def test_renew_plan_overdue_after_its_due_day() -> None:
    s = state(plans=(plan(valid_until="2025-03-02"),))
    due = d("2025-03-02") + timedelta(days=RENEW_DAYS)
    assert (
        _only(decide(s, due, RULES), TaskType.RENEW_PLAN).business_status is TaskBusinessStatus.DUE
    )
    late = _only(decide(s, due + timedelta(days=1), RULES), TaskType.RENEW_PLAN)
    assert late.business_status is TaskBusinessStatus.OVERDUE


@pytest.mark.parametrize("status", [PlanStatus.REVOKED, PlanStatus.COMPLETED, PlanStatus.DRAFT])
def test_no_renewal_of_a_plan_that_is_not_active(status: PlanStatus) -> None:
    s = state(plans=(plan(status=status, valid_until="2025-03-02"),))
    assert decide(s, d("2025-04-01"), RULES) == []


def test_plan_without_valid_until_never_needs_renewal() -> None:
    assert decide(state(plans=(plan(),)), d("2030-01-01"), RULES) == []


def test_decisions_are_sorted_and_deterministic() -> None:
    s = state(
        entries=(entry("2024-12-09"),),
        plans=(plan(valid_until="2024-11-30", created="2024-06-01"),),
    )
    first = decide(s, d("2024-12-10"), RULES)
    assert [t.task_type for t in first] == [TaskType.FOLLOW_UP, TaskType.RENEW_PLAN]
    assert first == decide(s, d("2024-12-10"), RULES)
