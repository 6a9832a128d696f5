"""Our CarePlans and Patients against Inera's EHDS-TK profiles on a real HAPI server (default
validation), next to our own profiles; the Provenance that goes with each plan; no dom-6.

Inera's profiles are hand-translated test data (tests/data/inera/README.md says which constraints).
"""

from __future__ import annotations

import copy
import uuid
from dataclasses import replace
from typing import Any

import pytest

from adapter import canonical as c
from adapter.conformance import install_conformance
from adapter.fhirclient import FhirClient
from adapter.mapping import (
    MappedResource,
    Mappings,
    load_mappings,
    map_record,
    transaction_bundle,
)
from adapter.mapping.fhir import hsa_reference
from adapter.settings import REPO_ROOT
from tests.support.profiles import errors, problems
from tests.support.records import generated_records, patientkontrakt, person, sample_records, sip
from tests.support.validation import post, unique_resources, validate_all

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("profiles_installed")]

INERA_DIR = REPO_ROOT / "tests" / "data" / "inera"
CARE_PROVIDER = "SE2321000016-15CQ"
INERA_PROFILE = {"CarePlan": c.INERA_PROFILE_CAREPLAN, "Patient": c.INERA_PROFILE_PATIENT}
INERA_PROFILE_ORGANIZATION = f"{c.INERA_IG}/StructureDefinition/inera-ehds-organization"
NOT_IN_VALUE_SET = "None of the codings provided are in the value set"
Json = dict[str, Any]


@pytest.fixture(scope="module")
def inera(fhir_client: FhirClient, profiles_installed: None) -> None:
    install_conformance(fhir_client, INERA_DIR)


@pytest.fixture(scope="module")
def mappings() -> Mappings:
    return load_mappings(REPO_ROOT / "mappings", care_provider_hsa_id=CARE_PROVIDER)


def inera_errors(client: FhirClient, resources: list[MappedResource]) -> list[str]:
    found = []
    for r in resources:
        if r.resource_type in INERA_PROFILE:
            outcome = client.validate(r.resource, INERA_PROFILE[r.resource_type])
            found += [f"{r.resource_type}: {e}" for e in errors(outcome)]
    return found


def plan_of(resources: list[MappedResource]) -> Json:
    return next(r.resource for r in resources if r.resource_type == "CarePlan")


@pytest.mark.usefixtures("inera")
def test_careplans_and_patients_pass_inera_and_our_profiles(
    fhir_client: FhirClient, mappings: Mappings
) -> None:
    records = [
        *sample_records(uuid.uuid4().hex[:8]),
        replace(patientkontrakt(), approved_for_patient=False),
        replace(sip(), approved_for_patient=True),
    ]
    resources = unique_resources(records, mappings)
    assert {"CarePlan", "Patient", "Provenance"} <= {r.resource_type for r in resources}
    assert validate_all(fhir_client, resources) == []
    assert inera_errors(fhir_client, resources) == []


@pytest.mark.slow
@pytest.mark.usefixtures("inera")
def test_a_generated_set_passes_inera_with_no_dom_6(
    fhir_client: FhirClient, mappings: Mappings
) -> None:
    resources = unique_resources(generated_records(60, uuid.uuid4().hex[:8]), mappings)
    assert inera_errors(fhir_client, resources) == []
    bundle_outcomes = [
        fhir_client.validate(transaction_bundle(resources[start : start + 200]))
        for start in range(0, len(resources), 200)
    ]
    assert [e for o in bundle_outcomes for e in errors(o)] == []
    assert [w for o in bundle_outcomes for w in problems(o, "warning") if "dom-6" in w] == []


@pytest.mark.usefixtures("inera")
def test_the_inera_profiles_do_reject_what_breaks_them(
    fhir_client: FhirClient, mappings: Mappings
) -> None:
    """The translated constraints bite: no title, no birth date, a name without any part."""
    resources = map_record(patientkontrakt(), mappings)
    plan = copy.deepcopy(plan_of(resources))
    del plan["title"]
    patient = copy.deepcopy(resources[0].resource)
    del patient["birthDate"]
    patient["name"] = [{"use": "official"}]
    plan_errors = errors(fhir_client.validate(plan, c.INERA_PROFILE_CAREPLAN))
    patient_errors = " ".join(errors(fhir_client.validate(patient, c.INERA_PROFILE_PATIENT)))
    assert any("CarePlan.title" in e for e in plan_errors)
    assert "birthDate" in patient_errors and "ips-pat-1" in patient_errors


@pytest.mark.usefixtures("inera")
@pytest.mark.parametrize("kind_coding_in", ["same concept", "own concept"])
def test_plan_kind_inside_category_breaks_inera_as_hapi_validates(
    fhir_client: FhirClient, mappings: Mappings, kind_coding_in: str
) -> None:
    """The old mapping (plan-kind coding beside VP) and the other obvious fix (plan-kind in a
    second category) both fail: Inera binds every category repetition, HAPI checks every coding.
    """
    plan = copy.deepcopy(plan_of(map_record(patientkontrakt(), mappings)))
    kind = {"system": c.CS_PLAN_KIND, "code": c.CODE_PATIENTKONTRAKT}
    if kind_coding_in == "same concept":
        plan["category"][0]["coding"].append(kind)
    else:
        plan["category"].append({"coding": [kind]})
    found = errors(fhir_client.validate(plan, c.INERA_PROFILE_CAREPLAN))
    assert any(NOT_IN_VALUE_SET in e for e in found), found


