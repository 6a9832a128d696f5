"""The follow-up engine on a real HAPI server: Tasks created from what the server holds, valid
against the profile, unchanged by a rerun; completed, opened anew, cancelled with a reason as the
records change; a person's changes kept. Each test has its own unit (HSA-id), so a unit scan
sees only its own patients however much else the shared server holds."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import date, datetime

import pytest

from adapter import canonical as c
from adapter.canonical import TaskType
from adapter.domain import EventCode
from adapter.fhirclient import FhirClient
from adapter.followup.load import load_states, patient_refs_of
from adapter.followup.reconcile import (
    FollowupReport,
    RequestCounter,
    TaskWriter,
    plan_all,
    run_followups,
)
from adapter.followup.rules import ActionKind
from adapter.settings import EndpointSettings
from tests.support.followups import (
    DEC_10,
    LEFT_GROUP,
    MAPPINGS,
    RULES,
    counts,
    listed,
    one_task,
    plan_of,
    run_cli,
    scan,
    tasks_of,
    versions,
    write,
)
from tests.support.people import fictional_person as new_person
from tests.support.profiles import errors
from tests.support.records import KARIN, STOCKHOLM, discharge, event

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("profiles_installed")]


def test_a_scan_creates_valid_tasks_and_a_rerun_writes_nothing(
    fhir_client: FhirClient, unit: str
) -> None:
    no_plan, with_plan, discharged = new_person(), new_person(), new_person()
    notice = replace(
        discharge(discharged, message_id=f"LC-{uuid.uuid4().hex[:10]}"),
        ready_at=datetime(2024, 12, 9, 14, 0, tzinfo=STOCKHOLM),  # a Monday
    )
    write(
        fhir_client,
        [
            *listed(no_plan, unit),
            *listed(with_plan, unit),
            plan_of(with_plan, unit),
            *listed(discharged, unit),
            notice,
        ],
    )
    report = scan(fhir_client, unit, DEC_10)
    assert report.patients == 3
    assert counts(report) == {
        ("create", "establish-plan"): 2,
        ("create", "follow-up"): 1,
        ("create", "sip-call"): 1,
    }
    assert report.bundles == 1  # four Tasks, one transaction

    establish = one_task(fhir_client, no_plan, TaskType.ESTABLISH_PLAN)
    assert establish["owner"]["type"] == "Organization"
    assert establish["owner"]["identifier"]["value"] == unit
    assert establish["restriction"]["period"]["end"] == "2025-01-01"  # 2024-12-02 + 30
    assert establish["reasonReference"]["reference"].startswith("RiskAssessment/")
    assert "focus" not in establish  # no plan to act on: the risk assessment is the reason
    follow_up = one_task(fhir_client, with_plan, TaskType.FOLLOW_UP)
    assert follow_up["owner"] == {
        "type": "Practitioner",
        "identifier": {"system": c.HSA_ID, "value": KARIN},
    }
    assert follow_up["restriction"]["period"]["end"] == "2024-12-19"
    assert follow_up["focus"]["reference"].startswith("CarePlan/")
    sip_call = one_task(fhir_client, discharged, TaskType.SIP_CALL)
    assert sip_call["restriction"]["period"]["end"] == "2024-12-12"  # 3 working days
    assert sip_call["reasonReference"]["reference"].startswith("Encounter/")
    assert "focus" not in sip_call
    for person in (no_plan, with_plan, discharged):
        for task in tasks_of(fhir_client, person):
            assert task["status"] == "requested"
            assert errors(fhir_client.validate(task, c.PROFILE_TASK)) == []

    before = versions(fhir_client, (no_plan, with_plan, discharged))
    again = scan(fhir_client, unit, DEC_10)
    assert (again.changes, again.bundles, again.patients) == (0, 0, 3)
    assert len(again.open_tasks) == 4
    assert versions(fhir_client, (no_plan, with_plan, discharged)) == before


def test_an_aw010_completes_the_follow_up_and_the_next_one_opens_in_time(
    fhir_client: FhirClient, unit: str
) -> None:
    patient = new_person()
    plan = plan_of(patient, unit)
    write(fhir_client, [*listed(patient, unit), plan])
    assert counts(scan(fhir_client, unit, DEC_10)) == {("create", "follow-up"): 1}

    aw010 = replace(
        event(patient, code=EventCode.AW010, unit=unit, plan_ref=plan.key),
        date=date(2024, 12, 12),
    )
    write(fhir_client, [aw010])
    assert counts(scan(fhir_client, unit, date(2024, 12, 12))) == {("complete", "follow-up"): 1}
    done = one_task(fhir_client, patient, TaskType.FOLLOW_UP)
    assert done["status"] == "completed"
    assert done["statusReason"] == {"text": "Uppföljd 2024-12-12 (AW010)"}

    # The next one: due 90 days after the AW010, open from 14 days before that.
    assert scan(fhir_client, unit, date(2025, 2, 25)).changes == 0
    assert counts(scan(fhir_client, unit, date(2025, 2, 26))) == {("create", "follow-up"): 1}
    upcoming = one_task(fhir_client, patient, TaskType.FOLLOW_UP, status="requested")
    assert upcoming["restriction"]["period"]["end"] == "2025-03-12"


def test_leaving_the_risk_group_cancels_the_task_with_a_reason(
    fhir_client: FhirClient, unit: str
) -> None:
    leaver, newcomer = new_person(), new_person()
    write(fhir_client, listed(leaver, unit))
    assert counts(scan(fhir_client, unit, DEC_10)) == {("create", "establish-plan"): 1}
    write(fhir_client, listed(newcomer, unit, runs=[date(2024, 12, 16)], risk="31.0"))
    report = scan(fhir_client, unit, date(2024, 12, 17))
    assert counts(report) == {("cancel", "establish-plan"): 1, ("create", "establish-plan"): 1}
    cancelled = one_task(fhir_client, leaver, TaskType.ESTABLISH_PLAN)
    assert cancelled["status"] == "cancelled"
    assert cancelled["statusReason"] == {"text": LEFT_GROUP}
    assert one_task(fhir_client, newcomer, TaskType.ESTABLISH_PLAN)["status"] == "requested"


def test_a_dry_run_writes_nothing(fhir_client: FhirClient, unit: str) -> None:
    patient = new_person()
    write(fhir_client, listed(patient, unit))
    report = scan(fhir_client, unit, DEC_10, dry_run=True)
    assert counts(report) == {("create", "establish-plan"): 1}
    assert [row.person for row in report.open_tasks] == [patient]
    assert report.bundles == 0
    assert tasks_of(fhir_client, patient) == []


def test_the_quick_check_marks_overdue_once(fhir_client: FhirClient, unit: str) -> None:
    patient = new_person()
    write(fhir_client, listed(patient, unit))
    scan(fhir_client, unit, DEC_10)
    late = date(2025, 1, 2)
    report = scan(fhir_client, unit, late, quick=True)
    assert counts(report) == {("update", "establish-plan"): 1}
    task = one_task(fhir_client, patient, TaskType.ESTABLISH_PLAN)
    assert task["businessStatus"]["coding"][0]["code"] == "overdue"
    assert task["meta"]["versionId"] == "2"
    assert scan(fhir_client, unit, late, quick=True).changes == 0
    assert one_task(fhir_client, patient, TaskType.ESTABLISH_PLAN)["meta"]["versionId"] == "2"


def test_a_change_made_meanwhile_is_kept_not_overwritten(
    fhir_client: FhirClient, unit: str
) -> None:
    patient = new_person()
    write(fhir_client, listed(patient, unit))
    scan(fhir_client, unit, DEC_10)
    late = date(2025, 1, 2)
    loaded = load_states(fhir_client, as_of=late, rules=RULES, units=[unit], mappings=MAPPINGS)
    works = plan_all(loaded, RULES)
    assert [a.kind for w in works for a in w.actions] == [ActionKind.UPDATE]

    # A person takes the Task after the engine read it, before it writes.
    task = one_task(fhir_client, patient, TaskType.ESTABLISH_PLAN)
    task |= {"status": "in-progress", "note": [{"text": "Bokat möte"}]}
    fhir_client.update(task)

    report = FollowupReport(late, dry_run=False)
    TaskWriter(fhir_client, RULES, late, MAPPINGS, report, batch_size=200).write(works)
    assert report.errors == []
    assert counts(report) == {("update", "establish-plan"): 1}
    after = one_task(fhir_client, patient, TaskType.ESTABLISH_PLAN)
    assert (after["status"], after["note"]) == ("in-progress", [{"text": "Bokat möte"}])
    assert after["businessStatus"]["coding"][0]["code"] == "overdue"


def test_a_patient_scan_touches_only_that_patient(fhir_client: FhirClient, unit: str) -> None:
    mine, other = new_person(), new_person()
    write(fhir_client, [*listed(mine, unit), *listed(other, unit)])
    (ref,) = patient_refs_of(fhir_client, [mine])
    report = run_followups(fhir_client, RULES, DEC_10, patient_refs=[ref], mappings=MAPPINGS)
    assert counts(report) == {("create", "establish-plan"): 1}
    assert len(tasks_of(fhir_client, mine)) == 1
    assert tasks_of(fhir_client, other) == []
    # The unit scan then adds only the other patient's Task: the same streak, no second one.
    report = scan(fhir_client, unit, DEC_10)
    assert counts(report) == {("create", "establish-plan"): 1}
    assert len(tasks_of(fhir_client, mine)) == 1


def test_a_patient_scan_sees_a_run_the_patient_missed(fhir_client: FhirClient, unit: str) -> None:
    """Back in the group after a run without them: a new episode, so a new Task."""
    patient, other = new_person(), new_person()
    runs = [date(2024, 11, 25), date(2024, 12, 2), date(2024, 12, 9)]
    write(
        fhir_client, [*listed(patient, unit, runs=[runs[0], runs[2]]), *listed(other, unit, runs)]
    )
    (ref,) = patient_refs_of(fhir_client, [patient])
    run_followups(fhir_client, RULES, DEC_10, patient_refs=[ref], mappings=MAPPINGS)
    task = one_task(fhir_client, patient, TaskType.ESTABLISH_PLAN)
    assert task["restriction"]["period"]["start"] == "2024-12-09"  # not 2024-11-25


def test_cli_summary_and_table_mask_the_personnummer(
    fhir_client: FhirClient, hapi_base_url: str, unit: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    patient = new_person()
    write(fhir_client, listed(patient, unit))
    args = ("followups", "--unit", unit, "--as-of", "2024-12-10")
    result = run_cli(monkeypatch, hapi_base_url, *args, "--dry-run")
    assert result.exit_code == 0, result.output
    assert "Skapade: 1" in result.output and "torrkörning" in result.output
    assert patient.masked in result.output and patient.digits not in result.output
    assert tasks_of(fhir_client, patient) == []
    written = run_cli(monkeypatch, hapi_base_url, *args)
    assert written.exit_code == 0, written.output
    assert "Upprätta SIP eller patientkontrakt" in written.output
    assert len(tasks_of(fhir_client, patient)) == 1


def test_a_unit_scan_reads_in_bulk_not_per_patient(
    hapi_base_url: str, fhir_client: FhirClient, unit: str
) -> None:
    people = [new_person() for _ in range(120)]
    write(fhir_client, [row for person in people for row in listed(person, unit)])
    counter = RequestCounter()
    with FhirClient(EndpointSettings(base_url=hapi_base_url), on_request=counter) as client:
        report = scan(client, unit, DEC_10)
    assert report.patients == 120
    assert counts(report) == {("create", "establish-plan"): 120}
    assert report.bundles == 1  # 120 Tasks in one transaction (batch size 200)
    # Two chunks of 100 patients, one search per type each (a few pages at HAPI's default
    # maximum of 50 per page), the scope and the runs: tens of round-trips, not one per patient.
    assert counter.count <= 45, counter.count


def test_a_patient_the_server_refuses_does_not_stop_the_others(
    fhir_client: FhirClient, unit: str
) -> None:
    refused, fine = new_person(), new_person()
    write(fhir_client, [*listed(refused, unit), plan_of(refused, unit), *listed(fine, unit)])
    loaded = load_states(fhir_client, as_of=DEC_10, rules=RULES, units=[unit], mappings=MAPPINGS)
    works = plan_all(loaded, RULES)
    # The plan the refused patient's follow-up Task acts on disappears before the write (HAPI
    # checks the references it indexes: Task.focus, not Task.reasonReference).
    (entry,) = next(w for w in works if w.patient.person == refused).entries
    resource_type, resource_id = entry["resource"]["focus"]["reference"].split("/")
    assert resource_type == "CarePlan"
    fhir_client.delete(resource_type, resource_id)
    report = FollowupReport(DEC_10, dry_run=False)
    TaskWriter(fhir_client, RULES, DEC_10, MAPPINGS, report, batch_size=200).write(works)
    assert len(report.errors) == 1 and report.errors[0].startswith(refused.masked)
    assert refused.digits not in report.errors[0]
    assert counts(report) == {("create", "establish-plan"): 1}
    assert tasks_of(fhir_client, refused) == []
    assert len(tasks_of(fhir_client, fine)) == 1
