"""Mapped resources on a real HAPI server: `$validate` against their profiles with zero errors, and
transaction Bundles the server accepts; posting them again creates no new versions."""

from __future__ import annotations

import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import pytest

from adapter import canonical as c
from adapter.domain import Record, RowError
from adapter.fhirclient import FhirClient
from adapter.mapping import (
    MappedResource,
    Mappings,
    load_mappings,
    map_record,
    transaction_bundle,
)
from adapter.settings import REPO_ROOT
from adapter.sources import read_file
from tests.support.records import (
    generated_records,
    patientkontrakt,
    person,
    prea60_row,
    sample_records,
)
from tests.support.validation import BATCH, Json, post, report, unique_resources, validate_all

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("profiles_installed")]

EXAMPLES = REPO_ROOT / "deploy" / "examples"


@pytest.fixture(scope="module")
def mappings() -> Mappings:
    return load_mappings(REPO_ROOT / "mappings")


def validate_in_bundles(client: FhirClient, resources: list[MappedResource]) -> list[str]:
    """`$validate` the transaction Bundles: HAPI checks every entry against its meta.profile.

    Eight times faster than one call per resource for a large set (about 25 s for 1 500
    resources here); `test_bundle_validation_checks_each_entry_against_its_profile` shows that
    it catches a broken entry.
    """
    bundles = [
        transaction_bundle(resources[start : start + BATCH])
        for start in range(0, len(resources), BATCH)
    ]
    with ThreadPoolExecutor(max_workers=2) as pool:
        outcomes = [("Bundle", outcome) for outcome in pool.map(client.validate, bundles)]
    return report(outcomes, len(resources))


def statuses(entries: list[Json]) -> Counter[str]:
    return Counter(e["response"]["status"].split()[0] for e in entries)


def test_every_shape_validates_with_zero_errors(
    fhir_client: FhirClient, mappings: Mappings
) -> None:
    resources = unique_resources(sample_records(uuid.uuid4().hex[:8]), mappings)
    assert {r.resource_type for r in resources} == {
        "Patient",
        "RiskAssessment",
        "CarePlan",
        "Goal",
        "CareTeam",
        "Procedure",
        "Encounter",
    }
    assert validate_all(fhir_client, resources) == []


def test_project_examples_read_map_and_validate(
    fhir_client: FhirClient, mappings: Mappings
) -> None:
    files = sorted(p for p in EXAMPLES.glob("*") if p.suffix in (".csv", ".jsonl"))
    if not files:
        pytest.skip(f"{EXAMPLES} har inga exempelfiler")
    records: list[Record] = []
    for path in files:
        for item in read_file(path, mappings_dir=REPO_ROOT / "mappings"):
            assert not isinstance(item, RowError) or item.duplicate_of, item
            if not isinstance(item, RowError):
                records.append(item)
    resources = unique_resources(records, mappings)
    assert len({r.resource_type for r in resources}) == 7, "every kind of example file is mapped"
    assert validate_all(fhir_client, resources) == []
    assert all(s in ("200", "201") for s in statuses(post(fhir_client, resources)))


@pytest.mark.slow
def test_a_generated_set_validates_posts_and_reposts_without_new_versions(
    fhir_client: FhirClient, mappings: Mappings
) -> None:
    tag = uuid.uuid4().hex[:8]
    resources = unique_resources(generated_records(200, tag), mappings)
    assert len(resources) > 1000
    assert validate_in_bundles(fhir_client, resources) == []

    first = post(fhir_client, resources)
    assert set(statuses(first)) <= {"200", "201"}
    again = post(fhir_client, resources)
    assert statuses(again) == Counter({"200": len(resources)})
    versions = [e["response"]["etag"] for e in first]
    assert [e["response"]["etag"] for e in again] == versions  # no new versions
    plans = list(
        fhir_client.search(
            "CarePlan", {"identifier": f"{c.ID_PLAN}|gen{tag}:P-1", "_count": "5"}, post=True
        )
    )
    assert len(plans) == 1 and plans[0]["subject"]["reference"].startswith("Patient/")


def test_bundle_validation_checks_each_entry_against_its_profile(
    fhir_client: FhirClient, mappings: Mappings
) -> None:
    resources = unique_resources(sample_records(uuid.uuid4().hex[:8]), mappings)
    procedure = next(r for r in resources if r.resource_type == "Procedure")
    procedure.resource["code"]["coding"][0]["code"] = "AU999"
    found = validate_in_bundles(fhir_client, resources)
    assert len(found) == 1 and "kva-proc-1" in found[0]


def test_a_new_plan_version_replaces_the_old_one_on_the_server(
    fhir_client: FhirClient, mappings: Mappings
) -> None:
    system = f"cosmic-{uuid.uuid4().hex[:8]}"
    old = patientkontrakt(source_system=system, version=1)
    post(fhir_client, map_record(old, mappings))
    entries = post(fhir_client, map_record(replace(old, version=2, title="Reviderat"), mappings))
    plan_entry = entries[-1]
    assert plan_entry["response"]["status"].startswith("200")
    stored = fhir_client.read("CarePlan", plan_entry["response"]["location"].split("/")[1])
    assert stored["meta"]["versionId"] == "2" and stored["title"] == "Reviderat"
    assert {"url": c.EXT_PLAN_VERSION, "valueInteger": 2} in stored["extension"]
    found = fhir_client.search("CarePlan", {"identifier": f"{c.ID_PLAN}|{system}:VP-1001"})
    assert len(list(found)) == 1


def test_a_patient_stub_never_erases_the_name_from_prea60(
    fhir_client: FhirClient, mappings: Mappings
) -> None:
    n = uuid.uuid4().int  # a real birth date (the Patient carries it), födelsenummer 980-999
    digits = f"19{n % 100:02d}{1 + n % 12:02d}{1 + n % 28:02d}{980 + n % 20}{n % 10}"
    patient = person(digits)
    (entry, _) = post(fhir_client, map_record(prea60_row(patient), mappings))
    patient_id = entry["response"]["location"].split("/")[1]
    stub_entries = post(fhir_client, map_record(patientkontrakt(patient), mappings))
    assert stub_entries[0]["response"]["status"].startswith("200")  # If-None-Exist: found
    stored = fhir_client.read("Patient", patient_id)
    assert stored["name"][0]["family"] == "Lind" and stored["meta"]["versionId"] == "1"
    plan = next(e for e in stub_entries if "CarePlan" in e["response"]["location"])
    stored_plan = fhir_client.read("CarePlan", plan["response"]["location"].split("/")[1])
    assert stored_plan["subject"]["reference"] == f"Patient/{patient_id}"
