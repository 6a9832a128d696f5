"""reconcile_plan and classify: from the open Tasks on the server to create/update/close."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from datetime import timedelta

import pytest

from adapter.canonical import TaskBusinessStatus, TaskType
from adapter.domain import EventCode, PlanStatus
from adapter.followup.rules import (
    Action,
    ActionKind,
    OpenTask,
    Outcome,
    Owner,
    OwnerKind,
    PlanFocus,
    RiskFocus,
    applicable,
    apply_actions,
    classify,
    decide,
    reconcile_plan,
)
from adapter.followup.state import PatientState
from tests.support.rules import FVK, RULES, UNIT, UNIT_B, d, entry, event, notice, plan, run, state

RUNS = (run("2024-09-09"), run("2024-12-09"), run("2025-03-03"), run("2025-06-02"))
IN_GROUP = (entry("2024-09-09"), entry("2024-12-09"))
DRAFT = plan(status=PlanStatus.DRAFT, created="2024-10-01", valid_until="2025-03-02")
ACTIVE = replace(DRAFT, status=PlanStatus.ACTIVE, created=d("2024-10-14"), updated=d("2024-10-14"))
REVOKED = replace(ACTIVE, status=PlanStatus.REVOKED, updated=d("2025-03-10"))
LC_9001 = notice("LC-9001", "2024-12-19 14:30")

# A patient's year: (as_of, state, the actions expected that day).
TIMELINE: list[tuple[str, PatientState, dict[tuple[ActionKind, TaskType], int]]] = [
    (
        "2024-09-10",
        state(entries=IN_GROUP[:1], runs=RUNS),
        {(ActionKind.CREATE, TaskType.ESTABLISH_PLAN): 1},
    ),
    # A draft names the fast vårdkontakt: the Task changes owner.
    (
        "2024-10-01",
        state(entries=IN_GROUP[:1], runs=RUNS, plans=(DRAFT,)),
        {(ActionKind.UPDATE, TaskType.ESTABLISH_PLAN): 1},
    ),
    (
        "2024-10-14",
        state(entries=IN_GROUP[:1], runs=RUNS, plans=(ACTIVE,)),
        {(ActionKind.COMPLETE, TaskType.ESTABLISH_PLAN): 1},
    ),
    ("2024-12-10", state(entries=IN_GROUP, runs=RUNS, plans=(ACTIVE,)), {}),
    (
        "2024-12-19",
        state(entries=IN_GROUP, runs=RUNS, plans=(ACTIVE,), notices=(LC_9001,)),
        {(ActionKind.CREATE, TaskType.SIP_CALL): 1},
    ),
    (
        "2024-12-20",
        state(
            entries=IN_GROUP,
            runs=RUNS,
            plans=(ACTIVE,),
            notices=(LC_9001,),
            events=(event("2024-12-20", EventCode.SIPKALL),),
        ),
        {(ActionKind.COMPLETE, TaskType.SIP_CALL): 1},
    ),
    # 2024-10-14 + 90 = 2025-01-12; the Task opens 14 days before.
    (
        "2024-12-29",
        state(entries=IN_GROUP, runs=RUNS, plans=(ACTIVE,)),
        {(ActionKind.CREATE, TaskType.FOLLOW_UP): 1},
    ),
    ("2025-01-12", state(entries=IN_GROUP, runs=RUNS, plans=(ACTIVE,)), {}),
    (
        "2025-01-13",
        state(entries=IN_GROUP, runs=RUNS, plans=(ACTIVE,)),
        {(ActionKind.UPDATE, TaskType.FOLLOW_UP): 1},
    ),
    (
        "2025-01-20",
        state(
            entries=IN_GROUP,
            runs=RUNS,
            plans=(ACTIVE,),
            events=(event("2025-01-20", EventCode.AW010),),
        ),
        {(ActionKind.COMPLETE, TaskType.FOLLOW_UP): 1},
    ),
    # Absent from the 2025-03-03 run; the plan's valid_until (2025-03-02) has passed.
    (
        "2025-03-03",
        state(entries=IN_GROUP, runs=RUNS, plans=(ACTIVE,)),
        {(ActionKind.CREATE, TaskType.RENEW_PLAN): 1},
    ),
    (
        "2025-03-10",
        state(entries=IN_GROUP, runs=RUNS, plans=(REVOKED,)),
        {(ActionKind.CANCEL, TaskType.RENEW_PLAN): 1},
    ),
    # Back in the risk group: a new establish-plan Task.
    (
        "2025-06-02",
        state(entries=(*IN_GROUP, entry("2025-06-02")), runs=RUNS, plans=(REVOKED,)),
        {(ActionKind.CREATE, TaskType.ESTABLISH_PLAN): 1},
    ),
]


def _kinds(actions: list[Action]) -> dict[tuple[ActionKind, TaskType], int]:
    return dict(Counter((a.kind, a.task_type) for a in actions))


def _without_focus(tasks: list[OpenTask]) -> list[OpenTask]:
    return [replace(t, focus=None) for t in tasks]


@pytest.mark.parametrize("server_gives_focus", [True, False])
def test_timeline_is_reconciled_step_by_step_and_idempotent(server_gives_focus: bool) -> None:
    open_tasks: list[OpenTask] = []
    closed: set[str] = set()
    created_keys: list[str] = []
    for as_of, s, expected in TIMELINE:
        day = d(as_of)
        seen = open_tasks if server_gives_focus else _without_focus(open_tasks)
        actions = reconcile_plan(seen, s, day, RULES, closed)
        assert _kinds(actions) == expected, as_of
        created_keys += [a.key for a in actions if a.kind is ActionKind.CREATE]
        closed |= {a.key for a in actions if a.kind in (ActionKind.COMPLETE, ActionKind.CANCEL)}
        open_tasks = apply_actions(seen, actions)
        assert reconcile_plan(open_tasks, s, day, RULES, closed) == [], as_of
        assert {t.key for t in open_tasks} == {x.key for x in decide(s, day, RULES)}, as_of
    assert len(created_keys) == len(set(created_keys))  # re-entry got a key of its own
    assert not closed & {t.key for t in open_tasks}


def test_reconcile_is_pure() -> None:
    _, s, _ = TIMELINE[4]
    assert reconcile_plan([], s, d("2024-12-19"), RULES) == reconcile_plan(
        [], s, d("2024-12-19"), RULES
    )


def test_create_carries_the_whole_decision() -> None:
    s = state(entries=(entry("2024-12-09"),))
    (action,) = reconcile_plan([], s, d("2024-12-10"), RULES)
    assert action.kind is ActionKind.CREATE
    assert action.decision == decide(s, d("2024-12-10"), RULES)[0]
    assert action.reason is None


def test_status_change_is_an_update_naming_the_field() -> None:
    s = state(entries=(entry("2024-12-09"),))
    task = OpenTask.of(decide(s, d("2024-12-10"), RULES)[0])
    later = task.due + timedelta(days=1)
    (action,) = reconcile_plan([task], s, later, RULES)
    assert action.kind is ActionKind.UPDATE
    assert action.changes == ("business_status",)
    assert action.decision is not None
    assert action.decision.business_status is TaskBusinessStatus.OVERDUE


def test_update_of_due_and_owner() -> None:
    s = state(entries=(entry("2024-12-09"),))
    decision = decide(s, d("2024-12-10"), RULES)[0]
    stale = replace(
        OpenTask.of(decision), due=d("2025-02-01"), owner=Owner(OwnerKind.ORGANIZATION, UNIT_B)
    )
    (action,) = reconcile_plan([stale], s, d("2024-12-10"), RULES)
    assert action.changes == ("due", "owner")


def test_task_without_focus_on_the_server_is_not_updated_for_it() -> None:
    s = state(entries=(entry("2024-12-09"),))
    task = replace(OpenTask.of(decide(s, d("2024-12-10"), RULES)[0]), focus=None)
    assert reconcile_plan([task], s, d("2024-12-10"), RULES) == []


def test_new_run_moves_the_establish_plan_focus() -> None:
    first = state(entries=(entry("2024-11-11"),), runs=(run("2024-11-11"),))
    task = OpenTask.of(decide(first, d("2024-11-12"), RULES)[0])
    second = state(
        entries=(entry("2024-11-11"), entry("2024-12-09")),
        runs=(run("2024-11-11"), run("2024-12-09")),
    )
    (action,) = reconcile_plan([task], second, d("2024-12-10"), RULES)
    assert (action.kind, action.changes) == (ActionKind.UPDATE, ("focus",))
    assert action.decision is not None
    assert action.decision.focus == RiskFocus(UNIT, d("2024-12-09"))


def _open(s: PatientState, as_of: str) -> list[OpenTask]:
    return [OpenTask.of(x) for x in decide(s, d(as_of), RULES)]


def _single(actions: list[Action]) -> Action:
    assert len(actions) == 1, actions
    return actions[0]


def test_left_risk_group_cancels_establish_plan_with_reason() -> None:
    before = state(entries=(entry("2024-11-11"),), runs=(run("2024-11-11"), run("2024-12-09")))
    action = _single(reconcile_plan(_open(before, "2024-11-12"), before, d("2024-12-10"), RULES))
    assert action.kind is ActionKind.CANCEL
    assert action.reason == "Patienten ingår inte längre i riskgruppen (senaste Prea60-körningen)"


def test_left_risk_group_cancels_follow_up() -> None:
    s = state(entries=IN_GROUP, runs=RUNS[:2], plans=(ACTIVE,))
    tasks = _open(s, "2025-01-01")
    assert [t.task_type for t in tasks] == [TaskType.FOLLOW_UP]
    dropped = replace(s, unit_runs=(*s.unit_runs, run("2025-01-02")))  # absent from a new run
    action = _single(reconcile_plan(tasks, dropped, d("2025-01-02"), RULES))
    assert (action.kind, action.reason) == (
        ActionKind.CANCEL,
        "Patienten ingår inte längre i riskgruppen (senaste Prea60-körningen)",
    )


def test_revoked_plan_cancels_follow_up_and_asks_for_a_new_plan() -> None:
    s = state(entries=IN_GROUP, runs=RUNS[:2], plans=(ACTIVE,))
    tasks = _open(s, "2025-01-01")
    revoked = replace(
        s, plans=(replace(ACTIVE, status=PlanStatus.REVOKED, updated=d("2025-01-02")),)
    )
    actions = reconcile_plan(tasks, revoked, d("2025-01-02"), RULES)
    assert _kinds(actions) == {
        (ActionKind.CANCEL, TaskType.FOLLOW_UP): 1,
        (ActionKind.CREATE, TaskType.ESTABLISH_PLAN): 1,
    }
    cancel = next(a for a in actions if a.kind is ActionKind.CANCEL)
    assert cancel.reason == "Patienten har ingen aktiv SIP eller patientkontrakt"
    create = next(a for a in actions if a.kind is ActionKind.CREATE)
    assert create.decision is not None and create.decision.occasion == f"{UNIT}|2025-01-02"


def test_plan_established_completes_with_the_plan_named() -> None:
    s = state(entries=(entry("2024-09-09"),), runs=RUNS[:1])
    tasks = _open(s, "2024-09-10")
    sip = plan("lifecare:SIP-77", created="2024-10-14")
    action = _single(reconcile_plan(tasks, replace(s, plans=(sip,)), d("2024-10-14"), RULES))
    assert action.kind is ActionKind.COMPLETE
    assert action.reason == "Plan upprättad (patientkontrakt lifecare:SIP-77)"


def test_follow_up_completed_by_a_new_version_of_the_plan() -> None:
    s = state(entries=IN_GROUP, runs=RUNS[:2], plans=(ACTIVE,))
    tasks = _open(s, "2025-01-01")
    v2 = replace(ACTIVE, version=2, updated=d("2025-01-05"))
    action = _single(reconcile_plan(tasks, replace(s, plans=(v2,)), d("2025-01-05"), RULES))
    assert (action.kind, action.reason) == (
        ActionKind.COMPLETE,
        "Uppföljd 2025-01-05 (ny version av planen)",
    )


def test_sip_call_cancelled_when_the_notice_no_longer_needs_both() -> None:
    s = state(notices=(LC_9001,))
    tasks = _open(s, "2024-12-19")
    changed = replace(s, notices=(replace(LC_9001, needs_sip=False),))
    action = _single(reconcile_plan(tasks, changed, d("2024-12-20"), RULES))
    assert (action.kind, action.reason) == (
        ActionKind.CANCEL,
        "Meddelandet anger inte längre behov av insatser från både kommun och region",
    )


def test_sip_call_cancelled_when_the_notice_is_gone() -> None:
    s = state(notices=(LC_9001,))
    action = _single(reconcile_plan(_open(s, "2024-12-19"), state(), d("2024-12-20"), RULES))
    assert (action.kind, action.reason) == (
        ActionKind.CANCEL,
        "Utskrivningsmeddelandet finns inte längre",
    )


def test_late_sipkall_still_completes() -> None:
    s = state(notices=(LC_9001,))
    late = replace(s, events=(event("2025-01-08", EventCode.SIPKALL),))
    action = _single(reconcile_plan(_open(s, "2024-12-28"), late, d("2025-01-08"), RULES))
    assert (action.kind, action.reason) == (
        ActionKind.COMPLETE,
        "Kallelse till SIP registrerad 2025-01-08",
    )


def test_renewed_plan_completes_the_renew_task_when_the_focus_is_known() -> None:
    s = state(plans=(plan(valid_until="2025-03-02"),))
    tasks = _open(s, "2025-03-03")
    renewed = state(plans=(plan(valid_until="2026-03-02", version=2, updated="2025-03-05"),))
    action = _single(reconcile_plan(tasks, renewed, d("2025-03-05"), RULES))
    assert (action.kind, action.reason) == (
        ActionKind.COMPLETE,
        "Planen har förnyats (giltig till 2026-03-02)",
    )
    # Without the focus the earlier valid_until cannot be traced: closed, not claimed done.
    action = _single(reconcile_plan(_without_focus(tasks), renewed, d("2025-03-05"), RULES))
    assert action.kind is ActionKind.CANCEL


def test_revoked_plan_cancels_the_renew_task() -> None:
    s = state(plans=(plan(valid_until="2025-03-02"),))
    revoked = state(plans=(plan(valid_until="2025-03-02", status=PlanStatus.REVOKED),))
    action = _single(reconcile_plan(_open(s, "2025-03-03"), revoked, d("2025-03-04"), RULES))
    assert (action.kind, action.reason) == (
        ActionKind.CANCEL,
        "Planen är inte längre aktiv (återkallad)",
    )


def test_classify_keeps_what_still_applies_even_before_it_opens() -> None:
    s = state(entries=IN_GROUP, runs=RUNS[:2], plans=(ACTIVE,))
    pending = next(
        x for x in applicable(s, d("2024-12-10"), RULES) if x.task_type is TaskType.FOLLOW_UP
    )
    assert pending.opens_on > d("2024-12-10")
    task = OpenTask.of(pending)
    assert classify(task, s, d("2024-12-10"), RULES) is None
    assert reconcile_plan([task], s, d("2024-12-10"), RULES) == []


def test_classify_an_establish_plan_task_by_its_units() -> None:
    s = state(entries=(entry("2024-12-09"),))
    foreign = OpenTask("0" * 64, TaskType.ESTABLISH_PLAN, focus=RiskFocus(UNIT_B, d("2024-06-03")))
    closure = classify(foreign, s, d("2024-12-10"), RULES)
    assert closure is not None and closure.outcome is Outcome.CANCELLED
    assert closure.reason.startswith("Patienten ingår inte längre")
    same_unit = replace(foreign, focus=RiskFocus(UNIT, d("2024-06-03")))
    closure = classify(same_unit, s, d("2024-12-10"), RULES)
    assert closure is not None and closure.reason == "Ersatt av en ny uppgift om att upprätta plan"


def test_classify_finds_the_occasion_from_history_without_focus() -> None:
    # The task was opened for the 2024-09-02 follow-up; the state shows an AW010 since.
    s = state(entries=IN_GROUP, runs=RUNS[:2], plans=(plan(fast_vardkontakt=FVK),))
    task = replace(_open(s, "2024-12-01")[0], focus=None)
    followed = replace(s, events=(event("2024-12-03", EventCode.AW010),))
    closure = classify(task, followed, d("2024-12-03"), RULES)
    assert closure is not None
    assert (closure.outcome, closure.reason) == (Outcome.COMPLETED, "Uppföljd 2024-12-03 (AW010)")
    assert PlanFocus("cosmic:VP-1001") == decide(s, d("2024-12-01"), RULES)[0].focus


def test_a_task_a_person_closed_is_not_opened_again() -> None:
    s = state(entries=(entry("2024-12-09"),))
    (wanted,) = decide(s, d("2024-12-10"), RULES)
    assert reconcile_plan([], s, d("2024-12-10"), RULES, closed_keys={wanted.key}) == []
    # A new occasion (back in the group after leaving) does get a Task.
    runs = (run("2024-12-09"), run("2025-01-13"), run("2025-02-10"))
    back = state(entries=(entry("2024-12-09"), entry("2025-02-10")), runs=runs)
    (action,) = reconcile_plan([], back, d("2025-02-11"), RULES, closed_keys={wanted.key})
    assert action.kind is ActionKind.CREATE and action.key != wanted.key


def test_follow_up_after_leaving_and_coming_back_is_a_new_task() -> None:
    runs = (run("2024-09-09"), run("2024-12-09"), run("2025-01-13"), run("2025-02-10"))
    s = state(entries=(entry("2024-09-09"), entry("2024-12-09")), runs=runs, plans=(ACTIVE,))
    first = reconcile_plan([], s, d("2025-01-01"), RULES)
    assert _kinds(first) == {(ActionKind.CREATE, TaskType.FOLLOW_UP): 1}
    tasks = apply_actions([], first)
    # Absent from the 2025-01-13 run: cancelled.
    (cancel,) = reconcile_plan(tasks, s, d("2025-01-13"), RULES)
    assert cancel.kind is ActionKind.CANCEL
    # Back in the 2025-02-10 run, still no follow-up since 2024-10-14: a new, overdue Task.
    back = replace(s, risk_entries=(*s.risk_entries, entry("2025-02-10")))
    (create,) = reconcile_plan([], back, d("2025-02-10"), RULES, closed_keys={cancel.key})
    assert create.kind is ActionKind.CREATE and create.key != cancel.key
    assert create.decision is not None
    assert create.decision.business_status is TaskBusinessStatus.OVERDUE
