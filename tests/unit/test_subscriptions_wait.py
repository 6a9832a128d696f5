"""Waiting for a server to activate Subscriptions, and the rest-hook probe, on a fake clock
(the real servers, delivering and not, are in tests/integration/test_resthook_check.py)."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

import pytest
import responses

from adapter.fhirclient import FhirClient
from adapter.followup import subscriptions
from adapter.settings import EndpointSettings
from tests.support.clock import FakeTime

BASE = "https://fhir.test/fhir"
IDS = ["a", "b"]


def found(*states: tuple[str, str], error: str | None = None) -> dict[str, Any]:
    entries = []
    for sub_id, status in states:
        resource = {"resourceType": "Subscription", "id": sub_id, "status": status}
        if error:
            resource["error"] = error
        entries.append({"resource": resource, "search": {"mode": "match"}})
    return {"resourceType": "Bundle", "type": "searchset", "entry": entries}


def client(fake_time: FakeTime) -> FhirClient:
    return FhirClient(EndpointSettings(base_url=BASE), sleep=fake_time.sleep, clock=fake_time.clock)


@responses.activate
def test_returns_as_soon_as_all_are_active(fake_time: FakeTime) -> None:
    responses.get(f"{BASE}/Subscription", json=found(("a", "active"), ("b", "requested")))
    responses.get(f"{BASE}/Subscription", json=found(("a", "active"), ("b", "active")))

    result = subscriptions.wait_for_active(
        client(fake_time), IDS, 65, sleep=fake_time.sleep, clock=fake_time.clock
    )
    assert {k: v["status"] for k, v in result.items()} == {"a": "active", "b": "active"}
    assert len(responses.calls) == 2 and sum(fake_time.sleeps) == 0.5
    assert parse_qs(responses.calls[0].request.url.split("?", 1)[1]) == {"_id": ["a,b"]}


@responses.activate
def test_gives_up_at_the_deadline(fake_time: FakeTime) -> None:
    responses.get(f"{BASE}/Subscription", json=found(("a", "requested"), ("b", "requested")))

    result = subscriptions.wait_for_active(
        client(fake_time), IDS, 8, sleep=fake_time.sleep, clock=fake_time.clock
    )
    assert {v["status"] for v in result.values()} == {"requested"}
    assert sum(fake_time.sleeps) == pytest.approx(8)


@responses.activate
def test_an_error_status_ends_the_wait(fake_time: FakeTime) -> None:
    responses.get(f"{BASE}/Subscription", json=found(("a", "error"), ("b", "active")))

    subscriptions.wait_for_active(
        client(fake_time), IDS, 65, sleep=fake_time.sleep, clock=fake_time.clock
    )
    assert fake_time.sleeps == []


@responses.activate
def test_the_probe_is_deleted_and_reports_the_servers_error(fake_time: FakeTime) -> None:
    responses.post(
        f"{BASE}/Subscription",
        status=201,
        headers={"Location": f"{BASE}/Subscription/77/_history/1"},
        json={"resourceType": "Subscription", "id": "77", "status": "requested"},
    )
    responses.get(f"{BASE}/Subscription", json=found(("77", "error"), error="Kanaltypen stöds ej"))
    deleted = responses.delete(f"{BASE}/Subscription/77")

    probe = subscriptions.probe_rest_hook(
        client(fake_time), 65, sleep=fake_time.sleep, clock=fake_time.clock
    )
    assert (probe.active, probe.status, probe.error) == (False, "error", "Kanaltypen stöds ej")
    assert deleted.call_count == 1
    sent = responses.calls[0].request.body
    assert b"rest-hook" in sent and subscriptions.PROBE_ENDPOINT.encode() in sent
