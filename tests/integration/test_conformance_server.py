"""Issue 11 on a real HAPI server: a Goal dropped by a new plan version ends up cancelled (and a
rerun adds no version); follow-up Tasks written the old way (the reason in `focus`) are moved to
`reasonReference` once, without a duplicate, and then validate against the profile."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from adapter import canonical as c
from adapter.canonical import TaskType
from adapter.fhirclient import FhirClient
from adapter.followup.load import patient_refs_of
from adapter.mapping import map_record, transaction_bundle
from tests.support.followups import (
    DEC_10,
    MAPPINGS,
    counts,
    listed,
    one_task,
    plan_of,
    scan,
    tasks_of,
    versions,
    write,
)
from tests.support.people import fictional_person as new_person
from tests.support.people import fictional_personnummer
from tests.support.profiles import errors
from tests.support.records import KARIN, STOCKHOLM, discharge
from tests.support.sync import importer, plan_line

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("profiles_installed")]
Json = dict[str, Any]


def _goal(client: FhirClient, key: str) -> Json:
    (found,) = client.search("Goal", [("identifier", f"{c.ID_GOAL}|{key}")], post=True)
    return found


def _import(base_url: str, data_dir: Path, path: Path, *, force: bool = False) -> None:
    runner, _ = importer(base_url, data_dir)
    runner.force = force
    result = runner.run([path])
    assert result.complete, result.stop


def test_a_goal_dropped_by_a_new_plan_version_is_cancelled_on_the_server(
    fhir_client: FhirClient, hapi_base_url: str, tmp_path: Path
) -> None:
    plan_id = f"P-{os.urandom(4).hex()}"
    patient = fictional_personnummer()
    first, second = tmp_path / "plans-v1.jsonl", tmp_path / "plans-v2.jsonl"
    first.write_text(plan_line(plan_id, 1, patient, goals=2) + "\n", encoding="utf-8")
    second.write_text(plan_line(plan_id, 2, patient, goals=1) + "\n", encoding="utf-8")
    data = tmp_path / "data"
    keep, drop = f"synctest:{plan_id}:g0", f"synctest:{plan_id}:g1"

    _import(hapi_base_url, data, first)
    assert _goal(fhir_client, drop)["lifecycleStatus"] == "active"
    _import(hapi_base_url, data, second)
    kept, dropped = _goal(fhir_client, keep), _goal(fhir_client, drop)
    assert (kept["lifecycleStatus"], dropped["lifecycleStatus"]) == ("active", "cancelled")
    assert dropped["description"] == {"text": "Mål 1 v1"}  # the Goal as it was, now cancelled
    (plan,) = fhir_client.search("CarePlan", [("identifier", f"{c.ID_PLAN}|synctest:{plan_id}")])
    assert [g["reference"] for g in plan["goal"]] == [f"Goal/{kept['id']}"]
    assert errors(fhir_client.validate(dropped, c.PROFILE_GOAL)) == []

    before = {g["id"]: g["meta"]["versionId"] for g in (kept, dropped)}
    _import(hapi_base_url, data, second)  # a rerun
    _import(hapi_base_url, data, second, force=True)  # even one that maps and writes again
    after = {
        g["id"]: g["meta"]["versionId"]
        for g in (_goal(fhir_client, keep), _goal(fhir_client, drop))
    }
    assert after == before


def _as_written_before(task: Json) -> Json:
    old = {k: v for k, v in task.items() if k not in ("reasonReference", "meta")}
    return old | {"focus": task["reasonReference"], "meta": {"profile": task["meta"]["profile"]}}


def test_old_tasks_with_the_reason_in_focus_are_moved_once_not_duplicated(
    fhir_client: FhirClient,
    unit: str,
) -> None:
    person = new_person()
    notice = replace(
        discharge(person, message_id=f"LC-{os.urandom(5).hex()}"),
        ready_at=datetime(2024, 12, 9, 14, 0, tzinfo=STOCKHOLM),
    )
    write(fhir_client, [*listed(person, unit), notice])
    scan(fhir_client, unit, DEC_10)
    for task in tasks_of(fhir_client, person):  # as the adapter wrote them before
        fhir_client.update(_as_written_before(task))
    old = tasks_of(fhir_client, person)
    assert {t["focus"]["reference"].split("/")[0] for t in old} == {"RiskAssessment", "Encounter"}

    report = scan(fhir_client, unit, DEC_10)
    assert counts(report) == {
        ("update", TaskType.ESTABLISH_PLAN.value): 1,
        ("update", TaskType.SIP_CALL.value): 1,
    }
    moved = tasks_of(fhir_client, person)
    assert {t["id"] for t in moved} == {t["id"] for t in old}  # the same two Tasks
    for task in moved:
        assert "focus" not in task and "reasonReference" in task
        assert errors(fhir_client.validate(task, c.PROFILE_TASK)) == []
    # An old Task fails the new profile: the reason is not a plan acted on.
    found = errors(fhir_client.validate(old[0], c.PROFILE_TASK))
    assert found and any("focus" in e or "CarePlan" in e for e in found), found

    settled = versions(fhir_client, [person])
    assert counts(scan(fhir_client, unit, DEC_10)) == {}
    assert versions(fhir_client, [person]) == settled


def test_care_teams_written_with_the_oid_still_give_the_task_its_owner(
    fhir_client: FhirClient,
    unit: str,
) -> None:
    person = new_person()
    resources = [
        m for r in [*listed(person, unit), plan_of(person, unit)] for m in map_record(r, MAPPINGS)
    ]
    bundle = json.loads(
        json.dumps(transaction_bundle(resources)).replace(
            c.INERA_FAST_KONTAKT, c.INERA_FAST_KONTAKT_OID
        )
    )
    fhir_client.transaction(bundle)  # as the adapter wrote CareTeams before: the OID as system
    (patient_ref,) = patient_refs_of(fhir_client, [person])
    (team,) = fhir_client.search("CareTeam", [("subject", patient_ref)], post=True)
    assert c.INERA_FAST_KONTAKT_OID in json.dumps(team["participant"])
    scan(fhir_client, unit, DEC_10)
    task = one_task(fhir_client, person, TaskType.FOLLOW_UP)
    assert task["owner"]["type"] == "Practitioner"
    assert task["owner"]["identifier"] == {"system": c.HSA_ID, "value": KARIN}
