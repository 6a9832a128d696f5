"""The registry feed: summary reports only, one transaction, stable NDJSON; and its settings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import SecretStr

from adapter.canonical import IndicatorCode
from adapter.domain import EventCode
from adapter.indicators.compute import Period, unit_indicators
from adapter.indicators.measures import load_measures
from adapter.indicators.registry import ndjson_resources, registry_bundle, write_ndjson
from adapter.settings import REPO_ROOT, AuthMode, Settings
from tests.support.rules import RULES, UNIT, UNIT_B, d, entry, event, person, plan, state

PERIOD = Period(d("2024-12-05"), d("2024-12-11"))


def _results() -> list:
    states = [
        state(
            patient=person(n),
            entries=(entry("2024-12-09", "30.0", unit=unit),),
            plans=(plan(f"x:{n}", unit=unit),) if n % 2 else (),
            events=(event("2024-12-06", EventCode.AU124, unit=unit),),
        )
        for n, unit in enumerate([UNIT, UNIT, UNIT_B, UNIT_B, UNIT_B])
    ]
    return [r for unit in (UNIT, UNIT_B) for r in unit_indicators(states, unit, PERIOD, RULES)]


def _digits() -> list[str]:
    return [person(n).digits for n in range(5)]


def test_one_transaction_of_summary_reports_that_name_no_patient() -> None:
    results = _results()
    bundle = registry_bundle(results)
    assert bundle["type"] == "transaction"
    entries = bundle["entry"]
    assert len(entries) == len(results) == 2 * len(IndicatorCode)
    for entry_ in entries:
        resource = entry_["resource"]
        assert resource["resourceType"] == "MeasureReport"
        assert resource["type"] == "summary"
        value = resource["identifier"][0]["value"]
        assert entry_["request"]["method"] == "PUT"
        assert entry_["request"]["url"].startswith("MeasureReport?identifier=")
        assert value.split(":")[0] in {c.value for c in IndicatorCode}
    text = json.dumps(bundle)
    assert "subjectResults" not in text and "List" not in text and "Patient" not in text
    assert not any(digits in text for digits in _digits())


def test_measures_go_first_as_conditional_updates_on_their_url() -> None:
    measures = list(load_measures(REPO_ROOT / "profiles").values())
    bundle = registry_bundle(_results(), measures)
    head = bundle["entry"][: len(measures)]
    assert [e["request"]["url"] for e in head] == [f"Measure?url={m.url}" for m in measures]
    assert all("id" not in e["resource"] for e in head)  # the registry has its own ids


def test_ndjson_has_one_file_per_type_and_stable_ids(tmp_path: Path) -> None:
    measures = list(load_measures(REPO_ROOT / "profiles").values())
    files = write_ndjson(tmp_path / "a", ndjson_resources(_results(), measures))
    assert {p.name for p in files.values()} == {"Measure.ndjson", "MeasureReport.ndjson"}
    lines = files["MeasureReport"].read_text(encoding="utf-8").splitlines()
    reports = [json.loads(line) for line in lines]
    assert len(reports) == 2 * len(IndicatorCode)
    assert {r["type"] for r in reports} == {"summary"}
    assert len({r["id"] for r in reports}) == len(reports)
    assert len(files["Measure"].read_text(encoding="utf-8").splitlines()) == len(measures)
    again = write_ndjson(tmp_path / "b", ndjson_resources(_results(), measures))
    assert again["MeasureReport"].read_bytes() == files["MeasureReport"].read_bytes()
    assert not any(d in files["MeasureReport"].read_text(encoding="utf-8") for d in _digits())


def test_ndjson_without_measures_writes_reports_only(tmp_path: Path) -> None:
    files = write_ndjson(tmp_path, ndjson_resources(_results()))
    assert list(files) == ["MeasureReport"]


def test_registry_endpoint_has_its_own_login_and_the_shared_timeouts() -> None:
    settings = Settings(
        _env_file=None,
        base_url="https://fhir.region.se/fhir",
        token=SecretStr("main-token"),
        auth=AuthMode.BEARER,
        read_timeout=12.5,
        registry_base_url="https://register.example.se/fhir",
        registry_auth=AuthMode.OAUTH2,
        registry_oauth2_token_url="https://idp.example.se/token",
        registry_oauth2_client_id="region-x",
        registry_client_cert=Path("/etc/cert.pem"),
    )
    endpoint = settings.registry_endpoint()
    assert endpoint.base_url == "https://register.example.se/fhir"
    assert endpoint.auth is AuthMode.OAUTH2
    assert endpoint.token is None  # the main server's token never goes to the registry
    assert endpoint.oauth2_client_id == "region-x"
    assert endpoint.client_cert == Path("/etc/cert.pem")
    assert endpoint.read_timeout == 12.5
    assert settings.endpoint().base_url == "https://fhir.region.se/fhir"


def test_no_registry_url_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="SIP_FHIR_REGISTRY_BASE_URL"):
        Settings(_env_file=None).registry_endpoint()
