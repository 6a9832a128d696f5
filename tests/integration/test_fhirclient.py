"""FhirClient against the real local HAPI server: every operation, the FHIR behaviour we rely on."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest

from adapter.canonical import CANONICAL_BASE
from adapter.fhirclient import (
    Conflict,
    FhirClient,
    NotFound,
    Rejected,
    WriteResult,
    entry_error,
    is_error_outcome,
)
from adapter.fhirclient.client import BATCH_READS
from adapter.settings import EndpointSettings

pytestmark = pytest.mark.integration

TEST_SYSTEM = f"{CANONICAL_BASE}/identifier/test"  # identifiers that exist only in tests
Unique = Callable[..., str]


def patient(value: str, **extra: Any) -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "identifier": [{"system": TEST_SYSTEM, "value": value}],
        **extra,
    }


def count(client: FhirClient, resource_type: str, params: dict[str, str]) -> int:
    return len(list(client.search(resource_type, params)))


def test_capabilities_of_the_local_server(fhir_client: FhirClient) -> None:
    statement = fhir_client.capabilities()
    assert statement["fhirVersion"] == "4.0.1"
    types = {r["type"] for r in statement["rest"][0]["resource"]}
    assert {"Patient", "CarePlan", "Task", "RiskAssessment"} <= types


def test_conditional_update_twice_leaves_one_resource_one_version(
    fhir_client: FhirClient, unique: Unique
) -> None:
    value = unique()
    criteria = f"identifier={TEST_SYSTEM}|{value}"
    resource = patient(value, birthDate="1950-01-01")

    first = fhir_client.conditional_update(resource, criteria)
    second = fhir_client.conditional_update(resource, criteria)
    assert first.created and not second.created
    assert first.id == second.id
    assert (first.version, second.version) == ("1", "1")  # identical content: no new version
    assert count(fhir_client, "Patient", {"identifier": f"{TEST_SYSTEM}|{value}"}) == 1

    changed = fhir_client.conditional_update({**resource, "birthDate": "1950-01-02"}, criteria)
    assert (changed.id, changed.version) == (first.id, "2")


def test_conditional_create_twice_leaves_one_resource(
    fhir_client: FhirClient, unique: Unique
) -> None:
    value = unique()
    criteria = f"identifier={TEST_SYSTEM}|{value}"

    first = fhir_client.create(patient(value), if_none_exist=criteria)
    second = fhir_client.create(patient(value), if_none_exist=criteria)
    assert (first.created, second.created) == (True, False)
    assert (first.status, second.status) == (201, 200)
    assert first.id == second.id
    assert count(fhir_client, "Patient", {"identifier": f"{TEST_SYSTEM}|{value}"}) == 1


def test_conditional_update_with_several_matches_is_a_conflict(
    fhir_client: FhirClient, unique: Unique
) -> None:
    value = unique()
    fhir_client.create(patient(value))
    fhir_client.create(patient(value))

    with pytest.raises(Conflict) as caught:
        fhir_client.conditional_update(patient(value), f"identifier={TEST_SYSTEM}|{value}")
    assert caught.value.status == 412
    assert caught.value.message


def _put_by_identifier(full_url: str, value: str, resource: dict[str, Any]) -> dict[str, Any]:
    """A transaction entry: create or update the one resource carrying the test identifier."""
    match = f"identifier={TEST_SYSTEM}|{value}"
    return {
        "fullUrl": full_url,
        "resource": {**resource, "identifier": [{"system": TEST_SYSTEM, "value": value}]},
        "request": {"method": "PUT", "url": f"{resource['resourceType']}?{match}"},
    }


def _plan_transaction(value: str) -> dict[str, Any]:
    """Patient, CarePlan and Goal referring to each other by urn:uuid and by match URL."""
    patient_url, plan_url, goal_url = (f"urn:uuid:{uuid.uuid4()}" for _ in range(3))
    plan = {
        "resourceType": "CarePlan",
        "status": "active",
        "intent": "plan",
        "subject": {"reference": patient_url},
        "goal": [{"reference": goal_url}],
    }
    goal = {
        "resourceType": "Goal",
        "lifecycleStatus": "active",
        "description": {"text": "Bo kvar hemma"},
        "subject": {"reference": f"Patient?identifier={TEST_SYSTEM}|{value}"},
    }
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            _put_by_identifier(patient_url, value, patient(value, birthDate="1948-05-17")),
            _put_by_identifier(plan_url, value, plan),
            _put_by_identifier(goal_url, value, goal),
        ],
    }


def test_transaction_resolves_urn_uuid_and_conditional_references(
    fhir_client: FhirClient, unique: Unique
) -> None:
    value = unique()
    answer = fhir_client.transaction(_plan_transaction(value))
    assert answer["type"] == "transaction-response"
    patient_result, plan_result, goal_result = map(WriteResult.from_entry, answer["entry"])
    assert patient_result.created and plan_result.created and goal_result.created

    plan = fhir_client.read("CarePlan", str(plan_result.id))
    goal = fhir_client.read("Goal", str(goal_result.id))
    assert plan["subject"]["reference"] == f"Patient/{patient_result.id}"
    assert plan["goal"][0]["reference"] == f"Goal/{goal_result.id}"
    assert goal["subject"]["reference"] == f"Patient/{patient_result.id}"

    # The same transaction again (new urn:uuids): nothing new, nothing duplicated.
    again = list(
        map(WriteResult.from_entry, fhir_client.transaction(_plan_transaction(value))["entry"])
    )
    assert [r.id for r in again] == [patient_result.id, plan_result.id, goal_result.id]
    assert not any(r.created for r in again)
    assert count(fhir_client, "CarePlan", {"identifier": f"{TEST_SYSTEM}|{value}"}) == 1


def test_batch_reports_each_entry_on_its_own(fhir_client: FhirClient, unique: Unique) -> None:
    good, bad = unique(), unique()
    answer = fhir_client.batch(
        {
            "resourceType": "Bundle",
            "entry": [
                {"resource": patient(good), "request": {"method": "POST", "url": "Patient"}},
                {  # parses, but points at nothing: this entry alone fails
                    "resource": patient(
                        bad, managingOrganization={"reference": f"Organization/{bad}"}
                    ),
                    "request": {"method": "POST", "url": "Patient"},
                },
            ],
        }
    )
    first, second = answer["entry"]
    assert entry_error(first) is None and WriteResult.from_entry(first).created
    error = entry_error(second)
    assert isinstance(error, Rejected), error
    assert f"Organization/{bad}" in error.message


def test_batch_reads_answer_in_order_in_small_batches(
    hapi_base_url: str, fhir_client: FhirClient, unique: Unique
) -> None:
    values = [unique() for _ in range(BATCH_READS + 3)]
    fhir_client.transaction(
        {
            "resourceType": "Bundle",
            "type": "transaction",
            "entry": [
                {"resource": patient(v), "request": {"method": "POST", "url": "Patient"}}
                for v in values[::2]  # every other one exists
            ],
        }
    )
    urls = [f"Patient?identifier={TEST_SYSTEM}|{v}" for v in values]
    posts: list[str] = []
    with FhirClient(
        EndpointSettings(base_url=hapi_base_url),
        on_request=lambda method, path, *_: posts.append(path) if method == "POST" else None,
    ) as client:
        found = client.batch_reads(urls)
    # A server answers a batch's entries in parallel, one database connection each: no batch
    # of more than BATCH_READS entries, so two Bundles here.
    assert len(posts) == 2
    assert [bool(bundle.get("entry")) for bundle in found] == [
        i % 2 == 0 for i in range(len(values))
    ]
    assert [
        b["entry"][0]["resource"]["identifier"][0]["value"] for b in found if b.get("entry")
    ] == values[::2]


def test_batch_reads_raise_an_entry_error(fhir_client: FhirClient) -> None:
    with pytest.raises(Rejected):
        fhir_client.batch_reads(["Patient?identifier=a|b", "Patient?no-such-parameter=1"])


@pytest.mark.parametrize("post", [False, True], ids=["GET", "POST _search"])
def test_search_follows_pages(fhir_client: FhirClient, unique: Unique, post: bool) -> None:
    tag = unique("tag")
    fhir_client.transaction(
        {
            "resourceType": "Bundle",
            "entry": [
                {
                    "resource": patient(
                        f"{tag}-{n}", meta={"tag": [{"system": TEST_SYSTEM, "code": tag}]}
                    ),
                    "request": {"method": "POST", "url": "Patient"},
                }
                for n in range(25)
            ],
        }
    )
    params = {"_tag": f"{TEST_SYSTEM}|{tag}", "_count": "10"}

    pages = list(fhir_client.search_bundles("Patient", params, post=post))
    assert [len(page.get("entry", [])) for page in pages] == [10, 10, 5]
    for page in pages[:-1]:
        next_url = next(link["url"] for link in page["link"] if link["relation"] == "next")
        assert next_url.startswith(fhir_client.base_url)
        if post:  # search values stay out of request lines on the following pages too
            assert tag not in next_url
    values = {r["identifier"][0]["value"] for r in fhir_client.search("Patient", params, post=post)}
    assert values == {f"{tag}-{n}" for n in range(25)}


def test_read_vread_update_and_stale_if_match(fhir_client: FhirClient, unique: Unique) -> None:
    created = fhir_client.create(patient(unique(), birthDate="1940-01-01"))
    assert created.created and created.version == "1"
    stored = fhir_client.read("Patient", str(created.id))

    updated = fhir_client.update({**stored, "birthDate": "1940-01-02"}, if_match="1")
    assert (updated.id, updated.version) == (created.id, "2")
    assert fhir_client.read("Patient", str(created.id))["birthDate"] == "1940-01-02"
    assert fhir_client.vread("Patient", str(created.id), "1")["birthDate"] == "1940-01-01"

    with pytest.raises(Conflict) as caught:
        fhir_client.update({**stored, "birthDate": "1940-01-03"}, if_match="1")
    assert caught.value.status == 409  # HAPI answers a stale If-Match with 409


def test_invalid_content_is_rejected_with_the_servers_reason(
    fhir_client: FhirClient, unique: Unique
) -> None:
    with pytest.raises(Rejected) as caught:
        fhir_client.create(patient(unique(), birthDate="17 maj 1948"))
    assert caught.value.status in (400, 422)
    assert "17 maj 1948" in caught.value.message
    assert caught.value.outcome is not None


def test_read_of_missing_and_deleted_resources(fhir_client: FhirClient, unique: Unique) -> None:
    with pytest.raises(NotFound):
        fhir_client.read("Patient", unique("missing"))
    created = fhir_client.create(patient(unique()))
    fhir_client.delete("Patient", str(created.id))
    with pytest.raises(NotFound) as caught:
        fhir_client.read("Patient", str(created.id))
    assert caught.value.status == 410


def test_validate_against_a_profile_on_the_server(fhir_client: FhirClient, unique: Unique) -> None:
    profile_url = f"{CANONICAL_BASE}/StructureDefinition/test-{unique('patient')}"
    fhir_client.conditional_update(
        {
            "resourceType": "StructureDefinition",
            "url": profile_url,
            "name": "TestPatientWithBirthDate",
            "status": "active",
            "fhirVersion": "4.0.1",
            "kind": "resource",
            "abstract": False,
            "type": "Patient",
            "baseDefinition": "http://hl7.org/fhir/StructureDefinition/Patient",
            "derivation": "constraint",
            "differential": {
                "element": [
                    {"id": "Patient", "path": "Patient"},
                    {"id": "Patient.birthDate", "path": "Patient.birthDate", "min": 1},
                ]
            },
        },
        f"url={profile_url}",
    )

    violation = fhir_client.validate(patient(unique()), profile_url)
    assert is_error_outcome(violation)
    assert any("birthDate" in str(issue) for issue in violation["issue"])

    conforming = fhir_client.validate(patient(unique(), birthDate="1950-01-01"), profile_url)
    assert not is_error_outcome(conforming), conforming
