"""FhirClient faults a real server will not produce on demand: retries, budgets, foreign links."""

from __future__ import annotations

import http.client
import json
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any
from urllib.parse import parse_qs

import pytest
import requests
import responses
from urllib3.exceptions import NewConnectionError, ProtocolError

from adapter.canonical import PERSONNUMMER
from adapter.fhirclient import (
    AuthError,
    Conflict,
    FatalError,
    FhirClient,
    FhirError,
    NotFound,
    Rejected,
    TemporaryError,
    WriteResult,
)
from adapter.fhirclient.transport import parse_retry_after
from adapter.settings import EndpointSettings
from tests.support.clock import FakeTime

BASE = "https://fhir.test/fhir"
PATIENT = {"resourceType": "Patient", "active": True}


def outcome(text: str, *, severity: str = "error", field: str = "diagnostics") -> dict[str, Any]:
    issue: dict[str, Any] = {"severity": severity, "code": "processing"}
    issue["details" if field == "details" else "diagnostics"] = (
        {"text": text} if field == "details" else text
    )
    return {"resourceType": "OperationOutcome", "issue": [issue]}


def make_client(fake_time: FakeTime, **options: Any) -> FhirClient:
    """A client on BASE that sleeps on the fake clock; callbacks and endpoint settings as given."""
    hooks = {
        name: options.pop(name)
        for name in ("on_request", "on_retry", "on_error")
        if name in options
    }
    endpoint = EndpointSettings(base_url=BASE, **options)
    return FhirClient(endpoint, sleep=fake_time.sleep, clock=fake_time.clock, **hooks)


def reset_error() -> requests.ConnectionError:
    return requests.ConnectionError(
        ProtocolError("Connection aborted.", ConnectionResetError(104, "Connection reset by peer"))
    )


def bundle(resources: list[dict[str, Any]], next_url: str | None = None) -> dict[str, Any]:
    links = [{"relation": "next", "url": next_url}] if next_url else []
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "link": links,
        "entry": [{"resource": r, "search": {"mode": "match"}} for r in resources],
    }


# --- Retry-After and backoff ---


@responses.activate
def test_429_retry_after_seconds_is_honoured(fake_time: FakeTime) -> None:
    responses.get(f"{BASE}/Patient/1", status=429, headers={"Retry-After": "7"})
    responses.get(f"{BASE}/Patient/1", json={"resourceType": "Patient", "id": "1"})
    retries: list[tuple[int, float, str]] = []
    client = make_client(fake_time, on_retry=lambda *args: retries.append(args))

    assert client.read("Patient", "1")["id"] == "1"
    assert fake_time.sleeps == [7.0]
    assert retries == [(1, 7.0, "HTTP 429")]


@responses.activate
def test_retry_after_is_capped_by_max_retry_after(fake_time: FakeTime) -> None:
    responses.get(f"{BASE}/Patient/1", status=503, headers={"Retry-After": "3600"})
    responses.get(f"{BASE}/Patient/1", json={"resourceType": "Patient", "id": "1"})

    make_client(fake_time, max_retry_after=12).read("Patient", "1")
    assert fake_time.sleeps == [12.0]


@responses.activate
def test_429_retry_after_http_date_is_honoured_and_capped(fake_time: FakeTime) -> None:
    soon = format_datetime(datetime.now(UTC) + timedelta(seconds=10), usegmt=True)
    later = format_datetime(datetime.now(UTC) + timedelta(hours=1), usegmt=True)
    responses.get(f"{BASE}/Patient/1", status=429, headers={"Retry-After": soon})
    responses.get(f"{BASE}/Patient/1", status=429, headers={"Retry-After": later})
    responses.get(f"{BASE}/Patient/1", json={"resourceType": "Patient", "id": "1"})

    make_client(fake_time, max_retry_after=30).read("Patient", "1")
    first, second = fake_time.sleeps
    assert 7.0 < first <= 10.0  # the date, less the second or two this test took
    assert second == 30.0


