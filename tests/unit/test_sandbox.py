"""Sandbox mode without a server: the run tag and versioned profiles on what the client writes,
the versioned conformance resources, and the settings that switch it on."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import responses

from adapter.canonical import PROFILE_PATIENT, TAG_ADAPTER, TAG_RUN
from adapter.conformance import load_conformance, with_version
from adapter.fhirclient import FhirClient
from adapter.sandbox import RunTagError, check_run_tag, decorate, decorate_bundle, versioned
from adapter.settings import REPO_ROOT, EndpointSettings, Settings

BASE = "http://fhir.test/fhir"
VERSION = "0.1.0-sbx.abcd1234"


def patient() -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "meta": {"profile": [PROFILE_PATIENT], "tag": [{"system": TAG_ADAPTER, "code": "x"}]},
    }


def test_decorate_adds_the_tag_once_and_versions_only_our_profiles() -> None:
    original = patient()
    original["meta"]["profile"].append("http://hl7.org/fhir/StructureDefinition/Patient")
    done = decorate(original, run_tag="run-1", profile_version=VERSION)
    again = decorate(done, run_tag="run-1", profile_version=VERSION)
    assert again == done
    assert done["meta"]["tag"] == [
        {"system": TAG_ADAPTER, "code": "x"},
        {"system": TAG_RUN, "code": "run-1"},
    ]
    assert done["meta"]["profile"] == [
        f"{PROFILE_PATIENT}|{VERSION}",
        "http://hl7.org/fhir/StructureDefinition/Patient",
    ]
    assert original == patient() | {"meta": original["meta"]}  # the input is not changed
    assert len(original["meta"]["tag"]) == 1
    assert decorate(original, run_tag=None, profile_version=None) is original


def test_bundles_decorate_writes_but_not_reads_deletes_or_searches() -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [
            {"resource": patient(), "request": {"method": "PUT", "url": "Patient?identifier=a|b"}},
            {"resource": patient(), "request": {"method": "POST", "url": "Patient"}},
            {"request": {"method": "GET", "url": "Patient?identifier=a|b"}},
            {"request": {"method": "DELETE", "url": "Patient/1"}},
            {
                "resource": {"resourceType": "Parameters"},
                "request": {"method": "POST", "url": "Patient/$validate"},
            },
        ],
    }
    done = decorate_bundle(bundle, run_tag="run-1", profile_version=None)
    tags = [len((e.get("resource") or {}).get("meta", {}).get("tag", [])) for e in done["entry"]]
    assert tags == [2, 2, 0, 0, 0]
    assert bundle["entry"][0]["resource"]["meta"]["tag"] == [{"system": TAG_ADAPTER, "code": "x"}]


@responses.activate
def test_the_client_tags_every_kind_of_write() -> None:
    endpoint = EndpointSettings(base_url=BASE, run_tag="run-7")
    stored = {"resourceType": "Patient", "id": "1", "meta": {"versionId": "1"}}
    responses.put(f"{BASE}/Patient/1", json=stored)
    responses.post(f"{BASE}/Patient", json=stored, status=201)
    responses.put(f"{BASE}/Patient", json=stored)
    responses.post(BASE, json={"resourceType": "Bundle", "type": "transaction-response"})
    with FhirClient(endpoint) as client:
        client.update({**patient(), "id": "1"})
        client.create(patient(), if_none_exist="identifier=a|b")
        client.conditional_update(patient(), "identifier=a|b")
        client.transaction(
            {
                "resourceType": "Bundle",
                "entry": [{"resource": patient(), "request": {"method": "POST", "url": "Patient"}}],
            }
        )
    sent = [json.loads(call.request.body) for call in responses.calls]
    resources = [*sent[:3], sent[3]["entry"][0]["resource"]]
    for resource in resources:
        assert {"system": TAG_RUN, "code": "run-7"} in resource["meta"]["tag"]


@pytest.mark.parametrize("tag", ["", "två ord", "a|b", "x" * 65, "-leading"])
def test_run_tags_that_cannot_be_a_search_token_are_refused(tag: str) -> None:
    with pytest.raises(RunTagError):
        check_run_tag(tag)


def test_sandbox_settings_make_a_tag_per_run_and_a_version_of_their_own() -> None:
    one, two = Settings(sandbox=True), Settings(sandbox=True)
    assert one.run_tag and two.run_tag and one.run_tag != two.run_tag
    assert one.endpoint().run_tag == one.run_tag
    assert one.profile_version == two.profile_version
    assert one.profile_version and one.profile_version.startswith("0.1.0-sbx.")
    assert Settings(sandbox=True, run_tag="mine").run_tag == "mine"
    assert Settings().run_tag is None and Settings().profile_version is None


def test_the_sandbox_version_follows_the_profiles_content(tmp_path: Path) -> None:
    for path in (REPO_ROOT / "profiles").glob("*.json"):
        (tmp_path / path.name).write_bytes(path.read_bytes())
    same = Settings(sandbox=True, profiles_dir=tmp_path).profile_version
    assert same == Settings(sandbox=True).profile_version
    changed = tmp_path / "CodeSystem-task-type.json"
    changed.write_text(changed.read_text("utf-8") + "\n", "utf-8")
    assert Settings(sandbox=True, profiles_dir=tmp_path).profile_version != same


def _canonical_refs(value: Any, key: str = "") -> list[str]:
    if isinstance(value, dict):
        return [r for k, v in value.items() if k != "url" for r in _canonical_refs(v, k)]
    if isinstance(value, list):
        return [r for v in value for r in _canonical_refs(v, key)]
    keys = ("profile", "targetProfile", "valueSet", "baseDefinition")
    return [value] if key in keys and isinstance(value, str) else []


def test_versioned_conformance_has_own_ids_and_versioned_references_only() -> None:
    items = {(i.resource_type, i.id): i for i in load_conformance(REPO_ROOT / "profiles")}
    plain = items[("StructureDefinition", "sip-careplan")]
    careplan = with_version(plain, VERSION).resource
    assert careplan["id"] == f"sip-careplan-{VERSION}" and careplan["version"] == VERSION
    assert careplan["url"] == plain.url  # the canonical URL itself stays
    refs = _canonical_refs(careplan)
    ours = [r for r in refs if r.startswith("https://sip-fhir.se/fhir/")]
    assert ours and all(r.endswith(f"|{VERSION}") for r in ours)
    assert all("|" not in r for r in refs if r not in ours)  # HL7's stay as they are

    extension = with_version(items[("StructureDefinition", "ext-plan-version")], VERSION).resource
    fixed = [e["fixedUri"] for e in extension["differential"]["element"] if "fixedUri" in e]
    assert fixed == [extension["url"]]  # Extension.url in data stays plain

    valueset = with_version(items[("ValueSet", "task-type")], VERSION).resource
    includes = valueset["compose"]["include"]
    assert all(i["version"] == VERSION for i in includes if i["system"].startswith("https://sip"))
    assert versioned("http://hl7.org/fhir/x", VERSION) == "http://hl7.org/fhir/x"
