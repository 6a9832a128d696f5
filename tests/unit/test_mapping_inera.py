"""What Inera's EHDS-TK CarePlan and Patient need (issue 11.4/11.7) and the generated narrative on
every resource (11.8), without a server. tests/integration/test_inera.py validates the same
resources against Inera's profiles on HAPI."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from adapter import canonical as c
from adapter import personnummer
from adapter.domain import IdKind, Participant, PersonId, RowError
from adapter.followup.rules import Outcome
from adapter.followup.subscriptions import subscription
from adapter.followup.tasks import closed_task
from adapter.indicators.compute import plan_coverage
from adapter.indicators.reports import report_resources
from adapter.mapping import Mappings, load_mappings, map_record, transaction_bundle
from adapter.mapping.narrative import narrative
from adapter.mapping.r4 import check_structure
from adapter.settings import REPO_ROOT
from adapter.sources import read_plan_lines
from adapter.sync.fingerprint import mapping_fingerprint
from adapter.worklist.patient import patient_name
from tests.support.plan_lines import SIP as SIP_LINE
from tests.support.plan_lines import lines
from tests.support.records import (
    UNIT,
    codes,
    ext,
    has_ext,
    one,
    patientkontrakt,
    person,
    prea60_row,
    sample_records,
    sip,
)
from tests.support.reports import PERIOD as REPORT_PERIOD
from tests.support.reports import aneby_states
from tests.support.rules import RULES
from tests.support.tasks import build, stored

CARE_PROVIDER = "SE2321000016-15CQ"
Json = dict[str, Any]


@pytest.fixture(scope="module")
def mappings() -> Mappings:
    return load_mappings(REPO_ROOT / "mappings", care_provider_hsa_id=CARE_PROVIDER)


def luhn(nine: str) -> str:
    return f"{nine}{personnummer.luhn_digit(nine[-9:])}"


# --- birth date and legal gender from the number ---


@pytest.mark.parametrize(
    ("number", "born", "gender"),
    [
        (luhn("19310214982"), "1931-02-14", "female"),  # second-last digit 2: even
        (luhn("19310214981"), "1931-02-14", "male"),  # 1: odd
        (luhn("19450374984"), "1945-03-14", "female"),  # samordningsnummer: day 74 = 14 + 60
    ],
)
def test_birth_date_and_legal_gender_come_from_the_number(
    number: str, born: str, gender: str
) -> None:
    pid = personnummer.parse(number, REPORT_PERIOD.end)
    assert personnummer.birth_date(pid).isoformat() == born
    assert personnummer.legal_gender(pid) == gender


def test_every_patient_has_name_birth_date_and_gender(mappings: Mappings) -> None:
    full = map_record(prea60_row(), mappings)[0].resource
    assert (full["birthDate"], full["gender"]) == ("1938-03-13", "female")
    assert full["name"][0]["family"] == "Lind"
    stub = map_record(patientkontrakt(), mappings)[0].resource
    (name,) = stub["name"]
    assert name["text"] == "Namn okänt"
    assert ext(name, c.EXT_DATA_ABSENT_REASON)["valueCode"] == "unknown"
    samordning = PersonId("196703612384", IdKind.SAMORDNINGSNUMMER)
    stub = map_record(replace(patientkontrakt(), patient=samordning), mappings)[0].resource
    assert (stub["birthDate"], stub["gender"]) == ("1967-03-01", "female")  # 8: even


def test_a_plan_naming_the_patient_gives_the_stub_that_name(mappings: Mappings) -> None:
    named = replace(
        patientkontrakt(), participants=(Participant("patient", "Åsa Lind"),)
    )  # the role patient, as SIP participants list the patient
    (name,) = map_record(named, mappings)[0].resource["name"]
    assert name == {"text": "Åsa Lind"}


# --- CarePlan: category, plan kind, note, approvedForPatient, contributor, meta.source ---


def test_category_holds_only_ineras_codes_and_the_plan_kind_is_an_extension(
    mappings: Mappings,
) -> None:
    kontrakt = one(map_record(patientkontrakt(), mappings), "CarePlan")
    assert [codes(cat) for cat in kontrakt["category"]] == [{(c.INERA_CAREPLAN_TYPE, "VP")}]
    kind = ext(kontrakt, c.EXT_PLAN_KIND)["valueCoding"]
    assert (kind["system"], kind["code"]) == (c.CS_PLAN_KIND, c.CODE_PATIENTKONTRAKT)
    plan_sip = one(map_record(sip(), mappings), "CarePlan")
    assert [codes(cat) for cat in plan_sip["category"]] == [{(c.INERA_CAREPLAN_TYPE, "SIP")}]
    assert not has_ext(plan_sip, c.EXT_PLAN_KIND)


@pytest.mark.parametrize(
    ("approved", "extension", "security"),
    [
        (None, None, None),
        (True, True, None),
        (False, False, [{"system": c.V3_ACT_CODE, "code": "NOPAT"}]),
    ],
)
def test_approved_for_patient_and_the_nopat_label(
    mappings: Mappings, approved: bool | None, extension: bool | None, security: Any
) -> None:
    resources = map_record(replace(sip(), approved_for_patient=approved), mappings)
    plan = one(resources, "CarePlan")
    found = [
        e["valueBoolean"] for e in plan["extension"] if e["url"] == c.INERA_EXT_APPROVED_FOR_PATIENT
    ]
    assert found == ([] if extension is None else [extension])
    for r in resources:
        if r.resource_type in ("CarePlan", "Goal", "CareTeam"):
            assert r.resource["meta"].get("security") == security


def test_the_source_field_approved_for_patient_is_read_and_checked() -> None:
    (plan,) = read_plan_lines(lines({**SIP_LINE, "approved_for_patient": False}), name="api")
    assert plan.approved_for_patient is False
    (missing,) = read_plan_lines(lines(SIP_LINE), name="api")
    assert missing.approved_for_patient is None
    problems = list(read_plan_lines(lines({**SIP_LINE, "approved_for_patient": "ja"}), name="api"))
    assert [(p.column, p.reason) for p in problems if isinstance(p, RowError)] == [
        ("approved_for_patient", "Ska vara true eller false")
    ]


def test_note_has_the_plan_content_in_swedish(mappings: Mappings) -> None:
    plan = sip()
    (note,) = one(map_record(plan, mappings), "CarePlan")["note"]
    text = note["text"]
    assert text.startswith(f"Samordnad individuell plan (SIP): {plan.title}")
    for goal in plan.goals:
        assert goal.text in text
    for action in plan.actions:
        assert action.text in text
    assert "ansvarig:" in text and "Mål:" in text and "Åtgärder:" in text


def test_contributors_are_the_unit_and_the_participants_organisations(mappings: Mappings) -> None:
    plan = one(map_record(sip(), mappings), "CarePlan")
    assert plan["contributor"][0] == {
        "type": "Organization",
        "identifier": {"system": c.HSA_ID, "value": UNIT},
    }
    names = [r["display"] for r in plan["contributor"][1:]]
    assert len(names) == len(set(names)) and "Aneby kommun" in names


def test_meta_source_names_the_source_system_without_a_fragment(mappings: Mappings) -> None:
    plan = replace(sip(), source_system="Life Care#2")
    source = one(map_record(plan, mappings), "CarePlan")["meta"]["source"]
    assert source == f"{c.SOURCE_BASE}/Life%20Care%232"


# --- Provenance ---


def test_one_provenance_per_plan_author_unit_custodian_care_provider(mappings: Mappings) -> None:
    resources = map_record(sip(), mappings)
    provenance = resources[-1]
    assert provenance.resource_type == "Provenance"
    assert provenance.match_url.startswith("Provenance?_tag=")  # Provenance has no identifier
    body = provenance.resource
    agents = {
        a["type"]["coding"][0]["code"]: a["who"]["identifier"]["value"] for a in body["agent"]
    }
    assert agents == {"custodian": CARE_PROVIDER, "author": UNIT}
    assert body["recorded"] == f"{sip().updated.isoformat()}T00:00:00+02:00"  # summer time
    bundle = transaction_bundle(resources)
    plan_entry, provenance_entry = bundle["entry"][-2:]
    assert provenance_entry["resource"]["target"] == [{"reference": plan_entry["fullUrl"]}]
    assert provenance_entry["request"] == {"method": "PUT", "url": provenance.match_url}
    again = map_record(replace(sip(), version=2), mappings)[-1]
    assert again.match_url == provenance.match_url  # every version: the same Provenance


def test_no_provenance_without_the_care_providers_hsa_id() -> None:
    resources = map_record(sip(), load_mappings(REPO_ROOT / "mappings"))
    assert "Provenance" not in {r.resource_type for r in resources}


def test_the_care_provider_setting_is_part_of_the_mapping_fingerprint(tmp_path: Path) -> None:
    assert mapping_fingerprint(tmp_path, "SE1") != mapping_fingerprint(tmp_path, "SE2")


# --- narrative ---


def test_every_mapped_resource_has_a_short_swedish_generated_narrative(mappings: Mappings) -> None:
    resources = [r for record in sample_records() for r in map_record(record, mappings)]
    assert {r.resource_type for r in resources} >= {
        *("Patient", "CarePlan", "Goal", "CareTeam", "Provenance"),
        *("RiskAssessment", "Procedure", "Encounter"),
    }
    for r in resources:
        text = r.resource["text"]
        assert text["status"] == "generated"
        assert text["div"].startswith('<div xmlns="http://www.w3.org/1999/xhtml"><p>')
        assert len(text["div"]) < 400
        check_structure(r.resource)
        for pid in ("193803139827", "196703612384", "195011819827"):
            assert pid not in text["div"]  # never the personnummer


def test_narrative_is_deterministic_and_html_escaped(mappings: Mappings) -> None:
    plan = replace(sip(), title='Plan <b>&</b> "mer"')
    first = one(map_record(plan, mappings), "CarePlan")["text"]
    assert first == one(map_record(plan, mappings), "CarePlan")["text"]
    assert 'Plan &lt;b&gt;&amp;&lt;/b&gt; "mer"' in first["div"]
    assert "<b>" not in first["div"]


def test_tasks_reports_lists_and_subscriptions_get_a_narrative_too() -> None:
    task = build()
    assert "status begärd" in task["text"]["div"]
    closed = closed_task(stored(task), Outcome.COMPLETED, "Uppföljd")
    assert "status avslutad" in closed["text"]["div"] and "orsak: Uppföljd" in closed["text"]["div"]
    result = plan_coverage(aneby_states(), UNIT, REPORT_PERIOD, RULES)
    for resource in report_resources([result]):
        assert resource.resource["text"]["status"] == "generated"
    hook = subscription("Procedure", "https://adapter.example/", "hemligt")
    assert "hemligt" not in json.dumps(hook["text"])
    assert narrative({"resourceType": "Basic"})["div"].endswith("<p>Basic</p></div>")


def test_narrative_changes_the_content_hash_only_when_the_content_changes(
    mappings: Mappings,
) -> None:
    patient = person()
    a = map_record(prea60_row(patient), mappings)[0].resource
    b = map_record(prea60_row(patient), mappings)[0].resource
    assert json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def test_the_worklist_does_not_show_a_stubs_unknown_name_as_a_name(mappings: Mappings) -> None:
    assert patient_name(map_record(patientkontrakt(), mappings)[0].resource) is None
    assert patient_name(map_record(prea60_row(), mappings)[0].resource) == "Åsa Maria Lind"