def test_parse_retry_after_forms() -> None:
    now = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
    assert parse_retry_after("120", now) == 120.0
    assert parse_retry_after("Sat, 01 Mar 2025 12:00:45 GMT", now) == 45.0
    assert parse_retry_after("Sat, 01 Mar 2025 11:00:00 GMT", now) == 0.0  # in the past
    assert parse_retry_after("soon", now) is None
    assert parse_retry_after(None, now) is None


@responses.activate
def test_503_storm_exhausts_attempts_with_growing_backoff(fake_time: FakeTime) -> None:
    responses.get(f"{BASE}/Patient/1", status=503, json=outcome("Servern startar om"))
    errors: list[FhirError] = []
    client = make_client(
        fake_time,
        max_attempts=5,
        max_retry_seconds=1000,
        max_retry_after=60,
        on_error=errors.append,
    )

    with pytest.raises(TemporaryError) as caught:
        client.read("Patient", "1")
    assert len(responses.calls) == 5
    assert caught.value.attempts == 5
    assert caught.value.status == 503
    assert "Servern startar om" in str(caught.value)
    assert errors == [caught.value]
    # exponential: 1, 2, 4, 8 seconds plus up to 1 s jitter each
    assert len(fake_time.sleeps) == 4
    for wait, base in zip(fake_time.sleeps, (1, 2, 4, 8), strict=True):
        assert base <= wait <= base + 1


@responses.activate
def test_retry_budget_stops_before_a_wait_that_would_overrun_it(fake_time: FakeTime) -> None:
    responses.get(f"{BASE}/Patient/1", status=503, headers={"Retry-After": "30"})
    client = make_client(fake_time, max_attempts=50, max_retry_seconds=100)

    with pytest.raises(TemporaryError) as caught:
        client.read("Patient", "1")
    assert fake_time.sleeps == [30.0, 30.0, 30.0]  # a fourth wait would end at 120 s > 100 s
    assert caught.value.attempts == 4


@responses.activate
def test_connection_reset_is_retried(fake_time: FakeTime) -> None:
    responses.get(f"{BASE}/Patient/1", body=reset_error())
    responses.get(f"{BASE}/Patient/1", json={"resourceType": "Patient", "id": "1"})

    assert make_client(fake_time).read("Patient", "1")["id"] == "1"
    assert len(responses.calls) == 2
    assert len(fake_time.sleeps) == 1


@pytest.mark.parametrize(
    "cause",
    [
        http.client.HTTPException("got more than 100 headers"),
        http.client.LineTooLong("header line"),
        http.client.BadStatusLine("SSH-2.0-OpenSSH_9.6"),
    ],
)
@responses.activate
def test_an_answer_that_breaks_http_is_not_retried_as_a_network_fault(
    fake_time: FakeTime, cause: http.client.HTTPException
) -> None:
    """Issue 12.1: 100+ X-Cache headers from HAPI were retried for 39 s as "Ingen kontakt"."""
    aborted = requests.ConnectionError(ProtocolError("Connection aborted.", cause))
    responses.post(BASE, body=aborted)

    with pytest.raises(FatalError) as caught:
        make_client(fake_time).batch({"resourceType": "Bundle", "type": "batch", "entry": []})
    assert not isinstance(caught.value, TemporaryError)
    assert len(responses.calls) == 1 and fake_time.sleeps == []
    assert "HTTP-protokollet" in caught.value.message and str(cause) in caught.value.message
    assert "Ingen kontakt" not in caught.value.message


@responses.activate
def test_a_connection_closed_before_the_answer_is_still_retried(fake_time: FakeTime) -> None:
    closed = http.client.RemoteDisconnected("Remote end closed connection without response")
    responses.get(f"{BASE}/Patient/1", body=requests.ConnectionError(ProtocolError("x", closed)))
    responses.get(f"{BASE}/Patient/1", json={"resourceType": "Patient", "id": "1"})

    assert make_client(fake_time).read("Patient", "1")["id"] == "1"
    assert len(responses.calls) == 2


@responses.activate
def test_plain_create_is_not_resent_after_a_reset(fake_time: FakeTime) -> None:
    """The server may have stored it before the connection died: resending could duplicate."""
    responses.post(f"{BASE}/Patient", body=reset_error())

    with pytest.raises(TemporaryError, match="Connection reset"):
        make_client(fake_time).create(PATIENT)
    assert len(responses.calls) == 1


