"""Issue 10.2 and 10.3 replayed against the real HAPI server, through `sip-fhir serve`'s app.

- 10.2: a patient listed at the own unit with a plan at another unit: the own unit's key sees
  its plan, and the other unit's SIP only as a summary, not its content, history or Task; on
  every route and page of the app (enumerated from the app).
- 10.3: an integration key limited to one unit sends plans, Prea60 rows and events of another
  unit: those rows are row errors naming the unit and never reach the server; its own rows do.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from adapter.api import create_app
from adapter.api.apikeys import ApiKeyEntry, add_entry, new_key
from adapter.api.principal import Role
from adapter.api.sessions import COOKIE
from adapter.audit import AuditKind, AuditLog
from adapter.canonical import ID_PLAN
from adapter.fhirclient import FhirClient
from adapter.followup.service import FollowupService
from adapter.settings import Settings
from tests.support.api import PREA60_HEADER, today
from tests.support.confidentiality import body, every_route, filled
from tests.support.formats import EVENTS_LINE as EVENTS_HEADER
from tests.support.people import fictional_personnummer
from tests.support.sync import unit_hsa_id

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("profiles_installed")]

SECRET = "HEMLIGT888"
PURPOSE = {"X-Purpose": "vard"}
Json = dict[str, Any]


@dataclass
class Region:
    own: str  # the vårdsamordnare's unit (…777 in the review)
    other: str  # the unit whose plan leaked (…888)
    limited: str  # the unit the integration key is limited to (…101)
    shared: str  # listed at `own`, a patientkontrakt at `own`, a SIP at `other`
    elsewhere: list[str]  # patients the limited key tries to send in for `other`
    mine: list[str]  # patients the limited key sends in for its own unit
    source: str

    @classmethod
    def new(cls) -> Region:
        rng = random.Random()
        return cls(
            own=unit_hsa_id(rng),
            other=unit_hsa_id(rng),
            limited=unit_hsa_id(rng),
            shared=fictional_personnummer(rng),
            elsewhere=[fictional_personnummer(rng) for _ in range(3)],
            mine=[fictional_personnummer(rng) for _ in range(3)],
            source=f"accesstest{rng.randrange(10**9)}",
        )


def plan(region: Region, pnr: str, unit: str, kind: str, days_ago: int, plan_id: str) -> Json:
    created = (today() - timedelta(days=days_ago)).isoformat()
    secret = SECRET if unit == region.other else "Eget"
    content: Json = {
        "source_system": region.source,
        "plan_id": plan_id,
        "version": 1,
        "kind": kind,
        "patient": pnr,
        "status": "active",
        "title": f"{secret} titel",
        "created": created,
        "updated": created,
        "unit_hsa_id": unit,
        "what_matters": f"{secret} det som är viktigt",
        "goals": [{"id": "g1", "text": f"{secret} mål", "expressed_by": "patient"}],
        "actions": [{"text": f"{secret} insats", "responsible": "kommun", "goal": "g1"}],
        "participants": [{"role": "hemtjanst", "name": f"{secret} deltagare"}],
    }
    if kind == "sip":
        content |= {"kva": "AU124", "overall_responsibility": "region"}
    return content


def prea60(rows: list[tuple[str, str]]) -> bytes:
    run = (today() - timedelta(days=3)).isoformat()
    lines = [PREA60_HEADER] + [
        f"{pnr};Testsson, Test;25,0;{run};{unit};Vårdcentralen;SE2321000057-P00000000021"
        for pnr, unit in rows
    ]
    return ("\n".join(lines) + "\n").encode()


def events(rows: list[tuple[str, int, str, str, str]]) -> bytes:
    lines = [EVENTS_HEADER] + [
        f"{pnr};{(today() - timedelta(days=ago)).isoformat()};{code};{unit};besök;{ref}"
        for pnr, ago, code, unit, ref in rows
    ]
    return ("\n".join(lines) + "\n").encode()


@dataclass
class Service:
    app: FastAPI
    settings: Settings
    audit: AuditLog
    keys: dict[str, str]

    def client(self, who: str | None = None) -> TestClient:
        client = TestClient(self.app, raise_server_exceptions=False)
        if who:
            client.headers.update({"X-API-Key": self.keys[who]} | PURPOSE)
        return client


def post(client: TestClient, path: str, content: bytes, media_type: str, expect: int = 200) -> Json:
    """An ingest answer: 200 when some rows went in, 422 (`avvisad`) when every row was rejected."""
    answer = client.post(path, content=content, headers={"Content-Type": media_type})
    assert answer.status_code == expect, answer.text
    result: Json = answer.json()
    return result


@pytest.fixture(scope="module")
def region() -> Region:
    return Region.new()


@pytest.fixture(scope="module")
def service(
    tmp_path_factory: pytest.TempPathFactory,
    hapi_base_url: str,
    region: Region,
    profiles_installed: None,
) -> Iterator[Service]:
    """Keys as the review had them; the shared patient's data in through the region's key,
    then the follow-up engine on both units."""
    tmp = tmp_path_factory.mktemp("access")
    keys_file, keys = tmp / "keys.json", {}
    for who, role, units in (
        ("own", Role.VARDSAMORDNARE, [region.own]),
        ("other", Role.VARDSAMORDNARE, [region.other]),
        ("limited", Role.INTEGRATION, [region.limited]),
        ("region", Role.INTEGRATION, []),
        ("admin", Role.ADMIN, []),
    ):
        keys[who] = new_key()
        add_entry(keys_file, keys[who], ApiKeyEntry(name=f"key-{who}", role=role, units=units))
    settings = Settings(
        base_url=hapi_base_url,
        data_dir=tmp / "data",
        api_keys_file=keys_file,
        scheduler=False,
        max_attempts=2,
    )
    audit = AuditLog(settings.audit_db_path)
    service = Service(create_app(settings, audit_log=audit), settings, audit, keys)
    client = service.client("region")
    r = region
    post(client, "/ingest/prea60", prea60([(r.shared, r.own)]), "text/csv")
    plans = [
        plan(r, r.shared, r.own, "patientkontrakt", 120, "PK-OWN"),
        plan(r, r.shared, r.other, "sip", 100, f"SIP-{SECRET}"),
    ]
    answer = post(client, "/ingest/plans", json.dumps(plans).encode(), "application/json")
    assert answer["accepted"] == 2, answer
    acts = [
        (r.shared, 110, "UPPF", r.own, f"{r.source}:PK-OWN"),
        (r.shared, 95, "AW010", r.other, f"{r.source}:SIP-{SECRET}"),
    ]
    assert post(client, "/ingest/events", events(acts), "text/csv")["accepted"] == 2
    report = FollowupService(settings).run(units=[r.own, r.other])
    assert report.errors == [], report.errors
    yield service


@pytest.fixture(scope="module")
def patient_id(service: Service, region: Region) -> str:
    answer = service.client("own").get(f"/units/{region.own}/worklist")
    assert answer.status_code == 200, answer.text
    (row,) = [r for r in answer.json()["rows"] if r["personnummer"] == region.shared]
    return str(row["patient_id"])


# --- 10.2: inner confidentiality ---


def test_the_attack_a_coordinator_reads_the_shared_patient(
    service: Service, region: Region, patient_id: str
) -> None:
    """The review: GET /patients/{id} with unit …777's key gave …888's SIP, history and Task."""
    answer = service.client("own").get(f"/patients/{patient_id}")
    assert answer.status_code == 200, answer.text
    assert SECRET not in answer.text
    seen = answer.json()
    (own_plan,) = seen["plans"]
    assert (own_plan["unit"], own_plan["what_matters"]) == (region.own, "Eget det som är viktigt")
    (summary,) = seen["plans_elsewhere"]
    assert summary == {
        "unit": region.other,
        "kind": "SIP",
        "status": "aktiv",
        "active": True,
        "created": (today() - timedelta(days=100)).isoformat(),
        "updated": (today() - timedelta(days=100)).isoformat(),
        "valid_until": None,
    }
    assert {h["unit"] for h in seen["history"]} == {region.own}
    assert seen["open_tasks"] == []
    entries = [
        e
        for e in service.audit.search(limit=1000)
        if e.kind == AuditKind.PATIENT_READ
        and e.route == "/patients/{patient_id}"
        and e.actor == "key-own"
    ]
    newest = entries[0]  # the log answers newest first
    assert newest.unit == region.own and newest.purpose == "vard"
    assert newest.detail == (
        f"units={region.own} plans=1 plans_elsewhere=1({region.other}) history=2 tasks=0 risks=1"
    )


def test_the_other_unit_sees_its_sip_its_history_and_its_task(
    service: Service, region: Region, patient_id: str
) -> None:
    seen = service.client("other").get(f"/patients/{patient_id}").json()
    (sip,) = seen["plans"]
    assert sip["what_matters"] == f"{SECRET} det som är viktigt"
    assert [g["text"] for g in sip["goals"]] == [f"{SECRET} mål"]
    assert [p["unit"] for p in seen["plans_elsewhere"]] == [region.own]
    (task,) = seen["open_tasks"]
    assert (task["type"], task["unit"], task["overdue"]) == ("follow-up", region.other, True)
    assert {h["unit"] for h in seen["history"]} == {region.other}


def test_no_route_or_page_shows_the_other_units_plan(
    service: Service, region: Region, patient_id: str, fhir_client: FhirClient
) -> None:
    other_seen = service.client("other").get(f"/patients/{patient_id}/tasks").json()
    (task,) = [t["id"] for t in other_seen["open_tasks"]]
    client = service.client()
    login = client.post(
        "/ui/login",
        data={"api_key": service.keys["own"], "purpose": "vard"},
        follow_redirects=False,
    )
    assert login.status_code == 303
    session = service.app.state.page_sessions.get(client.cookies.get(COOKIE))
    client.headers.update({"X-API-Key": service.keys["own"]} | PURPOSE)
    values = {
        "patient_id": [patient_id],
        "hsa_id": [region.own, region.other],
        "task_id": [task],
        "resource_type": ["CarePlan", "Task"],
        "resource_id": ["1"],
        "run": ["2024-12-09"],  # a Prea60 run (confirm / reject)
        # Min plan of the other unit's CarePlan (adapter/api/routes/minplan.py)
        "plan_id": [p["id"] for p in plan_on_server(fhir_client, region, f"SIP-{SECRET}")],
    }
    routes = sorted(every_route(service.app), key=lambda r: r[1].endswith("/logout"))
    answered = {}
    for method, template in routes:
        for path in filled(template, values):
            answer = client.request(method, path, **body(method, path, session.csrf))
            assert SECRET not in answer.text, f"{method} {path} shows the other unit's plan"
            answered[(method, path)] = answer.status_code
    assert answered[("GET", f"/patients/{patient_id}")] == 200
    assert answered[("GET", f"/ui/patients/{patient_id}")] == 200
    assert answered[("POST", f"/tasks/{task}/done")] == 404
    assert answered[("GET", f"/units/{region.other}/worklist")] == 403
    still_open = service.client("other").get(f"/patients/{patient_id}/tasks").json()
    assert [t["id"] for t in still_open["open_tasks"]] == [task]  # not marked done by …777


# --- 10.3: integration keys limited to their unit ---


def plan_on_server(client: FhirClient, region: Region, plan_id: str) -> list[Json]:
    value = f"{region.source}:{plan_id}"
    return list(client.search("CarePlan", {"identifier": f"{ID_PLAN}|{value}"}, post=True))


def test_the_attack_plans_of_another_unit_with_a_limited_key(
    service: Service, region: Region, fhir_client: FhirClient
) -> None:
    r = region
    plans = [
        plan(r, r.mine[0], r.limited, "patientkontrakt", 10, "PK-LIMITED"),
        plan(r, r.elsewhere[0], r.other, "sip", 10, "SIP-NOT-YOURS"),
    ]
    client = service.client("limited")
    answer = post(client, "/ingest/plans", json.dumps(plans).encode(), "application/json")
    assert (answer["accepted"], answer["rejected"]) == (1, 1)
    (error,) = answer["errors"]
    assert (error["line"], error["column"], error["value"]) == (2, "unit_hsa_id", r.other)
    assert r.other in error["reason"] and r.limited in error["reason"]
    assert plan_on_server(fhir_client, r, "PK-LIMITED")  # the good row went through
    assert plan_on_server(fhir_client, r, "SIP-NOT-YOURS") == []
    ingests = [e for e in service.audit.search(limit=1000) if e.kind == AuditKind.INGEST]
    assert f"accepted=1 rejected=1 units={r.limited}" in {e.detail for e in ingests}


def test_a_limited_key_cannot_take_over_another_units_plan(
    service: Service, region: Region, fhir_client: FhirClient
) -> None:
    """Sending the other unit's plan again under one's own unit would move it and its content."""
    r = region
    taken = plan(r, r.shared, r.limited, "sip", 100, f"SIP-{SECRET}") | {"version": 2}
    taken["what_matters"] = "Övertagen"
    body = json.dumps(taken).encode()
    answer = post(service.client("limited"), "/ingest/plans", body, "application/json", 422)
    assert (answer["accepted"], answer["rejected"]) == (0, 1)
    (error,) = answer["errors"]
    assert (error["line"], error["column"], error["value"]) == (1, "plan_id", r.other)
    (care_plan,) = plan_on_server(fhir_client, r, f"SIP-{SECRET}")
    assert care_plan["author"]["identifier"]["value"] == r.other
    assert "Övertagen" not in json.dumps(care_plan)


def test_the_attack_a_prea60_list_of_another_unit_with_a_limited_key(
    service: Service, region: Region
) -> None:
    r = region
    rows = [(r.mine[1], r.limited), (r.elsewhere[1], r.other), (r.mine[2], r.limited)]
    files = {"file": ("prea60-blandad.csv", prea60(rows), "text/csv")}
    answer = service.client("limited").post("/ingest/prea60", files=files)
    assert answer.status_code == 200, answer.text
    result = answer.json()
    assert (result["accepted"], result["rejected"]) == (2, 1)
    (error,) = result["errors"]
    assert (error["line"], error["column"]) == (3, "Listningsenhet HSA-id")
    assert r.other in error["reason"] and result["source"] == "prea60-blandad.csv"
    admin = service.client("admin")
    listed = admin.get(f"/units/{r.limited}/worklist").json()["rows"]
    assert {row["personnummer"] for row in listed} >= {r.mine[1], r.mine[2]}
    elsewhere = admin.get(f"/units/{r.other}/worklist").json()["rows"]
    assert r.elsewhere[1] not in {row["personnummer"] for row in elsewhere}


def test_events_of_another_unit_and_discharges_need_a_region_key(
    service: Service, region: Region
) -> None:
    r = region
    acts = [
        (r.mine[0], 1, "UPPF", r.limited, f"{r.source}:PK-LIMITED"),
        (r.elsewhere[2], 1, "AW010", r.other, ""),
    ]
    client = service.client("limited")
    answer = post(client, "/ingest/events", events(acts), "text/csv")
    assert (answer["accepted"], answer["rejected"]) == (1, 1)
    assert answer["errors"][0]["column"] == "Utförande enhet HSA-id"
    notice = (
        "Meddelande-id;Personnummer;Utskrivningsklar;Sjukhus;Avdelning;Insatser kommun;"
        f"Insatser region;Samtycke SIP\nACC-{r.source};{r.elsewhere[2]};"
        f"{today().isoformat()} 10:15;Höglandssjukhuset;Medicin 2;Ja;Ja;Ja\n"
    ).encode()
    refused = post(client, "/ingest/discharges", notice, "text/csv", 422)
    assert (refused["accepted"], refused["rejected"]) == (0, 1)
    assert "hela regionen" in refused["errors"][0]["reason"]
    accepted = post(service.client("region"), "/ingest/discharges", notice, "text/csv")
    assert (accepted["accepted"], accepted["rejected"]) == (1, 0)


def test_hsa_ids_are_checked_in_the_api_path(service: Service, region: Region) -> None:
    admin = service.client("admin")
    assert admin.get("/units/not-an-hsa-id/worklist").status_code == 422
    lower = admin.get(f"/units/{region.own.lower().replace('se', 'SE', 1)}/worklist")
    assert lower.status_code == 200 and lower.json()["unit"] == region.own  # one form
    assert region.shared in {row["personnummer"] for row in lower.json()["rows"]}
