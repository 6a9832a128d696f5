"""Plan quality end to end on the real HAPI server: `sip-fhir import` of the hand-scored plans
stores each score on its CarePlan (valid against our profile, unchanged on a re-import), and
`sip-fhir indicators --format json` reports plan-quality from what the server holds."""

from __future__ import annotations

import json
import random
import shutil
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from adapter.canonical import HSA_ID, ID_MEASURE_REPORT, ID_PLAN, IndicatorCode
from adapter.cli import app
from adapter.conformance import install_conformance
from adapter.fhirclient import FhirClient
from adapter.indicators.reports import ReportType, parse_report, report_key
from adapter.indicators.trend import snapshot_period
from adapter.mapping.readback import plan_quality
from adapter.settings import REPO_ROOT, get_settings
from tests.support.indicators import unique_unit, use_servers

pytestmark = pytest.mark.integration

HELD_OUT = REPO_ROOT / "tests" / "data" / "quality" / "plans.jsonl"
AS_OF = "2025-03-10"
PERIOD = snapshot_period(date.fromisoformat(AS_OF))  # the CLI's period for --as-of alone
Json = dict[str, Any]


@pytest.fixture(scope="module")
def profiles(fhir_client: FhirClient) -> None:
    install_conformance(fhir_client, REPO_ROOT / "profiles")


@pytest.fixture
def imported(
    tmp_path: Path, hapi_base_url: str, monkeypatch: pytest.MonkeyPatch, profiles: None
) -> Iterator[tuple[str, str, Path, dict[str, Json]]]:
    """The hand-scored plans under a fresh unit and source system, imported with the CLI."""
    unit = unique_unit()
    system = f"quality-{random.SystemRandom().randrange(10**9)}"
    expected: dict[str, Json] = {}
    lines = []
    for line in HELD_OUT.read_text(encoding="utf-8").splitlines():
        plan = json.loads(line)
        plan.update(unit_hsa_id=unit, source_system=system)
        expected[f"{system}:{plan['plan_id']}"] = plan["$expected"]
        lines.append(json.dumps(plan, ensure_ascii=False))
    path = tmp_path / "plans-quality.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    use_servers(monkeypatch, base_url=hapi_base_url, data_dir=str(tmp_path / "data"))
    result = CliRunner().invoke(app, ["import", str(path)])
    assert result.exit_code == 0, result.output
    yield unit, system, path, expected
    get_settings.cache_clear()


def _errors(client: FhirClient, resource: Json) -> list[tuple[Any, Any]]:
    """`$validate` against the resource's profile, right after installing ours. A shared dev
    server may get another tree's profiles installed between the two (a fresh CI server holds
    only ours): up to three tries, so a real error still fails the test."""
    errors: list[tuple[Any, Any]] = []
    for _ in range(3):
        install_conformance(client, REPO_ROOT / "profiles")
        outcome = client.validate(resource, resource["meta"]["profile"][0])
        errors = [
            (i.get("expression"), i.get("diagnostics"))
            for i in outcome.get("issue", [])
            if i.get("severity") in ("error", "fatal")
        ]
        if not errors:
            break
    return errors


def _care_plans(client: FhirClient, unit: str) -> dict[str, Json]:
    found = client.search("CarePlan", [("unit", f"{HSA_ID}|{unit}"), ("_count", "100")], post=True)
    return {
        next(i["value"] for i in plan["identifier"] if i["system"] == ID_PLAN): plan
        for plan in found
    }


def test_imported_plans_carry_the_hand_scored_quality(
    fhir_client: FhirClient, imported: tuple[str, str, Path, dict[str, Json]]
) -> None:
    unit, _, path, expected = imported
    on_server = _care_plans(fhir_client, unit)
    assert set(on_server) == set(expected)
    for key, care_plan in on_server.items():
        quality = plan_quality(care_plan)
        assert quality is not None, key
        assert quality.score == Decimal(expected[key]["score"]), (key, expected[key]["hand"])
        assert [u.id for u in quality.unmet] == expected[key]["unmet"]
        assert _errors(fhir_client, care_plan) == [], key
    versions = {key: plan["meta"]["versionId"] for key, plan in on_server.items()}

    again = CliRunner().invoke(app, ["import", str(path)])
    assert again.exit_code == 0, again.output
    after = _care_plans(fhir_client, unit)
    assert {key: plan["meta"]["versionId"] for key, plan in after.items()} == versions


