"""The pure Task builder and reader (adapter/followup/tasks.py): decisions → Task JSON → back."""

from __future__ import annotations

import copy
from dataclasses import replace

import pytest

from adapter import canonical as c
from adapter.domain import PlanStatus
from adapter.followup.rules import (
    ActionKind,
    OpenTask,
    Outcome,
    Owner,
    OwnerKind,
    PlanFocus,
    reconcile_plan,
)
from adapter.followup.tasks import (
    OPEN_STATUSES,
    closed_task,
    read_task,
    revised_task,
)
from adapter.mapping.r4 import check_structure
from tests.support.rules import FVK, RULES, UNIT, d
from tests.support.tasks import AS_OF, FOCUS_REF, PATIENT_REF, PLAN, STATE, build, follow_up, stored


def test_new_task_carries_every_element_of_the_profile() -> None:
    decision = follow_up()
    task = build(decision)
    check_structure(task)  # R4 structure, no R4B-only element
    assert task["meta"] == {"profile": [c.PROFILE_TASK]}
    assert task["identifier"] == [{"system": c.ID_TASK, "value": decision.key}]
    assert (task["status"], task["intent"]) == ("requested", "order")
    assert task["code"] == {"coding": [{"system": c.CS_TASK_TYPE, "code": "follow-up"}]}
    assert task["businessStatus"] == {
        "coding": [{"system": c.CS_TASK_BUSINESS_STATUS, "code": "due"}]
    }
    assert task["for"] == {"reference": PATIENT_REF}
    assert task["focus"] == {"reference": FOCUS_REF}
    assert task["authoredOn"] == "2024-12-10"
    assert task["restriction"] == {"period": {"start": "2024-12-05", "end": "2024-12-19"}}
    assert task["owner"] == {
        "type": "Practitioner",
        "identifier": {"system": c.HSA_ID, "value": FVK},
    }
    assert task["requester"] == {
        "type": "Organization",
        "identifier": {"system": c.HSA_ID, "value": UNIT},
    }
    assert task["description"] == decision.description
    assert "Följ upp patientkontrakt" in task["description"]


def test_a_unit_owner_is_an_organization() -> None:
    decision = replace(follow_up(), owner=Owner(OwnerKind.ORGANIZATION, UNIT))
    assert build(decision)["owner"]["type"] == "Organization"


def test_no_task_without_an_owner() -> None:
    with pytest.raises(ValueError, match="owner"):
        build(replace(follow_up(), owner=None))


def test_the_builder_is_pure() -> None:
    assert build() == build()


def test_read_back_gives_the_open_task_the_rules_compare_with() -> None:
    decision = follow_up()
    task = read_task(stored(build(decision)))
    assert task is not None
    assert (task.id, task.version, task.key) == ("99", "1", decision.key)
    assert task.is_open and task.reference == "Task/99"
    assert (task.focus_reference, task.patient_reference, task.unit_hsa_id) == (
        FOCUS_REF,
        PATIENT_REF,
        UNIT,
    )
    assert task.open_task(decision.focus) == OpenTask.of(decision)
    # ... so the rules see nothing to do on a rerun
    again = reconcile_plan([task.open_task(decision.focus)], STATE, AS_OF, RULES)
    assert again == []


def test_a_day_later_past_due_the_read_back_task_needs_its_status_updated() -> None:
    task = read_task(stored(build(follow_up())))
    assert task is not None
    (action,) = reconcile_plan([task.open_task(PlanFocus(PLAN.key))], STATE, d("2024-12-20"), RULES)
    assert (action.kind, action.changes) == (ActionKind.UPDATE, ("business_status",))


