"""The adapter on a server with the official HAPI JPA starter's defaults (issue 12.1).

`SIP_FHIR_TEST_HAPI_MODE=starter` runs these (and the sync, follow-up and indicator tests) against
deploy/hapi in starter mode: in-memory H2, identical searches answered from a 60 s cache, no
rest-hook delivery, 20 per page, only `|` allowed raw in a query string. On our normal server the
same tests pass too; there they show the settings differ as README says.

What broke on the starter: a batch Bundle of searches was answered from the cache (a Goal added a
moment ago missing), and a batch of 100 cached searches came back with an `X-Cache` header per
entry, which the client refuses ("got more than 100 headers"), so `sip-fhir followups` failed
whenever it ran within a minute of the previous run.
"""

from __future__ import annotations

import http.client
import time
import uuid
from dataclasses import replace
from datetime import date, timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from adapter.api.clinic import Clinic
from adapter.domain import ExpressedBy, PlanGoal
from adapter.fhirclient import FhirClient
from adapter.followup.load import patient_refs_of
from adapter.followup.service import FollowupService
from adapter.mapping import map_record, transaction_bundle
from adapter.settings import EndpointSettings, Settings
from tests.support.faultproxy import Fault, FaultProxy
from tests.support.followups import MAPPINGS, listed, plan_of, run_cli, write
from tests.support.people import fictional_person

pytestmark = [pytest.mark.integration]

Json = dict[str, Any]
# Weekly Prea60 runs, one patient in all of them: the follow-up engine then asks, in one batch,
# for a run between each two (101 small searches: a full batch of 100 and one more).
WEEKLY_RUNS = [date(2023, 1, 2) + timedelta(weeks=n) for n in range(102)]


@pytest.fixture
def unit() -> str:
    return f"SE2321000057-E{uuid.uuid4().hex[:12].upper()}"  # HSA-ids are upper case


def goal(system: str, value: str) -> Json:
    return {
        "resourceType": "Goal",
        "lifecycleStatus": "active",
        "description": {"text": "Gå 20 minuter varje dag"},
        "identifier": [{"system": system, "value": value}],
    }


def goal_search_batch(system: str) -> Json:
    entry = {"request": {"method": "GET", "url": f"Goal?identifier={system}|&_count=50"}}
    return {"resourceType": "Bundle", "type": "batch", "entry": [entry]}


def found_in(answer: Json) -> int:
    (entry,) = answer["entry"]
    assert entry["response"]["status"].startswith("200"), entry
    return len(entry["resource"].get("entry", []))