def test_cli_reports_plan_quality_for_the_unit(
    imported: tuple[str, str, Path, dict[str, Json]],
) -> None:
    unit = imported[0]
    result = CliRunner().invoke(
        app, ["indicators", "--unit", unit, "--as-of", AS_OF, "--format", "json"]
    )
    assert result.exit_code == 0, result.output
    by_id = {i["id"]: i for i in json.loads(result.stdout)["indicators"]}
    # By hand from the file: the nine active plans (H3 is a draft) score 1.00, 0.50, 0.75,
    # 0.92, 1.00, 0.17, 0.67, 0.58, 0.58; at or above 0.8: H1, H5, H6.
    assert by_id["plan-quality"] == {
        "id": "plan-quality",
        "numerator": 3,
        "denominator": 9,
        "value": 33.33,
        "scores": {
            "threshold": 0.8,
            "mean": 0.69,  # 6.17 / 9 = 0.6855…
            "min": 0.17,
            "median": 0.67,
            "max": 1.0,
            "bands": {"0.0-0.2": 1, "0.2-0.4": 0, "0.4-0.6": 3, "0.6-0.8": 2, "0.8-1.0": 3},
        },
    }


def test_stored_plan_quality_report_is_valid_and_reads_back(
    fhir_client: FhirClient, imported: tuple[str, str, Path, dict[str, Json]]
) -> None:
    unit = imported[0]
    args = ["indicators", "--unit", unit, "--as-of", AS_OF, "--format", "json", "--store"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    key = report_key(IndicatorCode.PLAN_QUALITY, unit, PERIOD, ReportType.SUMMARY)
    reports = list(
        fhir_client.search(
            "MeasureReport", [("identifier", f"{ID_MEASURE_REPORT}|{key}")], post=True
        )
    )
    assert len(reports) == 1
    report = reports[0]
    assert _errors(fhir_client, report) == []
    group = report["group"][0]
    assert group["measureScore"]["value"] == pytest.approx(0.3333)
    strata = {
        s["value"]["text"]: s["population"][0]["count"] for s in group["stratifier"][0]["stratum"]
    }
    assert strata == {"0.0-0.2": 1, "0.2-0.4": 0, "0.4-0.6": 3, "0.6-0.8": 2, "0.8-1.0": 3}
    stored = parse_report(report)
    assert stored.scores is not None
    assert (stored.scores.mean, stored.scores.median) == (Decimal("0.69"), Decimal("0.67"))


def test_edited_criteria_rescore_on_a_reimport(
    fhir_client: FhirClient,
    imported: tuple[str, str, Path, dict[str, Json]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A region weighs consent 7 instead of 1 (version 2): H2, a SIP without consent, meets
    6 of now 18 → 0.33 (by hand); H1 (consent ja) stays 1.00."""
    unit, system, path, _ = imported
    mappings = tmp_path / "mappings"
    shutil.copytree(REPO_ROOT / "mappings", mappings)
    criteria_file = mappings / "plan-quality.json"
    document = json.loads(criteria_file.read_text(encoding="utf-8"))
    document["version"] = "2"
    for item in document["criteria"]:
        if item["id"] == "consent-registered":
            item["weight"] = 7
    criteria_file.write_text(json.dumps(document, ensure_ascii=False), encoding="utf-8")
    monkeypatch.setenv("SIP_FHIR_MAPPINGS_DIR", str(mappings))
    get_settings.cache_clear()

    result = CliRunner().invoke(app, ["import", str(path)])
    assert result.exit_code == 0, result.output
    on_server = _care_plans(fhir_client, unit)
    rescored = {key: plan_quality(plan) for key, plan in on_server.items()}
    h2, h1 = rescored[f"{system}:H2"], rescored[f"{system}:H1"]
    assert h2 is not None and (h2.score, h2.version) == (Decimal("0.33"), "2")
    assert h1 is not None and (h1.score, h1.version) == (Decimal("1.00"), "2")
