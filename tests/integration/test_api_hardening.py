"""The region's attack run and careless-user run (issue 10.5, 10.6, 10.8) replayed against the
service on the real HAPI server. The service talks to HAPI through a pass-through proxy that
keeps every request line, as HAPI's access log would: what must never reach the server is
checked there, not in a mock."""

from __future__ import annotations

import inspect
import json
import random
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from adapter.api.routes import health
from adapter.audit import AuditKind
from adapter.canonical import ID_DISCHARGE, ID_PLAN
from adapter.fhirclient import FhirClient
from adapter.followup.subscriptions import HOOK_HEADER, HOOK_PATH
from tests.support.api import (
    HOOK_SECRET,
    PREA60_HEADER,
    Clinic,
    Person,
    Service,
    make_service,
    running,
    today,
)
from tests.support.faultproxy import Fault, FaultProxy
from tests.support.formats import DISCHARGES_LINE as DISCHARGES_HEADER
from tests.support.net import free_port
from tests.support.people import Births, fictional_personnummer
from tests.support.sync import cli

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("profiles_installed")]

Json = dict[str, Any]
PNR_IN_URL = "19400402-9973"  # the attack run's: födelsenummer 997, a test number
DEEP_BODY = "[" * 950 + "]" * 950
DEEP_LINE = "[" * 2000 + "]" * 2000
BORN_1930S_TO_50S = Births(date(1930, 1, 1), 30)


@pytest.fixture(scope="module")
def clinic() -> Clinic:
    rng = random.Random()
    clinic = Clinic.new()
    for person in clinic.people:
        person.pnr = fictional_personnummer(rng, BORN_1930S_TO_50S)
    return clinic


@pytest.fixture(scope="module")
def proxy(hapi_base_url: str) -> Iterator[FaultProxy]:
    parts = urlsplit(hapi_base_url)
    with FaultProxy(upstream=f"{parts.scheme}://{parts.netloc}") as proxy:
        yield proxy


@pytest.fixture(scope="module")
def service(
    tmp_path_factory: pytest.TempPathFactory,
    hapi_base_url: str,
    proxy: FaultProxy,
    clinic: Clinic,
    profiles_installed: None,
) -> Service:
    path = urlsplit(hapi_base_url).path
    return make_service(tmp_path_factory.mktemp("hardening"), f"{proxy.url}{path}", clinic.unit)


def integration(service: Service, content_type: str) -> dict[str, str]:
    return {"X-API-Key": service.keys.integration, "Content-Type": content_type}


def plan_ids_on_server(client: FhirClient, clinic: Clinic, *plan_ids: str) -> set[str]:
    found = set()
    for plan_id in plan_ids:
        key = f"{clinic.source_system}:{plan_id}"
        if list(client.search("CarePlan", [("identifier", f"{ID_PLAN}|{key}")])):
            found.add(plan_id)
    return found


# --- 10.5: deep nesting ---


def test_a_body_of_950_nested_arrays_is_422_not_500(service: Service) -> None:
    answer = service.client().post(
        "/ingest/plans", content=DEEP_BODY, headers=integration(service, "application/json")
    )
    assert answer.status_code == 422, answer.text
    assert "nästlad djupare än" in answer.json()["detail"]


def test_a_2000_deep_line_between_two_good_plans_rejects_only_line_2(
    service: Service, clinic: Clinic, fhir_client: FhirClient
) -> None:
    first = clinic.plan(clinic.late, "patientkontrakt", today() - timedelta(days=10), "PK-DEEP-1")
    second = clinic.plan(clinic.sip, "sip", today() - timedelta(days=5), "SIP-DEEP-2")
    body = "\n".join([json.dumps(first), DEEP_LINE, json.dumps(second)]) + "\n"
    answer = service.client().post(
        "/ingest/plans", content=body, headers=integration(service, "application/x-ndjson")
    )
    assert answer.status_code == 200, answer.text
    out = answer.json()
    assert (out["rows"], out["accepted"], out["rejected"], out["status"]) == (3, 2, 1, "klar")
    (error,) = out["errors"]
    assert error["line"] == 2 and "nästlad djupare än 64 nivåer" in error["reason"]
    assert plan_ids_on_server(fhir_client, clinic, "PK-DEEP-1", "SIP-DEEP-2") == {
        "PK-DEEP-1",
        "SIP-DEEP-2",
    }
    request_id = answer.headers["X-Request-ID"]
    ingests = [e for e in service.audit.search(limit=1000) if e.request_id == request_id]
    assert [(e.kind, e.resource, e.detail) for e in ingests] == [
        (AuditKind.INGEST, "plans", "accepted=2 rejected=1")
    ]


def test_the_subscription_hook_refuses_a_deep_body_with_400(service: Service) -> None:
    deep_resource = '{"resourceType": "Procedure", "note": ' + DEEP_LINE + "}"
    answer = service.client().put(
        f"{HOOK_PATH}/Procedure/123", content=deep_resource, headers={HOOK_HEADER: HOOK_SECRET}
    )
    assert answer.status_code == 400, answer.text
    assert "nästlad djupare än" in answer.json()["detail"]