def test_revised_task_keeps_what_others_set_and_drops_server_bookkeeping() -> None:
    current = stored(build(follow_up()), version="3")
    current["status"] = "in-progress"  # a person took it
    current["note"] = [{"text": "Ringt, återkommer"}]
    before = copy.deepcopy(current)
    later = follow_up("2024-12-20")
    new_owner = replace(later, owner=Owner(OwnerKind.PRACTITIONER, "SE2321000057-P00000000099"))
    task = revised_task(current, new_owner, focus_reference="CarePlan/43")
    assert current == before  # not mutated
    assert (task["id"], task["status"], task["note"]) == ("99", "in-progress", current["note"])
    assert task["meta"] == {"profile": [c.PROFILE_TASK]}
    assert task["businessStatus"]["coding"][0]["code"] == "overdue"
    assert task["owner"]["identifier"]["value"] == "SE2321000057-P00000000099"
    assert task["focus"] == {"reference": "CarePlan/43"}
    assert task["authoredOn"] == "2024-12-10"  # when it was made, not when revised
    check_structure(task)


@pytest.mark.parametrize("outcome", list(Outcome))
def test_closed_task_has_status_and_reason(outcome: Outcome) -> None:
    current = stored(build(follow_up()))
    before = copy.deepcopy(current)
    task = closed_task(current, outcome, "Uppföljd 2024-12-12 (AW010)")
    assert current == before
    assert task["status"] == outcome.value
    assert task["statusReason"] == {"text": "Uppföljd 2024-12-12 (AW010)"}
    changed = ("status", "statusReason", "meta", "text")  # the narrative says the new status
    assert {k: v for k, v in task.items() if k not in changed} == {
        k: v for k, v in current.items() if k not in changed
    }
    assert "status avslutad" in task["text"]["div"] or "status avbruten" in task["text"]["div"]
    closed = read_task(task | {"id": "99"})
    assert closed is not None and not closed.is_open
    check_structure(task)


@pytest.mark.parametrize(
    "change",
    [
        lambda t: t.update(identifier=[{"system": "urn:other", "value": "1"}]),
        lambda t: t.update(code={"coding": [{"system": c.CS_TASK_TYPE, "code": "fika"}]}),
        lambda t: t.update(code={"coding": [{"system": "urn:other", "code": "follow-up"}]}),
        lambda t: t.pop("id"),
    ],
    ids=["other identifier", "unknown code", "other code system", "no id"],
)
def test_someone_elses_task_is_not_read_as_ours(change) -> None:  # type: ignore[no-untyped-def]
    task = stored(build())
    change(task)
    assert read_task(task) is None


def test_open_statuses() -> None:
    task = stored(build())
    for status in ("requested", "in-progress", "on-hold", "accepted"):
        assert read_task(task | {"status": status}).is_open  # type: ignore[union-attr]
    for status in ("completed", "cancelled", "rejected", "failed", "entered-in-error"):
        assert status not in OPEN_STATUSES
        assert not read_task(task | {"status": status}).is_open  # type: ignore[union-attr]


def test_unknown_business_status_and_owner_read_as_none() -> None:
    task = stored(build())
    task["businessStatus"] = {"text": "snart"}
    task["owner"] = {"display": "Någon"}
    found = read_task(task)
    assert found is not None
    assert (found.business_status, found.owner) == (None, None)
    assert found.due == d("2024-12-19")


def test_revoked_plan_closes_the_follow_up_by_the_rules_and_the_builder_says_why() -> None:
    current = stored(build(follow_up()))
    revoked = replace(PLAN, status=PlanStatus.REVOKED, updated=d("2024-12-12"))
    now = replace(STATE, plans=(revoked,))
    task = read_task(current)
    assert task is not None
    (action,) = [
        a
        for a in reconcile_plan([task.open_task(PlanFocus(PLAN.key))], now, d("2024-12-13"), RULES)
        if a.key == task.key
    ]
    assert action.kind is ActionKind.CANCEL and action.reason
    closed = closed_task(current, Outcome.CANCELLED, action.reason)
    assert closed["statusReason"]["text"] == "Patienten har ingen aktiv SIP eller patientkontrakt"
    assert closed["businessStatus"] == current["businessStatus"]  # as it stood when closed
