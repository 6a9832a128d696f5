"""Tasks built from the rules and read back as stored."""

from __future__ import annotations

import copy

from adapter.canonical import TaskType
from adapter.followup.rules import (
    TaskDecision,
    decide,
)
from adapter.followup.tasks import (
    new_task,
)
from tests.support.rules import RULES, d, entry, plan, run, state

AS_OF = d("2024-12-10")


PLAN = plan(created="2024-09-20")  # follow-up due 2024-12-19, open from 2024-12-05


STATE = state(entries=(entry("2024-12-09"),), runs=(run("2024-12-09"),), plans=(PLAN,))


PATIENT_REF = "Patient/17"


FOCUS_REF = "CarePlan/42"


def follow_up(as_of: str = "2024-12-10") -> TaskDecision:
    (decision,) = [x for x in decide(STATE, d(as_of), RULES) if x.task_type is TaskType.FOLLOW_UP]
    return decision


def stored(task: dict, task_id: str = "99", version: str = "1") -> dict:
    """What the server gives back: an id and its bookkeeping in meta."""
    result = copy.deepcopy(task)
    result["id"] = task_id
    result["meta"] = {**result["meta"], "versionId": version, "lastUpdated": "2024-12-10T06:00Z"}
    return result


def build(decision: TaskDecision | None = None) -> dict:
    return new_task(
        decision or follow_up(),
        patient_reference=PATIENT_REF,
        focus_reference=FOCUS_REF,
        authored_on=AS_OF,
    )
