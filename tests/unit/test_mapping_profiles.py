"""profiles/ and mappings/conceptmaps/: well-formed R4 resources, one per canonical name.

What the server makes of them ($validate) is tested in tests/integration/test_profiles.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fhir.resources.R4B.conceptmap import ConceptMap

from adapter import canonical as c
from adapter.conformance import ConformanceError, load_conformance
from adapter.mapping.r4 import check_structure
from adapter.settings import REPO_ROOT

PROFILES_DIR = REPO_ROOT / "profiles"
FHIR_CORE = "http://hl7.org/fhir/"  # the R4 core package the server has


def canonical_names(prefix: str) -> dict[str, str]:
    """The canonical.py names with `prefix` that are ours (not HL7's own extensions)."""
    return {
        name: value
        for name, value in vars(c).items()
        if name.startswith(prefix) and isinstance(value, str) and value.startswith(c.CANONICAL_BASE)
    }


@pytest.fixture(scope="module")
def by_url() -> dict[str, dict[str, Any]]:
    return {
        item.url: item.resource for item in load_conformance(PROFILES_DIR) if item.url is not None
    }


def test_every_file_is_an_r4_resource_named_by_type_and_id() -> None:
    items = load_conformance(PROFILES_DIR)
    assert len(items) == len(list(PROFILES_DIR.glob("*-*.json")))
    for item in items:
        assert item.path.name == f"{item.resource_type}-{item.id}.json"
        # one foreign definition restated so the server can validate it: Inera's extension
        base = c.INERA_IG if item.url == c.INERA_EXT_APPROVED_FOR_PATIENT else c.CANONICAL_BASE
        assert item.url == f"{base}/{item.resource_type}/{item.id}"
        assert item.resource["version"] == "0.1.0"
        check_structure(item.resource)
        if item.resource_type == "StructureDefinition":
            assert item.resource["fhirVersion"] == "4.0.1"
            assert item.resource["derivation"] == "constraint"
            assert item.resource["differential"]["element"][0]["path"] == item.resource["type"]


def test_install_order_puts_what_is_referred_to_first() -> None:
    items = load_conformance(PROFILES_DIR)
    order = ["CodeSystem", "ValueSet", "StructureDefinition"]
    ranks = [order.index(i.resource_type) if i.resource_type in order else 3 for i in items]
    assert ranks == sorted(ranks)  # then the rest (SearchParameter, Measure...)
    definitions = [
        i.resource.get("type") for i in items if i.resource_type == "StructureDefinition"
    ]
    first_profile = next(i for i, t in enumerate(definitions) if t != "Extension")
    assert set(definitions[:first_profile]) == {"Extension"}
    assert "Extension" not in definitions[first_profile:]


@pytest.mark.parametrize("prefix", ["PROFILE_", "EXT_", "VS_"])
def test_every_canonical_profile_extension_and_value_set_is_defined(
    prefix: str, by_url: dict[str, dict[str, Any]]
) -> None:
    missing = {name for name, url in canonical_names(prefix).items() if url not in by_url}
    assert not missing


def test_every_project_code_system_in_use_is_defined(by_url: dict[str, dict[str, Any]]) -> None:
    # CS_INDICATOR belongs to the indicators (their Measures); all others are ours
    missing = {
        name
        for name, url in canonical_names("CS_").items()
        if name != "CS_INDICATOR" and url not in by_url
    }
    assert not missing


def test_every_binding_and_type_profile_points_at_something_we_define(
    by_url: dict[str, dict[str, Any]],
) -> None:
    for resource in by_url.values():
        if resource["resourceType"] != "StructureDefinition":
            continue
        for element in resource["differential"]["element"]:
            urls = [element.get("binding", {}).get("valueSet")]
            urls += [url for type_ in element.get("type", []) for url in type_.get("profile", [])]
            for url in urls:
                if url is not None and not url.startswith(FHIR_CORE):
                    assert url.split("|")[0] in by_url, (resource["id"], url)


def test_value_sets_include_only_defined_or_enumerated_codes(
    by_url: dict[str, dict[str, Any]],
) -> None:
    for resource in by_url.values():
        if resource["resourceType"] != "ValueSet":
            continue
        for include in resource["compose"]["include"]:
            system = include["system"]
            if system.startswith(c.CANONICAL_BASE):
                known = {k["code"] for k in by_url[system]["concept"]}
                assert {k["code"] for k in include.get("concept", [])} <= known
            else:  # an external code system the server cannot know offline: codes listed
                assert include["concept"], resource["id"]


def test_task_profile_constrains_what_the_follow_up_rules_rely_on(
    by_url: dict[str, dict[str, Any]],
) -> None:
    elements = {e["id"]: e for e in by_url[c.PROFILE_TASK]["differential"]["element"]}
    for path in (
        "Task.for",
        "Task.owner",
        "Task.code",
        "Task.restriction.period.end",
    ):
        assert elements[path]["min"] == 1, path
    # focus: the CarePlan acted on, if any; what caused the Task is its reasonReference.
    assert "min" not in elements["Task.focus"]
    (focus_type,) = elements["Task.focus"]["type"]
    assert focus_type["targetProfile"] == ["http://hl7.org/fhir/StructureDefinition/CarePlan"]
    (reason_type,) = elements["Task.reasonReference"]["type"]
    assert {t.rsplit("/", 1)[1] for t in reason_type["targetProfile"]} == {
        "RiskAssessment",
        "Encounter",
    }
    rules = {k["key"]: k["expression"] for k in elements["Task"]["constraint"]}
    assert rules["sip-task-1"] == "focus.exists() or reasonReference.exists()"
    assert elements["Task.code"]["binding"] == {"strength": "required", "valueSet": c.VS_TASK_TYPE}
    assert elements["Task.businessStatus"]["binding"]["valueSet"] == c.VS_TASK_BUSINESS_STATUS
    assert elements["Task.identifier:business.system"]["fixedUri"] == c.ID_TASK
    task_types = {k["code"] for k in by_url[c.CS_TASK_TYPE]["concept"]}
    assert task_types == {t.value for t in c.TaskType}


def test_package_manifest() -> None:
    manifest = json.loads((PROFILES_DIR / "package.json").read_text(encoding="utf-8"))
    assert manifest["name"] == "se.sipfhir.r4"
    assert manifest["fhirVersions"] == ["4.0.1"]
    assert manifest["dependencies"] == {"hl7.fhir.r4.core": "4.0.1"}
    assert manifest["canonical"] == c.CANONICAL_BASE


def test_conceptmaps_are_r4_conceptmaps_whose_targets_exist(
    by_url: dict[str, dict[str, Any]],
) -> None:
    for path in (REPO_ROOT / "mappings" / "conceptmaps").glob("*.json"):
        document = json.loads(path.read_text(encoding="utf-8"))
        ConceptMap.model_validate(document)
        assert path.stem == document["id"]
        for group in document["group"]:
            if group["target"].startswith(c.CANONICAL_BASE):
                known = {k["code"] for k in by_url[group["target"]]["concept"]}
                targets = {t["code"] for e in group["element"] for t in e["target"]}
                assert targets <= known, path.name


def test_a_misnamed_or_broken_profile_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "ValueSet-a.json").write_text(
        json.dumps({"resourceType": "ValueSet", "id": "b"}), encoding="utf-8"
    )
    with pytest.raises(ConformanceError, match="ska heta ValueSet-b.json"):
        load_conformance(tmp_path)
    (tmp_path / "ValueSet-a.json").write_text("{", encoding="utf-8")
    with pytest.raises(ConformanceError, match="ogiltig JSON"):
        load_conformance(tmp_path)
    with pytest.raises(ConformanceError, match="inga profiler"):
        load_conformance(tmp_path / "empty")