def raw_get_status(url: str) -> int:
    """GET with the query sent exactly as written (requests would percent-encode `[`)."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.netloc, timeout=30)
    try:
        connection.request("GET", f"{parts.path}?{parts.query}")
        return connection.getresponse().status
    finally:
        connection.close()


# --- the server is in the mode the session asked for ---


def test_the_server_runs_with_the_settings_of_its_mode(hapi_base_url: str, hapi_mode: str) -> None:
    """Read from the server itself, not assumed: what differs between the two modes."""
    system = f"urn:sip-fhir:test:{uuid.uuid4().hex}"
    headers = {"Content-Type": "application/fhir+json"}
    for n in range(25):
        created = requests.post(
            f"{hapi_base_url}/Goal", json=goal(system, str(n)), headers=headers, timeout=30
        )
        assert created.status_code == 201, created.text
    page = requests.get(f"{hapi_base_url}/Goal", params={"identifier": f"{system}|"}, timeout=30)
    raw_bracket = raw_get_status(f"{hapi_base_url}/Goal?_id=[x]")
    search = f"{hapi_base_url}/Goal?identifier={system}|0"
    before = requests.get(search, timeout=30).json().get("entry", [])
    requests.post(f"{hapi_base_url}/Goal", json=goal(system, "0"), headers=headers, timeout=30)
    after = requests.get(search, timeout=30).json().get("entry", [])
    if hapi_mode == "starter":
        assert len(page.json()["entry"]) == 20  # the starter's default page size
        assert raw_bracket == 400  # Tomcat: only '|' relaxed
        assert (len(before), len(after)) == (1, 1)  # the second answer came from the cache
    else:
        assert len(page.json()["entry"]) == 10  # HAPI's default page size
        assert raw_bracket == 200
        assert (len(before), len(after)) == (1, 2)


# --- every read uncached ---


def test_a_batch_search_sees_a_write_made_since(fhir_client: FhirClient) -> None:
    system = f"urn:sip-fhir:test:{uuid.uuid4().hex}"
    fhir_client.create(goal(system, "1"))
    assert found_in(fhir_client.batch(goal_search_batch(system))) == 1
    fhir_client.create(goal(system, "2"))
    assert found_in(fhir_client.batch(goal_search_batch(system))) == 2


def test_a_batch_of_a_hundred_searches_can_be_repeated(hapi_base_url: str) -> None:
    """Answered from the cache, each entry added an X-Cache header to the response: 100+ headers."""
    system = f"urn:sip-fhir:test:{uuid.uuid4().hex}"
    bundle = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [
            {"request": {"method": "GET", "url": f"Goal?identifier={system}|{n}&_count=1"}}
            for n in range(100)
        ],
    }
    endpoint = EndpointSettings(base_url=hapi_base_url, max_attempts=2, max_retry_seconds=5)
    with FhirClient(endpoint) as client:
        for _ in range(2):
            answer = client.batch(bundle)
            assert [e["response"]["status"][:3] for e in answer["entry"]] == ["200"] * 100


@pytest.mark.usefixtures("profiles_installed")
def test_the_patient_view_shows_a_goal_added_since(
    fhir_client: FhirClient, hapi_base_url: str, unit: str, tmp_path: Any
) -> None:
    """The API's patient view reads plans, goals and care teams in one batch Bundle."""
    person = fictional_person()
    first = plan_of(person, unit)
    write(fhir_client, [*listed(person, unit), first])
    settings = Settings(base_url=hapi_base_url, data_dir=tmp_path, scheduler=False)
    clinic = Clinic(settings, FollowupService(settings))
    (reference,) = patient_refs_of(fhir_client, [person])
    patient_id = reference.split("/")[-1]

    def goals() -> list[str]:
        found = clinic.patient(patient_id, date(2024, 12, 10))
        assert found is not None
        view, _ = found
        return sorted(g.text for plan in view.plans for g in plan.goals)

    assert goals() == ["Gå 20 minuter varje dag"]
    second = replace(
        first,
        version=2,
        updated=first.updated + timedelta(days=1),
        goals=(*first.goals, PlanGoal("g2", "Inga oplanerade inläggningar", ExpressedBy.CARE)),
    )
    fhir_client.transaction(transaction_bundle(map_record(second, MAPPINGS)))
    assert goals() == ["Gå 20 minuter varje dag", "Inga oplanerade inläggningar"]


@pytest.mark.usefixtures("profiles_installed")
def test_followups_twice_within_a_minute(
    fhir_client: FhirClient, hapi_base_url: str, unit: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The issue's run: the second `sip-fhir followups` within 60 s failed with exit 1."""
    person = fictional_person()
    write(fhir_client, listed(person, unit, runs=WEEKLY_RUNS))
    monkeypatch.setenv("SIP_FHIR_MAX_RETRY_SECONDS", "5")
    args = ("followups", "--unit", unit, "--as-of", WEEKLY_RUNS[-1].isoformat())
    first = run_cli(monkeypatch, hapi_base_url, *args)
    assert first.exit_code == 0, first.output
    assert "Skapade: 1" in first.output
    second = run_cli(monkeypatch, hapi_base_url, *args)
    assert second.exit_code == 0, second.output
    assert "Skapade: 0" in second.output


# --- a deterministic failure is named, not retried as a network fault ---


def test_an_answer_with_too_many_headers_fails_at_once_naming_the_cause(
    hapi_base_url: str, unit: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the starter's cached batch answers did to `sip-fhir followups` (exit 1 after 39 s of
    retries, "Ingen kontakt med servern"): now one attempt and the real reason."""
    upstream = urlsplit(hapi_base_url)
    with FaultProxy(f"{upstream.scheme}://{upstream.netloc}", [Fault.MANY_HEADERS]) as proxy:
        started = time.monotonic()
        result = run_cli(
            monkeypatch, f"{proxy.url}{upstream.path}", "followups", "--unit", unit, "--dry-run"
        )
        seconds = time.monotonic() - started
        served = proxy.counts[Fault.MANY_HEADERS]
    assert result.exit_code == 1, result.output
    assert "got more than 100 headers" in result.output and "HTTP-protokollet" in result.output
    assert "Ingen kontakt" not in result.output
    assert served == 1 and seconds < 10
