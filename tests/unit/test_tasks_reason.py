"""Task.focus is the plan acted on; what caused a Task is Task.reasonReference (issue 11.5).

establish-plan is caused by a Prea60 RiskAssessment and sip-call by a discharge Encounter: no plan
is acted on, so they have no `focus`. Tasks written before held those reasons in `focus`; they are
still read and reconciled (no duplicate), and moved to `reasonReference` once.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from adapter.canonical import TaskType
from adapter.domain import Record
from adapter.followup.reconcile import plan_patient
from adapter.followup.rules import ActionKind, Outcome
from adapter.followup.tasks import closed_task, read_task
from tests.support.readback import PATIENT, loaded
from tests.support.records import discharge, prea60_row
from tests.support.rules import RULES

Json = dict[str, Any]
# In the risk group (23.5 %) without a plan → establish-plan; a notice needing a SIP → sip-call.
RECORDS: list[Record] = [
    prea60_row(PATIENT, run=date(2024, 12, 9)),
    discharge(PATIENT, message_id="LC-7"),
]
AS_OF = date(2024, 12, 20)


def _written(entries: list[Json]) -> list[Json]:
    """The Tasks of a plan of writes as the server stores them (ids and versions given)."""
    return [
        entry["resource"]
        | {"id": str(500 + n), "meta": {**entry["resource"]["meta"], "versionId": "1"}}
        for n, entry in enumerate(entries)
    ]


def _by_type(tasks: list[Json]) -> dict[str, Json]:
    return {t["code"]["coding"][0]["code"]: t for t in tasks}


def test_establish_plan_and_sip_call_give_their_cause_as_reason_not_focus() -> None:
    work = plan_patient(loaded(RECORDS), AS_OF, RULES)
    tasks = _by_type([e["resource"] for e in work.entries])
    assert set(tasks) == {TaskType.ESTABLISH_PLAN.value, TaskType.SIP_CALL.value}
    establish, call = tasks[TaskType.ESTABLISH_PLAN.value], tasks[TaskType.SIP_CALL.value]
    assert "focus" not in establish and "focus" not in call
    assert establish["reasonReference"]["reference"].startswith("RiskAssessment/")
    assert call["reasonReference"]["reference"].startswith("Encounter/")
    # Read back: the same occasions, so a rerun plans nothing.
    again = plan_patient(loaded(RECORDS, _written(work.entries)), AS_OF, RULES)
    assert (again.actions, again.entries) == ([], [])


def _as_written_before(task: Json) -> Json:
    """The Task as the adapter wrote it before: the reason in `focus`."""
    old = {k: v for k, v in task.items() if k != "reasonReference"}
    return old | {"focus": task["reasonReference"]}


def test_old_tasks_with_the_reason_in_focus_are_read_moved_once_and_not_duplicated() -> None:
    first = plan_patient(loaded(RECORDS), AS_OF, RULES)
    old = [_as_written_before(t) for t in _written(first.entries)]
    read = [read_task(t) for t in old]
    assert all(
        t is not None and t.focus_reference == t.resource["focus"]["reference"] for t in read
    )

    rerun = plan_patient(loaded(RECORDS, old), AS_OF, RULES)
    assert [(a.kind, a.changes) for a in rerun.actions] == [(ActionKind.UPDATE, ("reason",))] * 2
    assert all(
        e["request"]["method"] == "PUT" and e["request"]["url"].startswith("Task/5")
        for e in rerun.entries
    )
    moved = [e["resource"] for e in rerun.entries]
    assert all("focus" not in t and "reasonReference" in t for t in moved)
    assert {t["id"] for t in moved} == {t["id"] for t in old}  # the same Tasks, no new ones
    assert [t["reasonReference"] for t in moved] == [t["focus"] for t in old]

    settled = [t | {"meta": {**t["meta"], "versionId": "2"}} for t in moved]
    again = plan_patient(loaded(RECORDS, settled), AS_OF, RULES)
    assert (again.actions, again.entries) == ([], [])


def test_closing_an_old_task_moves_its_reason_too() -> None:
    first = plan_patient(loaded(RECORDS), AS_OF, RULES)
    old = _as_written_before(_written(first.entries)[0])
    closed = closed_task(old, Outcome.CANCELLED, "Gäller inte längre")
    assert "focus" not in closed and closed["reasonReference"] == old["focus"]
    plan_focused = old | {"focus": {"reference": "CarePlan/9"}}
    assert closed_task(plan_focused, Outcome.COMPLETED, "Klar")["focus"] == {
        "reference": "CarePlan/9"
    }
