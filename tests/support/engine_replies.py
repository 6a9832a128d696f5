"""Scripted server replies for the sync engine's outbox tests."""

from __future__ import annotations

import json

import requests

from adapter.mapping.resource import MappedResource

BASE = "http://fhir.test/fhir"


SYSTEM = "https://example.org/id"


Reply = tuple[int, dict[str, str], str]


def procedure(value: str) -> MappedResource:
    body = {"resourceType": "Procedure", "identifier": [{"system": SYSTEM, "value": value}]}
    return MappedResource("Procedure", SYSTEM, value, body)


def created(request: requests.PreparedRequest) -> Reply:
    bundle = json.loads(request.body or b"{}")
    entries = [
        {"response": {"status": "201 Created", "location": f"Procedure/{i}/_history/1"}}
        for i, _ in enumerate(bundle["entry"])
    ]
    return (
        200,
        {},
        json.dumps({"resourceType": "Bundle", "type": "transaction-response", "entry": entries}),
    )


def outcome(status: int, text: str) -> Reply:
    body = {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": "conflict", "diagnostics": text}],
    }
    return status, {}, json.dumps(body)


def entries_of(request: requests.PreparedRequest) -> int:
    return len(json.loads(request.body or b"{}")["entry"])
