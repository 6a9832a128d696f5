"""Mapping: domain records → profiled FHIR R4 resources and transaction Bundles (no server).

The record builders at the top are also used by the integration tests (tests/integration/
test_map_validate.py), which send the same resources to a real HAPI server.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import replace
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from adapter import canonical as c
from adapter.domain import (
    Consent,
    Event,
    EventCode,
    Huvudman,
    IdKind,
    PersonId,
    PlanAction,
    PlanStatus,
    Prea60Row,
    Record,
    Responsible,
)
from adapter.mapping import (
    MappedResource,
    MappingError,
    Mappings,
    MappingsError,
    load_mappings,
    map_record,
    match_url,
    stable_digest,
    transaction_bundle,
)
from adapter.mapping.bundle import full_url
from adapter.mapping.r4 import check_structure, r4b_only_elements
from adapter.mapping.readback import (
    discharge_facts,
    event_plan_key,
    fast_vardkontakt,
    listing_unit,
    plan_revision,
)
from adapter.settings import REPO_ROOT
from tests.support.records import (
    KARIN,
    PER,
    STOCKHOLM,
    UNIT,
    by_type,
    codes,
    discharge,
    event,
    ext,
    has_ext,
    one,
    patientkontrakt,
    person,
    prea60_row,
    sample_records,
    sip,
)

# --- record builders (also used by the integration tests) ---


# --- helpers ---


@pytest.fixture(scope="module")
def mappings() -> Mappings:
    return load_mappings(REPO_ROOT / "mappings")


def patient_url(patient: PersonId) -> str:
    return f"Patient?identifier={patient.system}|{patient.digits}"


PROFILES = {
    "Patient": c.PROFILE_PATIENT,
    "RiskAssessment": c.PROFILE_RISK_ASSESSMENT,
    "Goal": c.PROFILE_GOAL,
    "CareTeam": c.PROFILE_CARETEAM,
    "Procedure": c.PROFILE_PROCEDURE,
    "Encounter": c.PROFILE_DISCHARGE,
}


# --- Patient ---


def test_prea60_gives_a_full_patient_with_name_and_listing(mappings: Mappings) -> None:
    patient, _ = map_record(prea60_row(), mappings)
    assert patient.resource_type == "Patient" and not patient.create_only
    resource = patient.resource
    assert resource["identifier"] == [{"system": c.PERSONNUMMER, "value": "193803139801"}]
    assert resource["name"] == [
        {"use": "official", "family": "Lind", "given": ["Åsa", "Maria"], "text": "Åsa Maria Lind"}
    ]
    unit, gp = resource["generalPractitioner"]
    assert unit == {
        "type": "Organization",
        "identifier": {"system": c.HSA_ID, "value": UNIT},
        "display": "Aneby vårdcentral",
    }
    assert gp == {"type": "Practitioner", "identifier": {"system": c.HSA_ID, "value": PER}}


def test_samordningsnummer_gets_its_own_identifier_system(mappings: Mappings) -> None:
    patient = map_record(prea60_row(person("196703612384", IdKind.SAMORDNINGSNUMMER)), mappings)[0]
    assert patient.identifier_system == c.SAMORDNINGSNUMMER
    assert patient.resource["identifier"][0]["system"] == c.SAMORDNINGSNUMMER


@pytest.mark.parametrize("record", [patientkontrakt(), event(), discharge()], ids=type)
def test_other_sources_give_a_create_only_patient_stub(record: Record, mappings: Mappings) -> None:
    patient = map_record(record, mappings)[0]
    assert patient.resource_type == "Patient" and patient.create_only
    assert set(patient.resource) == {
        *("resourceType", "meta", "text", "identifier"),
        *("name", "gender", "birthDate"),  # what IneraEHDSPatient needs (tests: test_mapping_inera)
    }
    assert patient.resource["identifier"][0]["value"] == record.patient.digits


# --- RiskAssessment ---


def test_risk_assessment_elements(mappings: Mappings) -> None:
    ra = one(map_record(prea60_row(), mappings), "RiskAssessment")
    assert ra["status"] == "final"
    assert codes(ra["method"]) == {(c.CS_RISK_MODEL, "prea60")}
    assert ra["subject"] == {"reference": patient_url(person())}
    assert ra["occurrenceDateTime"] == "2024-12-09"
    (prediction,) = ra["prediction"]
    assert codes(prediction["outcome"]) == {(c.SNOMED, c.SNOMED_HOSPITAL_ADMISSION)}
    assert prediction["probabilityDecimal"] == 23.5
    assert prediction["whenPeriod"] == {"start": "2024-12-09", "end": "2025-02-07"}
    unit = ext(ra, c.EXT_LISTING_UNIT)["valueReference"]
    assert unit["identifier"] == {"system": c.HSA_ID, "value": UNIT}
    assert unit["display"] == "Aneby vårdcentral"


def test_risk_assessment_identifier_is_a_stable_digest_of_unit_run_and_patient(
    mappings: Mappings,
) -> None:
    def key(row: Prea60Row) -> str:
        return map_record(row, mappings)[1].identifier_value

    first = key(prea60_row())
    assert re.fullmatch(r"[0-9a-f]{64}", first)
    assert key(prea60_row()) == first
    assert key(replace(prea60_row(), risk_percent=Decimal("40"))) == first  # a re-run corrects
    assert key(prea60_row(unit="SE-other")) != first
    assert key(prea60_row(run=date(2024, 12, 16))) != first
    # same birth date, other number: the full number counts, not its masked form
    assert key(prea60_row(person("193803139819"))) != first


# --- CarePlan, Goal, CareTeam ---


def test_plan_maps_patient_goals_team_then_careplan(mappings: Mappings) -> None:
    resources = map_record(sip(), mappings)
    assert [r.resource_type for r in resources] == [
        "Patient",
        "Goal",
        "Goal",
        "CareTeam",
        "CarePlan",
    ]
    plan = resources[-1].resource
    assert plan["goal"] == [{"reference": r.match_url} for r in resources[1:3]]
    assert plan["careTeam"] == [{"reference": resources[3].match_url}]


def test_sip_careplan_elements(mappings: Mappings) -> None:
    plan = one(map_record(sip(), mappings), "CarePlan")
    assert plan["meta"] == {
        "profile": [c.PROFILE_SIP_CAREPLAN],
        "source": f"{c.SOURCE_BASE}/lifecare",
    }
    assert plan["identifier"] == [{"system": c.ID_PLAN, "value": "lifecare:SIP-77"}]
    assert (plan["status"], plan["intent"], plan["title"]) == (
        "active",
        "plan",
        "SIP efter utskrivning",
    )
    assert [codes(cat) for cat in plan["category"]] == [{(c.INERA_CAREPLAN_TYPE, "SIP")}]
    assert plan["created"] == "2024-10-14"
    assert plan["period"] == {"start": "2024-10-14"}
    assert plan["author"]["identifier"] == {"system": c.HSA_ID, "value": UNIT}
    assert ext(plan, c.EXT_PLAN_VERSION)["valueInteger"] == 2
    assert ext(plan, c.EXT_PLAN_UPDATED)["valueDate"] == "2024-10-21"
    assert ext(plan, c.EXT_WHAT_MATTERS)["valueString"] == "Att kunna bo kvar hemma"
    overall = ext(plan, c.EXT_OVERALL_RESPONSIBILITY)["valueCoding"]
    assert (overall["system"], overall["code"]) == (c.CS_RESPONSIBLE, "kommun")
    kva = ext(plan, c.EXT_PLAN_KVA)["valueCoding"]
    assert (kva["system"], kva["code"]) == (c.KVA, "AU125")


def test_sip_actions_say_who_is_responsible_and_who_performs(mappings: Mappings) -> None:
    record = sip()
    resources = map_record(record, mappings)
    plan = resources[-1].resource
    goal_g1 = {"reference": resources[1].match_url}
    details = [a["detail"] for a in plan["activity"]]
    actions = details[: len(record.actions)]
    responsible = [ext(d, c.EXT_RESPONSIBLE)["valueCoding"]["code"] for d in actions]
    assert responsible == ["kommun", "kommun", "narstaende", "patient", "region"]
    hemtjanst, rehab, shopping, training, coordination = actions
    assert hemtjanst["description"] == "Hemtjänst morgon och kväll"
    assert hemtjanst["status"] == "in-progress"
    assert hemtjanst["performer"] == [{"display": "Hemtjänst (kommunen)"}]
    role = ext(hemtjanst, c.EXT_PERFORMER_ROLE)["valueCodeableConcept"]
    assert codes(role) == {(c.CS_PARTICIPANT_ROLE, "hemtjanst")}
    assert rehab["goal"] == [goal_g1] and "goal" not in hemtjanst
    assert shopping["performer"] == [{"display": "Anna Ekström (dotter)"}]  # the närstående
    assert training["performer"] == [{"reference": patient_url(record.patient)}]
    assert training["goal"] == [goal_g1]
    assert coordination["performer"] == [{"display": "Regionen"}]


def test_action_performed_by_a_named_participant_refers_to_them_by_hsa_id(
    mappings: Mappings,
) -> None:
    plan = one(map_record(patientkontrakt(), mappings), "CarePlan")
    review = plan["activity"][1]["detail"]
    assert review["performer"] == [
        {
            "type": "Practitioner",
            "identifier": {"system": c.HSA_ID, "value": PER},
            "display": "Per Holm",
        }
    ]
    role = ext(review, c.EXT_PERFORMER_ROLE)["valueCodeableConcept"]
    assert codes(role) == {(c.INERA_FAST_KONTAKT, "2")}


def test_follow_up_and_agreed_appointments_are_scheduled_activities(mappings: Mappings) -> None:
    kontrakt = one(map_record(patientkontrakt(), mappings), "CarePlan")
    follow_up, appointment = (a["detail"] for a in kontrakt["activity"][2:])
    assert follow_up["kind"] == "Appointment" and follow_up["status"] == "scheduled"
    assert codes(follow_up["code"]) == {(c.CS_LOCAL_ACTIVITY, "UPPF")}
    assert follow_up["scheduledPeriod"] == {"start": "2024-11-29", "end": "2024-11-29"}
    assert appointment["description"] == "Överenskommen tid med distriktssköterska"
    assert appointment["performer"] == [{"display": "distriktssköterska"}]
    sip_follow_up = one(map_record(sip(), mappings), "CarePlan")["activity"][-1]["detail"]
    assert codes(sip_follow_up["code"]) == {(c.KVA, "AW010")}


def test_patientkontrakt_category_and_no_sip_only_extensions(mappings: Mappings) -> None:
    record = replace(patientkontrakt(), kva="AU124", overall_responsibility=Huvudman.REGION)
    plan = one(map_record(record, mappings), "CarePlan")
    assert plan["meta"]["profile"] == [c.PROFILE_PATIENTKONTRAKT_CAREPLAN]
    # Inera's binding covers every category: the plan kind is an extension (test_mapping_inera)
    assert [codes(cat) for cat in plan["category"]] == [{(c.INERA_CAREPLAN_TYPE, "VP")}]
    assert plan["period"] == {"start": "2024-09-02", "end": "2025-03-02"}
    assert not has_ext(plan, c.EXT_PLAN_KVA)
    assert not has_ext(plan, c.EXT_OVERALL_RESPONSIBILITY)


@pytest.mark.parametrize(
    ("status", "careplan", "goal", "team", "action"),
    [
        (PlanStatus.DRAFT, "draft", "proposed", "proposed", "not-started"),
        (PlanStatus.ACTIVE, "active", "active", "active", "in-progress"),
        (PlanStatus.COMPLETED, "completed", "completed", "inactive", "completed"),
        (PlanStatus.REVOKED, "revoked", "cancelled", "inactive", "stopped"),
    ],
)
def test_plan_status_maps_to_each_resource(
    status: PlanStatus, careplan: str, goal: str, team: str, action: str, mappings: Mappings
) -> None:
    resources = map_record(sip(status=status), mappings)
    assert one(resources, "CarePlan")["status"] == careplan
    assert {g["lifecycleStatus"] for g in by_type(resources, "Goal")} == {goal}
    assert one(resources, "CareTeam")["status"] == team
    assert one(resources, "CarePlan")["activity"][0]["detail"]["status"] == action


def test_a_new_plan_version_keeps_every_identifier(mappings: Mappings) -> None:
    first = map_record(patientkontrakt(version=1), mappings)
    second = map_record(
        replace(patientkontrakt(version=2), status=PlanStatus.COMPLETED, title="Ny titel"),
        mappings,
    )
    assert [r.match_url for r in first] == [r.match_url for r in second]
    assert ext(second[-1].resource, c.EXT_PLAN_VERSION)["valueInteger"] == 2
    assert ext(second[-1].resource, c.EXT_PLAN_UPDATED)["valueDate"] == "2024-10-02"


def test_goals(mappings: Mappings) -> None:
    own, care = by_type(map_record(sip(), mappings), "Goal")
    assert own["identifier"] == [{"system": c.ID_GOAL, "value": "lifecare:SIP-77:g1"}]
    assert own["description"] == {"text": "Klara förflyttning själv"}
    assert own["target"] == [{"dueDate": "2025-01-31"}]
    assert own["expressedBy"] == {"reference": patient_url(person("193106199817"))}
    assert "expressedBy" not in care and "target" not in care


def test_care_team_roles_members_and_huvudman(mappings: Mappings) -> None:
    team = one(map_record(sip(), mappings), "CareTeam")
    assert team["identifier"] == [{"system": c.ID_CARETEAM, "value": "lifecare:SIP-77"}]
    assert team["subject"] == {"reference": patient_url(person("193106199817"))}
    karin, lena, anna, patient, ola, *_ = team["participant"]
    assert codes(karin["role"][0]) == {(c.INERA_FAST_KONTAKT, "1")}
    assert karin["member"]["identifier"] == {"system": c.HSA_ID, "value": KARIN}
    assert karin["onBehalfOf"] == {"display": "Aneby vårdcentral"}
    assert ext(karin, c.EXT_HUVUDMAN)["valueCoding"]["code"] == "region"
    assert codes(lena["role"][0]) == {(c.CS_PARTICIPANT_ROLE, "bistandshandlaggare")}
    assert lena["member"] == {"display": "Lena Berg"}
    assert ext(lena, c.EXT_HUVUDMAN)["valueCoding"]["code"] == "kommun"
    assert codes(anna["role"][0]) == {(c.CS_PARTICIPANT_ROLE, "narstaende")}
    assert "extension" not in anna and "onBehalfOf" not in anna
    assert patient["member"] == {"reference": patient_url(person("193106199817"))}
    assert ola["role"] == [{"text": "kurator"}]  # unmapped: text only (extensible binding)


def test_an_action_naming_a_missing_goal_is_a_mapping_error(mappings: Mappings) -> None:
    record = replace(sip(), actions=(PlanAction("x", Responsible.PATIENT, goal="g9"),))
    with pytest.raises(MappingError) as caught:
        map_record(record, mappings)
    assert caught.value.field == "actions.goal" and "g9" in caught.value.reason


# --- Procedure ---


def test_kva_event_becomes_a_completed_procedure(mappings: Mappings) -> None:
    procedure = one(map_record(event(), mappings), "Procedure")
    assert procedure["status"] == "completed"
    assert codes(procedure["code"]) == {(c.KVA, "AW010")}
    assert procedure["performedDateTime"] == "2024-10-21"
    assert procedure["performer"] == [
        {"actor": {"type": "Organization", "identifier": {"system": c.HSA_ID, "value": UNIT}}}
    ]
    assert procedure["basedOn"] == [
        {"type": "CarePlan", "identifier": {"system": c.ID_PLAN, "value": "lifecare:SIP-77"}}
    ]
    contact = ext(procedure, c.EXT_CONTACT_TYPE)["valueCodeableConcept"]
    assert codes(contact) == {(c.CS_CONTACT_TYPE, "hembesok")}


@pytest.mark.parametrize(
    ("code", "system"),
    [
        (EventCode.AU124, c.KVA),
        (EventCode.AU125, c.KVA),
        (EventCode.UPPF, c.CS_LOCAL_ACTIVITY),
        (EventCode.SIPKALL, c.CS_LOCAL_ACTIVITY),
    ],
)
def test_event_codes(code: EventCode, system: str, mappings: Mappings) -> None:
    procedure = one(map_record(event(code=code, plan_ref=None), mappings), "Procedure")
    assert codes(procedure["code"]) == {(system, code.value)}
    assert "basedOn" not in procedure


def test_contact_type_is_matched_loosely_and_unknown_kept_as_text(mappings: Mappings) -> None:
    visit = one(map_record(event(contact=" Besök "), mappings), "Procedure")
    assert codes(ext(visit, c.EXT_CONTACT_TYPE)["valueCodeableConcept"]) == {
        (c.CS_CONTACT_TYPE, "besok")
    }
    odd = one(map_record(event(contact="brevduva"), mappings), "Procedure")
    assert ext(odd, c.EXT_CONTACT_TYPE)["valueCodeableConcept"] == {"text": "brevduva"}
    none = one(map_record(event(contact=None), mappings), "Procedure")
    assert "extension" not in none


def test_procedure_identifier_ignores_contact_type_but_not_the_rest(mappings: Mappings) -> None:
    def key(record: Event) -> str:
        return map_record(record, mappings)[1].identifier_value

    first = key(event())
    assert key(event(contact="telefon")) == first
    assert key(event(code=EventCode.AU125)) != first
    assert key(event(unit="SE-other")) != first
    assert key(event(plan_ref=None)) != first
    assert key(replace(event(), date=date(2024, 10, 22))) != first


# --- Encounter (discharge notice) ---


def test_discharge_notice_becomes_an_inpatient_encounter(mappings: Mappings) -> None:
    encounter = one(map_record(discharge(), mappings), "Encounter")
    assert encounter["identifier"] == [{"system": c.ID_DISCHARGE, "value": "LC-9001"}]
    assert encounter["class"]["code"] == "IMP"
    assert encounter["status"] == "in-progress"
    assert encounter["serviceProvider"] == {"display": "Höglandssjukhuset"}
    assert encounter["location"] == [{"location": {"display": "Medicin 3, Höglandssjukhuset"}}]
    ready = ext(encounter, c.EXT_READY_FOR_DISCHARGE)["valueDateTime"]
    assert ready == "2024-12-19T14:30:00+01:00"
    support = ext(encounter, c.EXT_DISCHARGE_SUPPORT)["extension"]
    assert support == [
        {"url": "kommun", "valueBoolean": True},
        {"url": "region", "valueBoolean": True},
    ]
    assert ext(encounter, c.EXT_SIP_CONSENT)["valueCoding"]["code"] == "ja"


# --- every resource ---


def all_mapped(mappings: Mappings) -> list[MappedResource]:
    return [r for record in sample_records() for r in map_record(record, mappings)]


def test_every_resource_declares_its_profile_and_has_no_server_id(mappings: Mappings) -> None:
    for mapped in all_mapped(mappings):
        resource = mapped.resource
        assert "id" not in resource
        expected = PROFILES.get(mapped.resource_type)
        if mapped.resource_type == "CarePlan":
            expected = (
                c.PROFILE_SIP_CAREPLAN
                if resource["category"][0]["coding"][0]["code"] == "SIP"
                else c.PROFILE_PATIENTKONTRAKT_CAREPLAN
            )
        assert resource["meta"]["profile"] == [expected]
        assert mapped.profile == expected
        identifiers = [i for i in resource["identifier"] if i["system"] == mapped.identifier_system]
        assert [i["value"] for i in identifiers] == [mapped.identifier_value]


def test_every_resource_parses_as_an_r4_model(mappings: Mappings) -> None:
    for mapped in all_mapped(mappings):
        check_structure(mapped.resource)


def test_the_r4_guard_finds_r4b_only_elements() -> None:
    resource = {"extension": [{"url": "x", "valueCodeableReference": {}}]}
    assert r4b_only_elements(resource) == ["extension[0].valueCodeableReference"]
    with pytest.raises(ValueError, match="valueCodeableReference"):
        check_structure({"resourceType": "Basic", "code": {"text": "x"}, **resource})


def test_no_personnummer_in_any_identifier_value_but_the_patients_own(
    mappings: Mappings,
) -> None:
    records = sample_records()
    numbers = {r.patient.digits for r in records}
    numbers |= {n[2:] for n in numbers}  # the 10-digit form too
    for mapped in (r for record in records for r in map_record(record, mappings)):
        own = mapped.identifier_value if mapped.resource_type == "Patient" else None
        values = [i["value"] for i in mapped.resource["identifier"] if i["value"] != own]
        if mapped.resource_type != "Patient":
            values += [mapped.identifier_value, mapped.match_url, full_url(mapped)]
        for value in values:
            assert not any(n in value for n in numbers), (mapped.resource_type, value)


def test_project_codings_match_the_code_systems_in_profiles(mappings: Mappings) -> None:
    """Every coding of a project code system has a code and display that the CodeSystem has."""
    defined: dict[str, dict[str, str]] = {}
    for path in (REPO_ROOT / "profiles").glob("CodeSystem-*.json"):
        cs = json.loads(path.read_text(encoding="utf-8"))
        defined[cs["url"]] = {k["code"]: k["display"] for k in cs["concept"]}

    def codings(value: Any) -> Iterator[dict[str, Any]]:
        if isinstance(value, dict):
            if "system" in value and "code" in value:
                yield value
            for item in value.values():
                yield from codings(item)
        elif isinstance(value, list):
            for item in value:
                yield from codings(item)

    seen = set()
    for mapped in all_mapped(mappings):
        for coding in codings(mapped.resource):
            if coding["system"].startswith(c.CANONICAL_BASE + "/CodeSystem/"):
                assert coding["code"] in defined[coding["system"]], coding
                assert coding.get("display") == defined[coding["system"]][coding["code"]]
                seen.add(coding["system"])
    assert len(seen) >= 7  # the checks above ran on most of the project's code systems


def test_mapping_is_pure_same_input_same_output(mappings: Mappings) -> None:
    first = [r.resource for record in sample_records() for r in map_record(record, mappings)]
    again = [r.resource for record in sample_records() for r in map_record(record, mappings)]
    assert json.dumps(first, sort_keys=True) == json.dumps(again, sort_keys=True)


# --- transaction Bundle ---


def test_bundle_entries_requests_and_stable_full_urls(mappings: Mappings) -> None:
    resources = map_record(sip(), mappings)
    bundle = transaction_bundle(resources)
    assert bundle["resourceType"] == "Bundle" and bundle["type"] == "transaction"
    entries = bundle["entry"]
    assert [e["resource"]["resourceType"] for e in entries] == [r.resource_type for r in resources]
    patient, *_, plan = entries
    assert patient["request"] == {
        "method": "POST",
        "url": "Patient",
        "ifNoneExist": f"identifier={c.PERSONNUMMER}|193106199817",
    }
    assert plan["request"] == {"method": "PUT", "url": resources[-1].match_url}
    assert all(re.fullmatch(r"urn:uuid:[0-9a-f-]{36}", e["fullUrl"]) for e in entries)
    assert transaction_bundle(map_record(sip(), mappings)) == bundle  # same input, same Bundle


def test_bundle_rewrites_in_bundle_references_to_urn_uuids(mappings: Mappings) -> None:
    resources = map_record(sip(), mappings)
    before = json.dumps([r.resource for r in resources])
    entries = transaction_bundle(resources)["entry"]
    urls = {r.match_url: e["fullUrl"] for r, e in zip(resources, entries, strict=True)}
    plan = entries[-1]["resource"]
    assert plan["subject"] == {"reference": urls[resources[0].match_url]}
    assert plan["careTeam"] == [{"reference": urls[resources[3].match_url]}]
    assert plan["goal"] == [{"reference": urls[r.match_url]} for r in resources[1:3]]
    assert plan["activity"][3]["detail"]["performer"][0]["reference"].startswith("urn:uuid:")
    assert json.dumps([r.resource for r in resources]) == before  # inputs untouched


def test_references_to_resources_outside_the_bundle_stay_as_they_are(mappings: Mappings) -> None:
    plan = map_record(sip(), mappings)[-1]
    (entry,) = transaction_bundle([plan])["entry"]
    assert entry["resource"]["subject"] == {"reference": patient_url(person("193106199817"))}
    assert entry["resource"]["author"]["identifier"]["value"] == UNIT


def test_bundle_keeps_one_entry_per_identifier_and_a_stub_never_wins(
    mappings: Mappings,
) -> None:
    full, ra = map_record(prea60_row(), mappings)
    stub = map_record(patientkontrakt(), mappings)[0]
    assert stub.match_url == full.match_url
    entries = transaction_bundle([full, ra, stub])["entry"]
    assert [e["resource"]["resourceType"] for e in entries] == ["Patient", "RiskAssessment"]
    assert "name" in entries[0]["resource"] and entries[0]["request"]["method"] == "PUT"
    first_stub_then_full = transaction_bundle([stub, ra, full])["entry"]
    assert "name" in first_stub_then_full[0]["resource"]
    old, new = (
        map_record(patientkontrakt(version=1), mappings),
        map_record(patientkontrakt(version=2), mappings),
    )
    (plan,) = [
        e["resource"]
        for e in transaction_bundle([*old, *new])["entry"]
        if e["resource"]["resourceType"] == "CarePlan"
    ]
    assert ext(plan, c.EXT_PLAN_VERSION)["valueInteger"] == 2  # later wins


# --- identifiers ---


def test_stable_digest() -> None:
    a, b = person("193803139801"), person("193803139819")
    assert str(a) == str(b)  # masked alike...
    assert stable_digest(a) != stable_digest(b)  # ...but digested by the full number
    assert stable_digest("x", date(2024, 1, 2)) == stable_digest("x", "2024-01-02")
    assert stable_digest("a", "bc") != stable_digest("ab", "c")
    assert stable_digest(None) == stable_digest("")


def test_match_url_escapes_search_separators() -> None:
    url = match_url("CarePlan", c.ID_PLAN, "sys:a|b,c d")
    assert url == f"CarePlan?identifier={c.ID_PLAN}|sys:a%5C%7Cb%5C%2Cc%20d"


# --- mappings files ---


def test_missing_or_incomplete_conceptmap_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(MappingsError, match="filen saknas"):
        load_mappings(tmp_path)
    source = REPO_ROOT / "mappings" / "conceptmaps"
    target = tmp_path / "conceptmaps"
    target.mkdir()
    for path in source.glob("*.json"):
        (target / path.name).write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
    assert load_mappings(tmp_path).event_code.codings("AW010")
    events = json.loads((target / "event-code.json").read_text(encoding="utf-8"))
    events["group"][1]["element"] = [
        e for e in events["group"][1]["element"] if e["code"] != "SIPKALL"
    ]
    (target / "event-code.json").write_text(json.dumps(events), encoding="utf-8")
    with pytest.raises(MappingsError, match=r"event-code\.json: saknar översättning för SIPKALL"):
        load_mappings(tmp_path)


def test_a_region_can_remap_a_code_in_its_conceptmap(tmp_path: Path) -> None:
    target = tmp_path / "conceptmaps"
    target.mkdir()
    for path in (REPO_ROOT / "mappings" / "conceptmaps").glob("*.json"):
        document = json.loads(path.read_text(encoding="utf-8"))
        if document["id"] == "contact-type":
            document["group"][0]["element"].append(
                {"code": "distans", "target": [{"code": "video", "equivalence": "equivalent"}]}
            )
        (target / path.name).write_text(json.dumps(document), encoding="utf-8")
    procedure = one(map_record(event(contact="Distans"), load_mappings(tmp_path)), "Procedure")
    assert codes(ext(procedure, c.EXT_CONTACT_TYPE)["valueCodeableConcept"]) == {
        (c.CS_CONTACT_TYPE, "video")
    }


# --- reading back ---


def test_readback_finds_what_the_mapping_wrote(mappings: Mappings) -> None:
    plan = one(map_record(sip(), mappings), "CarePlan")
    revision = plan_revision(plan)
    assert revision is not None
    assert (revision.key, revision.version, revision.updated) == (
        "lifecare:SIP-77",
        2,
        date(2024, 10, 21),
    )
    assert event_plan_key(one(map_record(event(), mappings), "Procedure")) == "lifecare:SIP-77"
    assert listing_unit(one(map_record(prea60_row(), mappings), "RiskAssessment")) == UNIT
    owner = fast_vardkontakt(one(map_record(sip(), mappings), "CareTeam"))
    assert owner is not None and owner["identifier"]["value"] == KARIN
    facts = discharge_facts(one(map_record(discharge(), mappings), "Encounter"))
    assert facts is not None
    assert facts.ready_at == datetime(2024, 12, 19, 14, 30, tzinfo=STOCKHOLM)
    assert (facts.needs_kommun, facts.needs_region, facts.consent) == (True, True, Consent.JA)
    assert facts.needs_sip and facts.message_id == "LC-9001"


def test_readback_says_none_when_a_fact_is_missing(mappings: Mappings) -> None:
    plan = one(map_record(sip(), mappings), "CarePlan")
    plan["extension"] = [e for e in plan["extension"] if e["url"] != c.EXT_PLAN_UPDATED]
    assert plan_revision(plan) is None
    assert event_plan_key(one(map_record(event(plan_ref=None), mappings), "Procedure")) is None
    team = one(map_record(replace(sip(), participants=()), mappings), "CareTeam")
    assert fast_vardkontakt(team) is None
    encounter = one(map_record(discharge(), mappings), "Encounter")
    encounter["extension"] = encounter["extension"][:1]
    assert discharge_facts(encounter) is None
