"""`sip-fhir report`: the registry feed against the real server (HAPI has one base, so the
"registry" is the same server under the registry settings): one transaction of summary reports,
idempotent per unit and period, and the NDJSON files."""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from adapter.canonical import HSA_ID, ID_MEASURE_REPORT, IndicatorCode
from adapter.cli import app
from adapter.fhirclient import FhirClient, Rejected
from adapter.followup.rulesfile import load_rules
from adapter.indicators.measures import load_measures
from adapter.indicators.registry import post_to_registry
from adapter.indicators.store import indicators_from_server
from adapter.settings import REPO_ROOT, EndpointSettings, get_settings
from tests.support.indicators import MAPPINGS, PERIOD, Scenario, on_server, use_servers

pytestmark = pytest.mark.integration

RULES = load_rules(REPO_ROOT / "mappings" / "rules.json")
PERIOD_ARG = f"{PERIOD.start}/{PERIOD.end}"


@pytest.fixture(scope="module")
def scenario(fhir_client: FhirClient) -> Scenario:
    return on_server(fhir_client)


@pytest.fixture
def registry_env(hapi_base_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # HAPI has one base: the "registry" is the same server, reached through its own settings.
    use_servers(
        monkeypatch, base_url=hapi_base_url, registry_base_url=hapi_base_url, registry_auth="none"
    )
    yield
    get_settings.cache_clear()


def _summaries(client: FhirClient, unit: str) -> dict[str, dict]:
    """The summary report of each indicator for the unit and PERIOD, by identifier value."""
    found: dict[str, dict] = {}
    for code in IndicatorCode:
        value = f"{code.value}:{unit}:{PERIOD_ARG}"
        token = f"{ID_MEASURE_REPORT}|{value}"
        matches = list(client.search("MeasureReport", {"identifier": token}))
        assert len(matches) == 1, (value, len(matches))  # exactly once: no duplicates
        found[value] = matches[0]
    return found


def test_report_posts_one_idempotent_transaction_and_writes_ndjson(
    fhir_client: FhirClient, scenario: Scenario, registry_env: None, tmp_path: Path
) -> None:
    args = ["report", "--unit", scenario.unit, "--period", PERIOD_ARG, "--post"]
    first = CliRunner().invoke(app, [*args, "--ndjson", str(tmp_path / "feed")])
    assert first.exit_code == 0, first.output
    assert "Registret" in first.output
    reports = _summaries(fhir_client, scenario.unit)
    assert {r["type"] for r in reports.values()} == {"summary"}
    coverage = reports[f"plan-coverage:{scenario.unit}:{PERIOD_ARG}"]
    counts = {
        p["code"]["coding"][0]["code"]: p["count"] for p in coverage["group"][0]["population"]
    }
    assert counts == {"initial-population": 19, "denominator": 19, "numerator": 17}
    assert coverage["group"][0]["measureScore"]["value"] == 0.8947
    assert all("subjectResults" not in json.dumps(r) for r in reports.values())
    versions = {k: r["meta"]["versionId"] for k, r in reports.items()}

    again = CliRunner().invoke(app, args)
    assert again.exit_code == 0, again.output
    assert {
        k: r["meta"]["versionId"] for k, r in _summaries(fhir_client, scenario.unit).items()
    } == versions

    lines = (tmp_path / "feed" / "MeasureReport.ndjson").read_text(encoding="utf-8").splitlines()
    feed = [json.loads(line) for line in lines]
    assert len(feed) == len(IndicatorCode)
    assert {r["identifier"][0]["value"] for r in feed} == set(reports)
    assert sorted(p.name for p in (tmp_path / "feed").iterdir()) == ["MeasureReport.ndjson"]
    text = "\n".join(lines)
    assert not any(person.digits in text for person in scenario.people)


def test_the_registry_transaction_holds_only_summaries_and_updates_measures_in_place(
    fhir_client: FhirClient, scenario: Scenario, hapi_base_url: str
) -> None:
    results, _ = indicators_from_server(
        fhir_client, [scenario.unit], PERIOD, RULES, mappings=MAPPINGS
    )
    measures = list(load_measures(REPO_ROOT / "profiles").values())
    with FhirClient(EndpointSettings(base_url=hapi_base_url)) as registry:
        written = post_to_registry(registry, results, measures)
    n = len(IndicatorCode)
    assert [w.resource_type for w in written] == ["Measure"] * n + ["MeasureReport"] * n
    assert all(w.status in (200, 201) for w in written)
    reports = _summaries(fhir_client, scenario.unit)
    for report in reports.values():
        assert report["reporter"]["identifier"] == {"system": HSA_ID, "value": scenario.unit}
    # The Measures were updated in place by their canonical URL (installed from profiles/ above).
    for measure in measures:
        (found,) = fhir_client.search("Measure", {"url": measure.url})
        assert found["id"] == measure.indicator.value


class RejectingRegistry(FhirClient):
    """The registry server, but each transaction carries one more entry that HAPI rejects (400):
    a MeasureReport about a Group the server does not hold (referential integrity, on by default
    in HAPI), placed last so the good entries before it are processed first."""

    def transaction(self, bundle: dict[str, Any]) -> dict[str, Any]:  # type: ignore[override]
        sent = copy.deepcopy(bundle)
        bad = copy.deepcopy(sent["entry"][-1]["resource"])
        marker = uuid.uuid4().hex
        bad["identifier"] = [{**bad["identifier"][0], "value": f"avvisad-{marker}"}]
        bad["subject"] = {"reference": f"Group/finns-inte-{marker}"}
        sent["entry"].append(
            {"resource": bad, "request": {"method": "POST", "url": "MeasureReport"}}
        )
        return super().transaction(sent)


def _reports_of(client: FhirClient, unit: str) -> list[dict]:
    tokens = ",".join(f"{ID_MEASURE_REPORT}|{c.value}:{unit}:{PERIOD_ARG}" for c in IndicatorCode)
    return list(client.search("MeasureReport", {"identifier": tokens}))


def test_a_rejected_entry_leaves_nothing_of_the_registry_transaction(
    fhir_client: FhirClient, scenario: Scenario, hapi_base_url: str
) -> None:
    computed, _ = indicators_from_server(
        fhir_client, [scenario.unit], PERIOD, RULES, mappings=MAPPINGS
    )
    unit = f"SE2321000057-E{uuid.uuid4().hex[:12].upper()}"  # reports no earlier run has sent
    results = [replace(result, unit_hsa_id=unit) for result in computed]
    measures = list(load_measures(REPO_ROOT / "profiles").values())
    before = {m.url: next(iter(fhir_client.search("Measure", {"url": m.url}))) for m in measures}
    changed = [replace(m, resource={**m.resource, "description": "ändrad"}) for m in measures]

    with (
        RejectingRegistry(EndpointSettings(base_url=hapi_base_url)) as registry,
        pytest.raises(Rejected),
    ):
        post_to_registry(registry, results, changed)

    assert _reports_of(fhir_client, unit) == []  # none of the reports before the bad entry
    for measure in measures:  # nor the Measure updates at the head of the transaction
        (after,) = fhir_client.search("Measure", {"url": measure.url})
        assert after["meta"]["versionId"] == before[measure.url]["meta"]["versionId"]
        assert after.get("description") == before[measure.url].get("description") != "ändrad"
    # The same transaction without the bad entry goes through: the failure stopped it, not the data.
    with FhirClient(EndpointSettings(base_url=hapi_base_url)) as registry:
        post_to_registry(registry, results, measures)
    assert len(_reports_of(fhir_client, unit)) == len(IndicatorCode)