@responses.activate
def test_plain_create_is_resent_when_it_never_reached_the_server(fake_time: FakeTime) -> None:
    refused = requests.ConnectionError(NewConnectionError(None, "Connection refused"))
    responses.post(f"{BASE}/Patient", body=refused)
    responses.post(f"{BASE}/Patient", status=429)
    responses.post(
        f"{BASE}/Patient",
        status=201,
        headers={"Location": f"{BASE}/Patient/9/_history/1"},
        json={"resourceType": "Patient", "id": "9"},
    )

    result = make_client(fake_time).create(PATIENT)
    assert (result.id, result.version, result.created) == ("9", "1", True)
    assert len(responses.calls) == 3


@responses.activate
def test_conditional_create_is_retried_after_a_reset(fake_time: FakeTime) -> None:
    responses.post(f"{BASE}/Patient", body=reset_error())
    responses.post(f"{BASE}/Patient", status=200, headers={"Location": f"{BASE}/Patient/3"})

    result = make_client(fake_time).create(PATIENT, if_none_exist="identifier=s|v")
    assert (result.id, result.created) == ("3", False)
    assert responses.calls[1].request.headers["If-None-Exist"] == "identifier=s|v"


@responses.activate
def test_transaction_is_retried_on_500(fake_time: FakeTime) -> None:
    responses.post(BASE, status=500, json=outcome("Deadlock"))
    responses.post(BASE, json={"resourceType": "Bundle", "type": "transaction-response"})

    answer = make_client(fake_time).transaction({"resourceType": "Bundle", "entry": []})
    assert answer["type"] == "transaction-response"
    assert json.loads(responses.calls[0].request.body)["type"] == "transaction"


# --- the error taxonomy ---


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, Rejected),
        (422, Rejected),
        (401, AuthError),
        (403, AuthError),
        (404, NotFound),
        (410, NotFound),
        (409, Conflict),
        (412, Conflict),
        (405, FatalError),
    ],
)
@responses.activate
def test_fatal_statuses_are_not_retried(
    fake_time: FakeTime, status: int, kind: type[FatalError]
) -> None:
    responses.put(f"{BASE}/Patient/1", status=status, json=outcome(f"orsak {status}"))

    with pytest.raises(kind) as caught:
        make_client(fake_time).update({"resourceType": "Patient", "id": "1"})
    assert type(caught.value) is kind
    assert caught.value.status == status
    assert caught.value.message == f"orsak {status}"
    assert len(responses.calls) == 1
    assert fake_time.sleeps == []


@responses.activate
def test_message_prefers_details_text_and_errors_over_information(fake_time: FakeTime) -> None:
    body = {
        "resourceType": "OperationOutcome",
        "issue": [
            {"severity": "information", "code": "informational", "diagnostics": "Allt lugnt"},
            {"severity": "error", "code": "required", "details": {"text": "birthDate saknas"}},
            {"severity": "error", "code": "value", "diagnostics": "Ogiltigt kön"},
        ],
    }
    responses.post(f"{BASE}/Patient", status=422, json=body)

    with pytest.raises(Rejected) as caught:
        make_client(fake_time).create(PATIENT)
    assert caught.value.message == "birthDate saknas; Ogiltigt kön"
    assert caught.value.outcome == body
    assert str(caught.value) == "birthDate saknas; Ogiltigt kön (HTTP 422, POST /Patient)"


@responses.activate
def test_non_json_error_body_becomes_the_message(fake_time: FakeTime) -> None:
    responses.get(f"{BASE}/Patient/1", status=405, body="Method not allowed here")

    with pytest.raises(FatalError, match="Method not allowed here"):
        make_client(fake_time).read("Patient", "1")


@responses.activate
def test_personnummer_is_masked_in_error_messages(fake_time: FakeTime) -> None:
    body = outcome("Patient med identifierare 19121212-9819 finns redan (191212129819)")
    responses.post(f"{BASE}/Patient", status=409, json=body)

    with pytest.raises(Conflict) as caught:
        make_client(fake_time).create(PATIENT)
    text = str(caught.value)
    assert "1212-1212" not in text and "191212129819" not in text
    assert "19121212-****" in text
    assert "19121212-9819" not in json.dumps(caught.value.outcome)


