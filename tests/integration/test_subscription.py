"""Event-driven follow-up: a record posted straight to the FHIR server (not through the adapter)
reaches the adapter's hook through a rest-hook Subscription, and the patient's Task is closed
within seconds. The hook runs in the real API app under uvicorn on a loopback port."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import requests

from adapter.api import create_app
from adapter.canonical import TaskType
from adapter.domain import EventCode
from adapter.fhirclient import FhirClient
from adapter.followup import subscriptions
from adapter.followup.load import patient_refs_of
from adapter.followup.reconcile import local_today, run_followups
from adapter.followup.rulesfile import load_rules
from adapter.followup.subscriptions import HOOK_HEADER, RegisterOutcome
from adapter.mapping import load_mappings, map_record, transaction_bundle
from adapter.settings import REPO_ROOT, Settings
from tests.support.api import running
from tests.support.net import free_port
from tests.support.people import fictional_person
from tests.support.records import STOCKHOLM, discharge, event, prea60_row

pytestmark = [
    pytest.mark.integration,
    pytest.mark.usefixtures("profiles_installed", "own_subscriptions"),
]

SECRET = f"hook-{uuid.uuid4().hex}"
MAPPINGS = load_mappings(REPO_ROOT / "mappings")
RULES = load_rules(REPO_ROOT / "mappings" / "rules.json")
DELIVERY_TIMEOUT = 90.0  # seconds; HAPI queues changes and delivers them from a scheduled task


@pytest.fixture
def adapter_url(hapi_base_url: str, tmp_path: Path) -> Iterator[str]:
    """The adapter's API (hook included) under uvicorn in a thread, talking to the test server."""
    settings = Settings(
        base_url=hapi_base_url, data_dir=tmp_path, hook_secret=SECRET, scheduler=False
    )
    with running(create_app(settings, readiness_checks={}), free_port()) as url:
        yield url


def _wait_active(client: FhirClient) -> None:
    deadline = time.monotonic() + 60
    while True:
        found = subscriptions.registered(client)
        if found and all(s.get("status") == "active" for s in found):
            return
        assert time.monotonic() < deadline, [s.get("status") for s in found]
        time.sleep(0.5)


def _task(client: FhirClient, ref: str, task_type: TaskType) -> dict:
    tasks = [
        t
        for t in client.search("Task", {"subject": ref}, post=True)
        if t["code"]["coding"][0]["code"] == task_type.value
    ]
    assert len(tasks) == 1, tasks
    return tasks[0]


def test_the_hook_refuses_a_caller_without_the_secret(adapter_url: str) -> None:
    url = f"{adapter_url}{subscriptions.HOOK_PATH}/Procedure/1"
    body = {"resourceType": "Procedure", "status": "completed"}
    assert requests.put(url, json=body, timeout=10).status_code == 401
    wrong = requests.put(url, json=body, headers={HOOK_HEADER: "nope"}, timeout=10)
    assert wrong.status_code == 401


def test_a_sipkall_posted_to_the_server_completes_the_sip_call_task(
    fhir_client: FhirClient, adapter_url: str, own_subscriptions: str
) -> None:
    today = local_today(RULES)
    unit = f"SE2321000057-E{uuid.uuid4().hex[:12].upper()}"
    patient = fictional_person()
    ready = datetime.combine(today - timedelta(days=1), datetime.min.time(), STOCKHOLM)
    records = [
        replace(
            prea60_row(patient, unit=unit, run=today - timedelta(days=7)),
            risk_percent=Decimal("23.5"),
        ),
        replace(
            discharge(patient, message_id=f"LC-{uuid.uuid4().hex[:10]}"),
            ready_at=ready + timedelta(hours=10),
        ),
    ]
    resources = [m for record in records for m in map_record(record, MAPPINGS)]
    fhir_client.transaction(transaction_bundle(resources))
    (ref,) = patient_refs_of(fhir_client, [patient])
    run_followups(fhir_client, RULES, today, patient_refs=[ref], mappings=MAPPINGS)
    task = _task(fhir_client, ref, TaskType.SIP_CALL)
    assert task["status"] == "requested"

    try:
        first = subscriptions.register(fhir_client, adapter_url, SECRET)
        assert {r.outcome for r in first} <= {RegisterOutcome.CREATED, RegisterOutcome.UPDATED}
        assert len(first) == len(subscriptions.CRITERIA)
        assert all(r.id.endswith(own_subscriptions) for r in first)  # no other run's ids
        _wait_active(fhir_client)
        again = subscriptions.register(fhir_client, adapter_url, SECRET)
        assert {r.outcome for r in again} == {RegisterOutcome.UNCHANGED}

        # Another system registers the SIP call, straight to the FHIR server.
        call = replace(event(patient, code=EventCode.SIPKALL, unit=unit, plan_ref=None), date=today)
        (procedure,) = [
            m.resource for m in map_record(call, MAPPINGS) if m.resource_type == "Procedure"
        ]
        procedure["subject"] = {"reference": ref}
        started = time.monotonic()
        fhir_client.create(procedure)
        while (current := fhir_client.read("Task", task["id"]))["status"] != "completed":
            assert time.monotonic() - started < DELIVERY_TIMEOUT, current["status"]
            time.sleep(0.25)
        latency = time.monotonic() - started
        print(f"\nSIPKALL → Task completed in {latency:.1f} s")
        assert (
            current["statusReason"]["text"] == f"Kallelse till SIP registrerad {today.isoformat()}"
        )
        assert _task(fhir_client, ref, TaskType.ESTABLISH_PLAN)["status"] == "requested"
    finally:
        assert subscriptions.remove(fhir_client) == len(subscriptions.CRITERIA)