# --- 10.6: encoding per line ---


def test_a_prea60_upload_with_one_bad_byte_rejects_that_row_only(
    service: Service, clinic: Clinic
) -> None:
    people = [Person(p.pnr, p.family, p.given, p.risk) for p in clinic.people]
    people[1].family = "Bäck"
    rows = [
        f"{p.pnr};{p.family}, {p.given};{p.risk};{clinic.run.isoformat()};{clinic.unit};"
        "Testenhetens vårdcentral;"
        for p in people
    ]
    before, _, after = rows[1].partition("ä")
    data = [PREA60_HEADER.encode(), *(r.encode() for r in rows)]
    data[2] = before.encode() + b"\xe4" + after.encode()  # one byte of Windows-1252
    files = {"file": ("prea60-bad-byte.csv", b"\n".join(data) + b"\n", "text/csv")}
    answer = service.client().post(
        "/ingest/prea60", files=files, headers={"X-API-Key": service.keys.integration}
    )
    assert answer.status_code == 200, answer.text
    out = answer.json()
    assert out["encoding"] == "utf-8"
    assert (out["rows"], out["accepted"], out["rejected"]) == (4, 3, 1), out
    (error,) = out["errors"]
    assert error["line"] == 3 and "inte UTF-8" in error["reason"]
    assert "Kolumner saknas" not in answer.text


def test_a_discharges_upload_with_one_bad_byte_stores_the_good_names_as_written(
    service: Service, clinic: Clinic, fhir_client: FhirClient
) -> None:
    header = DISCHARGES_HEADER
    stamp = f"{today() - timedelta(days=1)} 10:15"
    good = f"{clinic.source_system}-1;{clinic.late.pnr};{stamp};Höglandssjukhuset;Med 2;Ja;Ja;Ja"
    bad = f"{clinic.source_system}-2;{clinic.sip.pnr};{stamp};Värnamo sjukhus;Kir;Ja;Ja;Ja"
    body = header.encode() + b"\n" + good.encode() + b"\n" + bad.encode("cp1252") + b"\n"
    answer = service.client().post(
        "/ingest/discharges", content=body, headers=integration(service, "text/csv")
    )
    assert answer.status_code == 200, answer.text
    out = answer.json()
    assert (out["encoding"], out["accepted"], out["rejected"]) == ("utf-8", 1, 1), out
    assert out["errors"][0]["line"] == 3
    (encounter,) = fhir_client.search(
        "Encounter", [("identifier", f"{ID_DISCHARGE}|{clinic.source_system}-1")]
    )
    assert encounter["serviceProvider"]["display"] == "Höglandssjukhuset"


def test_sip_fhir_import_of_a_file_with_one_bad_byte_says_utf8_and_exits_2(
    tmp_path: Path, hapi_base_url: str, fhir_client: FhirClient
) -> None:
    rng = random.Random()
    message = f"enc-{rng.randrange(10**9)}"
    stamp = f"{today() - timedelta(days=1)} 08:00"
    first, second = (fictional_personnummer(rng, BORN_1930S_TO_50S) for _ in range(2))
    good = f"{message}-1;{first};{stamp};Höglandssjukhuset;Med;Ja;Ja;Ja"
    bad = f"{message}-2;{second};{stamp};Värnamo sjukhus;Kir;Ja;Nej;Ja"
    source = tmp_path / "discharges-bad-byte.csv"
    source.write_bytes(
        DISCHARGES_HEADER.encode() + b"\n" + good.encode() + b"\n" + bad.encode("cp1252") + b"\n"
    )
    result = cli(tmp_path / "data", hapi_base_url, "import", str(source))
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"{source}: läst som UTF-8" in result.stdout
    assert "inte UTF-8" in result.stderr
    (encounter,) = fhir_client.search("Encounter", [("identifier", f"{ID_DISCHARGE}|{message}-1")])
    assert encounter["serviceProvider"]["display"] == "Höglandssjukhuset"


# --- 10.8: smaller items ---


@pytest.mark.parametrize(
    "path",
    [f"/tasks/{PNR_IN_URL}/done", f"/patients/{PNR_IN_URL}", f"/patients/{PNR_IN_URL}/tasks"],
)
def test_a_personnummer_in_the_url_never_reaches_the_fhir_server(
    service: Service, proxy: FaultProxy, path: str
) -> None:
    client = service.client()
    client.headers.update({"X-API-Key": service.keys.admin, "X-Purpose": "vard"})
    before = len(proxy.requests)
    method = client.post if path.endswith("/done") else client.get
    answer = method(path)
    assert answer.status_code == 404, answer.text
    assert proxy.requests[before:] == []  # nothing sent at all
    assert "9973" not in answer.text