@responses.activate
def test_redirect_is_refused_not_followed(fake_time: FakeTime) -> None:
    responses.get(f"{BASE}/Patient/1", status=302, headers={"Location": "https://other.test/x"})

    with pytest.raises(FatalError, match=r"other\.test"):
        make_client(fake_time).read("Patient", "1")
    assert len(responses.calls) == 1


# --- paging and privacy of request lines ---


@responses.activate
def test_search_follows_next_links_and_sends_no_cache(fake_time: FakeTime) -> None:
    page2 = f"{BASE}?_getpages=abc&_getpagesoffset=2"
    responses.get(f"{BASE}/Patient", json=bundle([{"id": "1"}, {"id": "2"}], page2))
    responses.get(page2, json=bundle([{"id": "3"}]))

    found = list(make_client(fake_time).search("Patient", {"_tag": "s|t", "_count": "2"}))
    assert [r["id"] for r in found] == ["1", "2", "3"]
    assert all(c.request.headers["Cache-Control"] == "no-cache" for c in responses.calls)
    assert parse_qs(responses.calls[0].request.url.split("?", 1)[1]) == {
        "_tag": ["s|t"],
        "_count": ["2"],
    }


@responses.activate
def test_every_request_asks_for_an_uncached_answer(fake_time: FakeTime) -> None:
    """Batch and transaction Bundles hold searches too: HAPI serves those from its cache as well."""
    empty = {"resourceType": "Bundle", "type": "batch-response", "entry": []}
    responses.post(BASE, json=empty)
    responses.post(BASE, json=empty | {"type": "transaction-response"})
    responses.get(f"{BASE}/Patient/1", json={"resourceType": "Patient", "id": "1"})
    responses.post(f"{BASE}/Patient/_search", json=bundle([]))
    client = make_client(fake_time)

    client.batch({"resourceType": "Bundle", "type": "batch", "entry": []})
    client.transaction({"resourceType": "Bundle", "type": "transaction", "entry": []})
    client.read("Patient", "1")
    list(client.search("Patient", {"_id": "1"}, post=True))
    assert [c.request.headers.get("Cache-Control") for c in responses.calls] == ["no-cache"] * 4


@responses.activate
def test_search_leaves_out_included_resources(fake_time: FakeTime) -> None:
    page = bundle([{"resourceType": "CarePlan", "id": "c"}])
    page["entry"].append({"resource": {"resourceType": "Patient"}, "search": {"mode": "include"}})
    responses.get(f"{BASE}/CarePlan", json=page)

    client = make_client(fake_time)
    assert [r["id"] for r in client.search("CarePlan", {"_include": "CarePlan:subject"})] == ["c"]
    pages = list(client.search_bundles("CarePlan", {"_include": "CarePlan:subject"}))
    assert len(pages[0]["entry"]) == 2


@pytest.mark.parametrize(
    "foreign",
    [
        "https://evil.test/fhir?_getpages=abc",
        "http://fhir.test/fhir?_getpages=abc",  # scheme downgrade
        "https://fhir.test:8443/fhir?_getpages=abc",  # other port
    ],
)
@responses.activate
def test_foreign_next_link_is_refused(fake_time: FakeTime, foreign: str) -> None:
    responses.get(f"{BASE}/Patient", json=bundle([{"id": "1"}], foreign))

    results = make_client(fake_time, auth="bearer", token="hemlig").search("Patient")
    assert next(results)["id"] == "1"
    with pytest.raises(FatalError, match="annan server"):
        next(results)
    assert len(responses.calls) == 1


@responses.activate
def test_post_search_sends_a_form_body(fake_time: FakeTime) -> None:
    criteria = {"identifier": f"{PERSONNUMMER}|191212129819"}
    responses.post(f"{BASE}/Patient/_search", json=bundle([{"id": "p"}]))

    assert [r["id"] for r in make_client(fake_time).search("Patient", criteria, post=True)] == ["p"]
    request = responses.calls[0].request
    assert "191212129819" not in request.url
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert parse_qs(request.body) == {"identifier": [f"{PERSONNUMMER}|191212129819"]}


