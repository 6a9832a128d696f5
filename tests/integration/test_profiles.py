"""The profiles on a real HAPI server: installed idempotently; each rejects what breaks it."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from adapter import canonical as c
from adapter.cli import app
from adapter.conformance import install_conformance, load_conformance
from adapter.fhirclient import FhirClient
from adapter.mapping import load_mappings, map_record
from adapter.settings import REPO_ROOT, get_settings
from tests.support.profiles import PROFILES_DIR, Json, errors
from tests.support.records import UNIT, discharge, event, patientkontrakt, prea60_row, sip

pytestmark = pytest.mark.integration


def test_installing_twice_creates_no_new_versions(
    fhir_client: FhirClient, profiles_installed: None
) -> None:
    items = load_conformance(PROFILES_DIR)
    before = {i.id: fhir_client.read(i.resource_type, i.id)["meta"]["versionId"] for i in items}
    summary = install_conformance(fhir_client, PROFILES_DIR)
    assert not summary.created and summary.total == len(items)
    after = {i.id: fhir_client.read(i.resource_type, i.id)["meta"]["versionId"] for i in items}
    assert after == before


def test_cli_installs_the_profiles(
    hapi_base_url: str, profiles_installed: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SIP_FHIR_BASE_URL", hapi_base_url)
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["profiles", "install"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    assert f"{len(load_conformance(PROFILES_DIR))} resurser installerade" in result.output


def test_cli_install_fails_clearly_on_a_bad_profiles_dir(
    hapi_base_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SIP_FHIR_BASE_URL", hapi_base_url)
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["profiles", "install", "--dir", str(tmp_path)])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 1
    assert "inga profiler" in result.output


# --- each profile rejects a resource that breaks it ---


def mapped(record: Any, resource_type: str) -> Json:
    mappings = load_mappings(REPO_ROOT / "mappings")
    (found,) = [
        r.resource for r in map_record(record, mappings) if r.resource_type == resource_type
    ]
    return found


def task() -> Json:
    """A Task as the follow-up rules will write it (their builder is theirs)."""
    return {
        "resourceType": "Task",
        "meta": {"profile": [c.PROFILE_TASK]},
        "identifier": [{"system": c.ID_TASK, "value": "0" * 64}],
        "status": "requested",
        "businessStatus": {"coding": [{"system": c.CS_TASK_BUSINESS_STATUS, "code": "due"}]},
        "intent": "order",
        "code": {"coding": [{"system": c.CS_TASK_TYPE, "code": c.TaskType.FOLLOW_UP.value}]},
        "focus": {"reference": f"CarePlan?identifier={c.ID_PLAN}|lifecare:SIP-77"},
        "for": {"reference": f"Patient?identifier={c.PERSONNUMMER}|193106199817"},
        "owner": {"type": "Practitioner", "identifier": {"system": c.HSA_ID, "value": "P1"}},
        "restriction": {"period": {"end": "2025-01-20"}},
    }


def measure_report() -> Json:
    return {
        "resourceType": "MeasureReport",
        "meta": {"profile": [c.PROFILE_MEASURE_REPORT]},
        "identifier": [{"system": c.ID_MEASURE_REPORT, "value": f"1:{UNIT}:2024"}],
        "status": "complete",
        "type": "summary",
        "measure": f"{c.CANONICAL_BASE}/Measure/indicator-1",
        "period": {"start": "2024-01-01", "end": "2024-12-31"},
        "reporter": {"type": "Organization", "identifier": {"system": c.HSA_ID, "value": UNIT}},
    }


def without(*path: Any) -> Callable[[Json], None]:
    def mutate(resource: Json) -> None:
        *parents, last = path
        for key in parents:
            resource = resource[key]
        del resource[last]

    return mutate


def setting(value: Any, *path: Any) -> Callable[[Json], None]:
    def mutate(resource: Json) -> None:
        *parents, last = path
        for key in parents:
            resource = resource[key]
        resource[last] = value

    return mutate


def without_extension(url: str) -> Callable[[Json], None]:
    def mutate(resource: Json) -> None:
        resource["extension"] = [e for e in resource["extension"] if e["url"] != url]

    return mutate


BROKEN: list[tuple[str, Callable[[], Json], Callable[[Json], None], str]] = [
    (
        "sip-patient",
        lambda: mapped(prea60_row(), "Patient"),
        setting("19380313-766", "identifier", 0, "value"),
        "sip-pat-1",
    ),
    (
        "prea60-riskassessment",
        lambda: mapped(prea60_row(), "RiskAssessment"),
        without_extension(c.EXT_LISTING_UNIT),
        "listingUnit",
    ),
    (
        "prea60-riskassessment (method)",
        lambda: mapped(prea60_row(), "RiskAssessment"),
        setting("other", "method", "coding", 0, "code"),
        "pattern",
    ),
    (
        "sip-careplan",
        lambda: mapped(sip(), "CarePlan"),
        setting("VP", "category", 0, "coding", 0, "code"),
        "planType",
    ),
    (
        "ext-plan-kva",
        lambda: mapped(sip(), "CarePlan"),
        lambda r: next(e for e in r["extension"] if e["url"] == c.EXT_PLAN_KVA)[
            "valueCoding"
        ].update(code="AW010"),
        "sip-kva-1",
    ),
    (
        "ext-plan-quality (score above 1)",
        lambda: mapped(sip(), "CarePlan"),
        lambda r: next(e for e in r["extension"] if e["url"] == c.EXT_PLAN_QUALITY)["extension"][
            0
        ].update(valueDecimal=1.5),
        "plan-quality-1",
    ),
    (
        "ext-plan-quality (no score)",
        lambda: mapped(sip(), "CarePlan"),
        lambda r: next(e for e in r["extension"] if e["url"] == c.EXT_PLAN_QUALITY)[
            "extension"
        ].pop(0),
        "score",
    ),
    (
        "ext-plan-version",
        lambda: mapped(sip(), "CarePlan"),
        without_extension(c.EXT_PLAN_VERSION),
        "planVersion",
    ),
    (
        "patientkontrakt-careplan",
        lambda: mapped(patientkontrakt(), "CarePlan"),
        without("title"),
        "CarePlan.title",
    ),
    (
        "sip-goal",
        lambda: mapped(patientkontrakt(), "Goal"),
        without("description"),
        "Goal.description",
    ),
    (
        "sip-careteam",
        lambda: mapped(patientkontrakt(), "CareTeam"),
        setting("patient", "participant", 0, "extension", 0, "valueCoding", "code"),
        "huvudman",
    ),
    (
        "kva-procedure",
        lambda: mapped(event(), "Procedure"),
        setting("AU999", "code", "coding", 0, "code"),
        "kva-proc-1",
    ),
    (
        "discharge-notice",
        lambda: mapped(discharge(), "Encounter"),
        without_extension(c.EXT_SIP_CONSENT),
        "sipConsent",
    ),
    (
        "ext-discharge-support",
        lambda: mapped(discharge(), "Encounter"),
        without("extension", 1, "extension", 1),
        "region",
    ),
    (
        "followup-task",
        task,
        setting({"coding": [{"system": c.CS_TASK_TYPE, "code": "x"}]}, "code"),
        "task-type",
    ),
    (
        "followup-task (due)",
        task,
        without("restriction", "period", "end"),
        "Task.restriction.period.end",
    ),
    ("followup-task (for)", task, without("for"), "Task.for"),
    ("indicator-measurereport", measure_report, without("reporter"), "MeasureReport.reporter"),
]


@pytest.fixture(scope="module")
def validate(fhir_client: FhirClient, profiles_installed: None) -> Iterator[Callable[[Json], Json]]:
    def run(resource: Json) -> Json:
        return fhir_client.validate(resource, resource["meta"]["profile"][0])

    yield run


@pytest.mark.parametrize(
    ("name", "build", "mutate", "expected"), BROKEN, ids=[b[0] for b in BROKEN]
)
def test_each_profile_rejects_a_resource_that_breaks_it(
    name: str,
    build: Callable[[], Json],
    mutate: Callable[[Json], None],
    expected: str,
    validate: Callable[[Json], Json],
) -> None:
    good = build()
    assert errors(validate(good)) == []  # the same resource unbroken passes
    broken = copy.deepcopy(good)
    mutate(broken)
    found = errors(validate(broken))
    assert found, f"{name}: the broken resource passed"
    assert any(expected in message for message in found), found
