"""From server resources back to the rules' facts (adapter/followup/facts.py), and the per-patient
plan of writes (reconcile.plan_patient) — without a server: the mapping's output, stored as a
server stores it (ids assigned, conditional references resolved)."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest

from adapter import canonical as c
from adapter.canonical import TaskType
from adapter.domain import EventCode, PlanStatus, Record
from adapter.followup.facts import (
    FocusIndex,
    PatientFacts,
    local_day,
    merged,
    patient_facts,
    person_of,
    reference_of,
)
from adapter.followup.load import LoadedPatient
from adapter.followup.reconcile import DUPLICATE_REASON, focus_reference, plan_patient
from adapter.followup.rules import ActionKind, NoticeFocus, PlanFocus, RiskFocus, decide
from adapter.followup.state import PatientState, unit_runs_of
from tests.support.readback import PATIENT, TRANSLATIONS, UNIT, facts_of, loaded, server_copy
from tests.support.records import discharge, event, patientkontrakt, prea60_row, sip
from tests.support.rules import RULES


def records() -> list[Record]:
    active = replace(
        patientkontrakt(PATIENT), created=date(2024, 9, 20), updated=date(2024, 10, 20)
    )
    return [
        prea60_row(PATIENT, run=date(2024, 12, 2)),
        prea60_row(PATIENT, run=date(2024, 12, 9)),
        active,
        sip(PATIENT, status=PlanStatus.REVOKED),
        event(PATIENT, plan_ref="cosmic:VP-1001"),
        event(PATIENT, code=EventCode.UPPF, plan_ref=None),
        event(PATIENT, code=EventCode.SIPKALL, plan_ref=None, contact=None),
        discharge(PATIENT, message_id="LC-7"),
    ]


def test_the_state_read_back_from_the_server_decides_like_the_records() -> None:
    recs = records()
    read = facts_of(recs).state
    direct = PatientState.from_records(
        PATIENT, recs, unit_runs_of(r for r in recs if hasattr(r, "run_date"))
    )
    assert read.patient == direct.patient
    assert {(e.unit_hsa_id, e.run_date, e.risk_percent) for e in read.risk_entries} == {
        (e.unit_hsa_id, e.run_date, e.risk_percent) for e in direct.risk_entries
    }
    assert set(read.unit_runs) == set(direct.unit_runs)
    assert sorted(read.events, key=str) == sorted(direct.events, key=str)
    assert read.notices == direct.notices
    simple = [
        (p.key, p.kind, p.status, p.created, p.updated, p.version, p.unit_hsa_id, p.valid_until)
        for p in read.plans
    ]
    assert simple == [
        (p.key, p.kind, p.status, p.created, p.updated, p.version, p.unit_hsa_id, p.valid_until)
        for p in sorted(direct.plans, key=lambda p: p.key)
    ]
    roles = RULES.params.owner.participant_roles
    assert [p.participant_hsa_id(roles) for p in read.plans] == [
        p.participant_hsa_id(roles) for p in sorted(direct.plans, key=lambda p: p.key)
    ]
    assert {x.task_type for x in decide(read, date(2025, 3, 10), RULES)} == {
        TaskType.FOLLOW_UP,
        TaskType.SIP_CALL,
        TaskType.RENEW_PLAN,
    }
    for as_of in ("2024-12-10", "2024-12-20", "2025-03-10"):
        assert decide(read, date.fromisoformat(as_of), RULES) == decide(
            direct, date.fromisoformat(as_of), RULES
        )


def test_focus_index_points_at_the_stored_resources() -> None:
    facts = facts_of(records())
    plan_ref = facts.focus.reference(PlanFocus("cosmic:VP-1001"))
    assert plan_ref is not None and plan_ref.startswith("CarePlan/")
    assert facts.focus.focus(plan_ref) == PlanFocus("cosmic:VP-1001")
    assert str(facts.focus.reference(RiskFocus(UNIT, date(2024, 12, 9)))).startswith(
        "RiskAssessment/"
    )
    assert str(facts.focus.reference(NoticeFocus("LC-7"))).startswith("Encounter/")
    assert facts.focus.focus("CarePlan/nope") is None


def test_what_is_not_a_follow_up_fact_is_left_out() -> None:
    resources = server_copy(records())
    for resource in resources:
        if resource["resourceType"] == "RiskAssessment":
            resource["method"] = {"coding": [{"system": "urn:other", "code": "lace"}]}
        if resource["resourceType"] == "Procedure":
            resource["status"] = "entered-in-error"
        if resource["resourceType"] == "Encounter":
            resource["status"] = "cancelled"
        if resource["resourceType"] == "CarePlan":  # a vårdplan, but not a patientkontrakt
            resource["category"] = [{"coding": [{"system": c.INERA_CAREPLAN_TYPE, "code": "VP"}]}]
            resource["extension"] = [
                e for e in resource["extension"] if e["url"] != c.EXT_PLAN_KIND
            ]
    owned = [r for r in resources if r["resourceType"] != "Patient"]
    state = patient_facts(PATIENT, owned, TRANSLATIONS, RULES.calendar).state
    assert (state.risk_entries, state.plans, state.events, state.notices) == ((), (), (), ())


def test_a_careplan_someone_else_wrote_without_our_extensions_is_version_one() -> None:
    resources = server_copy([records()[2]])
    plan = next(r for r in resources if r["resourceType"] == "CarePlan")
    plan["extension"] = [e for e in plan["extension"] if e["url"] == c.EXT_PLAN_KIND]
    owned = [r for r in resources if r["resourceType"] != "Patient"]
    (facts,) = patient_facts(PATIENT, owned, TRANSLATIONS, RULES.calendar).state.plans
    assert (facts.version, facts.updated) == (1, facts.created)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2024-12-09", date(2024, 12, 9)),
        ("2024-12-08T23:30:00Z", date(2024, 12, 9)),  # local time in Stockholm
        ("2024-12-09T10:00:00+01:00", date(2024, 12, 9)),
        ("2024-12", None),
        (None, None),
    ],
)
def test_local_day(value: str | None, expected: date | None) -> None:
    assert local_day(value, RULES.calendar) == expected


def test_reference_of() -> None:
    assert reference_of({"reference": "http://x/fhir/Patient/3/_history/2"}) == "Patient/3"
    assert reference_of({"reference": "Patient?identifier=a|b"}) is None
    assert reference_of({"display": "x"}) is None


def test_person_of_reads_samordningsnummer_and_skips_others() -> None:
    assert person_of({"identifier": [{"system": c.SAMORDNINGSNUMMER, "value": "196703612384"}]})
    assert person_of({"identifier": [{"system": "urn:other", "value": "194005059805"}]}) is None


def test_merged_facts_hold_both_patients_records() -> None:
    recs = records()
    first = facts_of(recs[:4])
    second = facts_of(recs[4:])
    both = merged(first, second)
    assert len(both.state.events) == 3 and len(both.state.plans) == 2
    assert both.focus.reference(NoticeFocus("LC-7")) is not None


# --- the per-patient plan of writes ---


def test_plan_patient_creates_conditionally_and_updates_with_if_match() -> None:
    recs = [r for r in records() if not hasattr(r, "message_id")]
    first = plan_patient(loaded(recs), date(2025, 1, 6), RULES)  # AW010 2024-10-21 + 90 - 14
    assert [a.kind for a in first.actions] == [ActionKind.CREATE]
    (entry,) = first.entries
    assert entry["request"]["method"] == "PUT"
    assert entry["request"]["url"].startswith(f"Task?identifier={c.ID_TASK}|")
    assert entry["fullUrl"].startswith("urn:uuid:")
    task = entry["resource"] | {
        "id": "500",
        "meta": {"versionId": "4", "profile": [c.PROFILE_TASK]},
    }
    assert task["focus"]["reference"].startswith("CarePlan/")
    # Later, past due: an update of that Task, If-Match on the version read.
    later = plan_patient(loaded(recs, [task]), date(2025, 1, 25), RULES)
    assert [a.kind for a in later.actions] == [ActionKind.UPDATE]
    (update,) = later.entries
    assert update["request"] == {"method": "PUT", "url": "Task/500", "ifMatch": 'W/"4"'}
    assert [r.business_status.value for r in later.rows] == ["overdue"]  # type: ignore[union-attr]
    assert [r.status for r in later.rows] == ["requested"]
    same = plan_patient(loaded(recs, [task]), date(2025, 1, 6), RULES)
    assert (same.actions, same.entries) == ([], [])
    assert [r.task_type for r in same.rows] == [TaskType.FOLLOW_UP]


def test_a_second_open_task_of_one_occasion_is_cancelled_as_a_duplicate() -> None:
    recs = [r for r in records() if not hasattr(r, "message_id")]
    (entry,) = plan_patient(loaded(recs), date(2025, 1, 6), RULES).entries
    older = entry["resource"] | {"id": "7", "authoredOn": "2025-01-05", "meta": {"versionId": "1"}}
    newer = entry["resource"] | {"id": "8", "meta": {"versionId": "2"}}
    work = plan_patient(loaded(recs, [newer, older]), date(2025, 1, 6), RULES)
    assert [(a.kind, a.reason) for a in work.actions] == [(ActionKind.CANCEL, DUPLICATE_REASON)]
    (cancel,) = work.entries
    assert cancel["request"]["url"] == "Task/8"
    assert cancel["resource"]["status"] == "cancelled"


def test_a_decision_without_owner_is_counted_not_written() -> None:
    notice_only = [discharge(PATIENT, message_id="LC-8")]
    work = plan_patient(loaded(notice_only), date(2024, 12, 20), RULES)
    assert (work.entries, work.without_owner) == ([], 1)


def test_focus_index_falls_back_to_a_conditional_reference_for_plans() -> None:
    patient = LoadedPatient("Patient/1", PatientFacts(PatientState(PATIENT), [], FocusIndex()))
    assert focus_reference(patient, PlanFocus("a:b")) == f"CarePlan?identifier={c.ID_PLAN}|a:b"
    assert focus_reference(patient, RiskFocus(UNIT, date(2024, 1, 1))) is None


def test_an_older_patientkontrakt_with_its_kind_inside_category_is_still_read() -> None:
    resources = server_copy([records()[2]])
    plan = next(r for r in resources if r["resourceType"] == "CarePlan")
    plan["extension"] = [e for e in plan["extension"] if e["url"] != c.EXT_PLAN_KIND]
    plan["category"][0]["coding"].append({"system": c.CS_PLAN_KIND, "code": "patientkontrakt"})
    owned = [r for r in resources if r["resourceType"] != "Patient"]
    (facts,) = patient_facts(PATIENT, owned, TRANSLATIONS, RULES.calendar).state.plans
    assert facts.kind.value == "patientkontrakt"