@responses.activate
def test_personnummer_in_a_url_is_refused(fake_time: FakeTime) -> None:
    client = make_client(fake_time)
    with pytest.raises(ValueError, match="POST _search"):
        list(client.search("Patient", {"identifier": f"{PERSONNUMMER}|191212129819"}))
    with pytest.raises(ValueError, match="transaktion"):
        client.conditional_update(PATIENT, f"identifier={PERSONNUMMER}|191212129819")
    assert len(responses.calls) == 0


def test_ids_and_types_cannot_escape_the_path(fake_time: FakeTime) -> None:
    client = make_client(fake_time)
    with pytest.raises(ValueError, match="id"):
        client.read("Patient", "../metadata")
    with pytest.raises(ValueError, match="resurstyp"):
        client.create({"resourceType": "Patient/../x"})


# --- requests as sent, results as parsed ---


@responses.activate
def test_update_sends_weak_if_match_and_parses_etag(fake_time: FakeTime) -> None:
    responses.put(
        f"{BASE}/Patient/7",
        status=200,
        headers={"ETag": 'W/"4"'},
        json={"resourceType": "Patient", "id": "7", "meta": {"versionId": "4"}},
    )

    result = make_client(fake_time).update({"resourceType": "Patient", "id": "7"}, if_match="3")
    request = responses.calls[0].request
    assert request.headers["If-Match"] == 'W/"3"'
    assert request.headers["Content-Type"] == "application/fhir+json"
    assert request.headers["Accept"] == "application/fhir+json"
    assert (result.resource_type, result.id, result.version, result.created) == (
        "Patient",
        "7",
        "4",
        False,
    )


@responses.activate
def test_typed_models_are_sent_as_fhir_json(fake_time: FakeTime) -> None:
    from fhir.resources.R4B.patient import Patient

    responses.post(f"{BASE}/Patient", status=201, headers={"Location": "Patient/5/_history/1"})
    make_client(fake_time).create(Patient(active=True, gender="female", birthDate="1950-02-03"))
    sent = json.loads(responses.calls[0].request.body)
    assert sent == {
        "resourceType": "Patient",
        "active": True,
        "gender": "female",
        "birthDate": "1950-02-03",
    }


def test_write_result_from_transaction_entry() -> None:
    entry = {
        "response": {
            "status": "201 Created",
            "location": "CarePlan/12/_history/1",
            "etag": 'W/"1"',
        }
    }
    result = WriteResult.from_entry(entry)
    assert (result.resource_type, result.id, result.version, result.status, result.created) == (
        "CarePlan",
        "12",
        "1",
        201,
        True,
    )


@responses.activate
def test_validate_returns_the_outcome_on_412(fake_time: FakeTime) -> None:
    responses.post(f"{BASE}/Patient/$validate", status=412, json=outcome("birthDate saknas"))

    result = make_client(fake_time).validate(PATIENT, "https://x.test/StructureDefinition/p")
    assert result["issue"][0]["diagnostics"] == "birthDate saknas"
    assert parse_qs(responses.calls[0].request.url.split("?", 1)[1]) == {
        "profile": ["https://x.test/StructureDefinition/p"]
    }


@responses.activate
def test_capabilities_refuses_other_fhir_versions(fake_time: FakeTime) -> None:
    responses.get(
        f"{BASE}/metadata", json={"resourceType": "CapabilityStatement", "fhirVersion": "5.0.0"}
    )

    with pytest.raises(FatalError, match=r"FHIR 5\.0\.0"):
        make_client(fake_time).capabilities()


@responses.activate
def test_on_request_reports_path_status_and_time(fake_time: FakeTime) -> None:
    seen: list[tuple[str, str, int | None, float]] = []
    responses.get(f"{BASE}/Patient", json=bundle([]))
    client = make_client(fake_time, on_request=lambda *args: seen.append(args))

    list(client.search("Patient", {"name": "Sven"}))
    assert seen == [("GET", "/fhir/Patient", 200, 0.0)]