def test_a_plan_not_approved_for_the_patient_is_labelled_nopat_on_the_server(
    fhir_client: FhirClient, mappings: Mappings
) -> None:
    plan = replace(
        patientkontrakt(),
        source_system=f"cosmic-{uuid.uuid4().hex[:8]}",
        approved_for_patient=False,
    )
    entries = post(fhir_client, map_record(plan, mappings))
    location = next(e for e in entries if "CarePlan/" in e["response"]["location"])
    stored = fhir_client.read("CarePlan", location["response"]["location"].split("/")[1])
    assert {"system": c.V3_ACT_CODE, "code": "NOPAT"} in stored["meta"]["security"]
    assert {"url": c.INERA_EXT_APPROVED_FOR_PATIENT, "valueBoolean": False} in stored["extension"]


def test_one_provenance_per_plan_no_new_versions_on_rerun(
    fhir_client: FhirClient, mappings: Mappings
) -> None:
    plan = replace(sip(), source_system=f"lifecare-{uuid.uuid4().hex[:8]}")
    first = post(fhir_client, map_record(plan, mappings))
    again = post(fhir_client, map_record(plan, mappings))
    assert [e["response"]["etag"] for e in again] == [e["response"]["etag"] for e in first]
    plan_id = next(
        e["response"]["location"].split("/")[1]
        for e in first
        if e["response"]["location"].startswith("CarePlan/")
    )
    found = list(fhir_client.search("Provenance", {"target": f"CarePlan/{plan_id}"}, post=True))
    assert len(found) == 1
    agents = {a["type"]["coding"][0]["code"]: a["who"]["identifier"] for a in found[0]["agent"]}
    assert agents == {
        "custodian": {"system": c.HSA_ID, "value": CARE_PROVIDER},
        "author": {"system": c.HSA_ID, "value": plan.unit_hsa_id},
    }
    # a new version of the plan: the same Provenance, revised
    post(fhir_client, map_record(replace(plan, version=2, updated=plan.updated), mappings))
    assert len(list(fhir_client.search("Provenance", {"target": f"CarePlan/{plan_id}"}))) == 1


def test_every_written_resource_has_a_narrative_so_no_dom_6(
    fhir_client: FhirClient, mappings: Mappings
) -> None:
    resources = unique_resources(sample_records(uuid.uuid4().hex[:8]), mappings)
    warnings = []
    for r in resources:
        outcome = fhir_client.validate(r.resource, r.profile)
        warnings += [w for w in problems(outcome, "warning") if "dom-6" in w]
    assert warnings == []
    stripped = copy.deepcopy(resources[0].resource)
    del stripped["text"]
    outcome = fhir_client.validate(stripped, resources[0].profile)
    assert any("dom-6" in w for w in problems(outcome, "warning"))  # the check does see it


def test_a_samordningsnummer_patient_gets_the_birth_date_less_60(
    fhir_client: FhirClient, mappings: Mappings
) -> None:
    patient = map_record(replace(patientkontrakt(), patient=person("196703612384")), mappings)[0]
    assert patient.resource["birthDate"] == "1967-03-01"
    assert errors(fhir_client.validate(patient.resource, patient.profile)) == []


@pytest.mark.usefixtures("inera")
@pytest.mark.parametrize("system", [c.HSA_ID, "urn:oid:1.2.752.129.2.1.4.1"])
def test_an_hsa_id_in_either_system_passes_ineras_organization(
    fhir_client: FhirClient, system: str
) -> None:
    """Our units are logical references by HSA-id; as an Organization, in HL7 Sweden's system
    (ours) or in the NTjP OID of IneraEHDSOrganization's slice, both pass."""
    unit = hsa_reference("Organization", "SE2321000057-E00000000001", "Aneby vårdcentral")
    organization = {
        "resourceType": "Organization",
        "identifier": [{**unit["identifier"], "system": system}],
        "name": unit["display"],
    }
    outcome = fhir_client.validate(organization, INERA_PROFILE_ORGANIZATION)
    assert errors(outcome) == []
    organization["identifier"].append({"system": "urn:oid:1.2.752.129.2.1.4.1"})
    assert errors(fhir_client.validate(organization, INERA_PROFILE_ORGANIZATION))  # it checks


def test_installed_conformance_resources_carry_a_narrative(fhir_client: FhirClient) -> None:
    for resource_type, resource_id in [
        ("StructureDefinition", "plan-provenance"),
        ("CodeSystem", "plan-kind"),
        ("Measure", "plan-coverage"),
    ]:
        stored = fhir_client.read(resource_type, resource_id)
        assert stored["text"]["status"] == "generated", resource_type
        outcome = fhir_client.validate(stored)
        assert not [w for w in problems(outcome, "warning") if "dom-6" in w]