def test_an_unknown_plain_task_id_does_go_to_the_server(
    service: Service, proxy: FaultProxy
) -> None:
    """The control of the test above: the proxy sees what the adapter sends."""
    client = service.client()
    client.headers.update({"X-API-Key": service.keys.admin, "X-Purpose": "vard"})
    before = len(proxy.requests)
    assert client.post("/tasks/no-such-task-4711/done").status_code == 404
    assert any("/Task/no-such-task-4711" in line for line in proxy.requests[before:])


def test_the_hook_refuses_a_personnummer_id_without_reading_it(
    service: Service, proxy: FaultProxy
) -> None:
    before = len(proxy.requests)
    answer = service.client().put(
        f"{HOOK_PATH}/Procedure/{PNR_IN_URL}", content=b"", headers={HOOK_HEADER: HOOK_SECRET}
    )
    assert answer.status_code == 404
    time.sleep(0.5)  # a background read would have gone out by now
    assert not [line for line in proxy.requests[before:] if "19400402" in line]


def test_an_upload_whose_every_row_is_rejected_is_422_not_klar(service: Service) -> None:
    csv = (
        "Personnummer;Datum;Åtgärdskod;Utförande enhet HSA-id;Kontakttyp;Plan-id\n"
        "19400402-9972;2024-10-21;AW010;SE2321000057-E00000000001;besök;\n"
        "19400402-9973;2024-13-40;AW010;SE2321000057-E00000000001;besök;\n"
    )
    answer = service.client().post(
        "/ingest/events", content=csv.encode(), headers=integration(service, "text/csv")
    )
    assert answer.status_code == 422, answer.text
    out = answer.json()
    assert (out["status"], out["accepted"], out["rejected"]) == ("avvisad", 0, 2)
    assert {e["line"] for e in out["errors"]} == {2, 3}


@pytest.mark.slow
def test_healthz_answers_while_200_slow_worklist_reads_are_in_flight(
    tmp_path: Path, hapi_base_url: str, clinic: Clinic
) -> None:
    """The worklist reads hang on a stalling FHIR server and fill the worker threads; /healthz
    must answer at once, not after the reads queued before it (it did: 5-10 s)."""
    assert inspect.iscoroutinefunction(health.healthz)  # runs on the event loop, no thread
    parts = urlsplit(hapi_base_url)
    upstream = f"{parts.scheme}://{parts.netloc}"
    with FaultProxy(upstream, faults=[Fault.STALL], stall_seconds=2.0) as stalling:
        slow = make_service(tmp_path, f"{stalling.url}{parts.path}", clinic.unit)
        with running(slow.app, free_port()) as base, ThreadPoolExecutor(200) as pool:
            headers = {"X-API-Key": slow.keys.vardsamordnare, "X-Purpose": "uppfoljning"}
            # Another day's list is read from the FHIR server per request, so each read holds
            # a worker thread; today's comes from the read model, whose refresh is one per unit
            # (the others wait for its answer, see the next test).
            yesterday = today() - timedelta(days=1)
            url = f"{base}/units/{clinic.unit}/worklist?as_of={yesterday.isoformat()}"
            reads = [
                pool.submit(requests.get, url, headers=headers, timeout=120) for _ in range(200)
            ]
            deadline = time.monotonic() + 60
            while len(stalling.requests) < 40 and time.monotonic() < deadline:
                time.sleep(0.05)  # every worker thread holds a read now...
            time.sleep(0.5)  # ...and the other reads wait for one
            answer = requests.get(f"{base}/healthz", timeout=120)
            finished = sum(read.done() for read in reads)
            assert answer.status_code == 200 and answer.json() == {"status": "ok"}
            # Not one read can have finished yet (each waits out two stalls): before the fix
            # /healthz came after those queued ahead of it, 100 and more.
            assert finished < 40, f"/healthz waited for {finished} of 200 reads"
            assert {read.result().status_code for read in reads} <= {502, 503}


def test_readers_of_one_unit_share_one_failed_refresh_of_the_read_model(
    tmp_path: Path, hapi_base_url: str, clinic: Clinic
) -> None:
    """Today's list on a stalling FHIR server: one refresh of the unit at a time, and those who
    waited for it get its error, not a turn each (40 readers one after the other would take
    40 times two stalls: minutes)."""
    parts = urlsplit(hapi_base_url)
    upstream = f"{parts.scheme}://{parts.netloc}"
    with FaultProxy(upstream, faults=[Fault.STALL], stall_seconds=2.0) as stalling:
        slow = make_service(tmp_path, f"{stalling.url}{parts.path}", clinic.unit)
        with running(slow.app, free_port()) as base, ThreadPoolExecutor(40) as pool:
            headers = {"X-API-Key": slow.keys.vardsamordnare, "X-Purpose": "uppfoljning"}
            url = f"{base}/units/{clinic.unit}/worklist"
            started = time.monotonic()
            reads = [
                pool.submit(requests.get, url, headers=headers, timeout=120) for _ in range(40)
            ]
            codes = {read.result().status_code for read in reads}
            elapsed = time.monotonic() - started
    assert codes <= {502, 503}, codes
    assert elapsed < 60, f"40 readers took {elapsed:.0f} s"
