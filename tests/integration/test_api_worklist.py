"""The service's API on a real HAPI server: ingest through the import pipeline, the worklist of a
unit after the follow-up engine ran, a patient's plans, history and Tasks, marking a Task done
(a Procedure through the same pipeline, the Task completed), the indicators, and the audit trail.
Each test module has a unit of its own."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from adapter import metrics
from adapter.audit import AuditKind
from adapter.fhirclient import FhirClient
from adapter.indicators.store import store_snapshot
from tests.support.api import MAPPINGS, RULES, Clinic, Service, ingest, make_service, today

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("profiles_installed")]

Json = dict[str, Any]
PURPOSE = {"X-Purpose": "uppfoljning"}


@pytest.fixture(scope="module")
def clinic() -> Clinic:
    return Clinic.new()


@pytest.fixture(scope="module")
def service(
    tmp_path_factory: pytest.TempPathFactory,
    hapi_base_url: str,
    clinic: Clinic,
    profiles_installed: None,
) -> Iterator[Service]:
    """The unit's data ingested through the API, then the follow-up engine's scan of it."""
    service = make_service(tmp_path_factory.mktemp("api"), hapi_base_url, clinic.unit)
    with service.client() as client:
        ingest(client, service.keys.integration, clinic)
    service.followups(clinic.unit)
    yield service


def as_vera(service: Service) -> TestClient:
    client = service.client()
    client.headers.update({"X-API-Key": service.keys.vardsamordnare} | PURPOSE)
    return client


def worklist(service: Service, clinic: Clinic) -> Json:
    answer = as_vera(service).get(f"/units/{clinic.unit}/worklist")
    assert answer.status_code == 200, answer.text
    body: Json = answer.json()
    return body


def row_of(body: Json, pnr: str) -> Json:
    (row,) = [r for r in body["rows"] if r["personnummer"] == pnr]
    return row


def test_the_worklist_shows_the_risk_group_with_plans_follow_ups_and_tasks(
    service: Service, clinic: Clinic
) -> None:
    body = worklist(service, clinic)
    assert {r["personnummer"] for r in body["rows"]} == {
        clinic.late.pnr,
        clinic.no_plan.pnr,
        clinic.sip.pnr,
    }  # the patient under the threshold is not on the list
    late = row_of(body, clinic.late.pnr)
    assert late["name"] == clinic.late.name
    assert late["risk_percent"] == 23.5 and late["run_date"] == clinic.run.isoformat()
    assert late["plan"] == "patientkontrakt" and late["overdue"] is True
    assert late["last_follow_up"] == (today() - timedelta(days=100)).isoformat()
    assert late["follow_up_due"] == (today() - timedelta(days=10)).isoformat()
    assert [t["type"] for t in late["open_tasks"]] == ["follow-up"]
    assert late["open_tasks"][0]["overdue"] is True
    no_plan = row_of(body, clinic.no_plan.pnr)
    assert no_plan["plan"] == "ingen"
    assert [t["type"] for t in no_plan["open_tasks"]] == ["establish-plan"]
    sip = row_of(body, clinic.sip.pnr)
    assert (sip["plan"], sip["open_tasks"], sip["overdue"]) == ("SIP", [], False)
    assert body["rows"][0]["personnummer"] == clinic.late.pnr  # overdue first
    assert (body["patients"], body["overdue"]) == (3, 1)
    # The adapter's URLs carry the Patient's server id, never a personnummer.
    ids = [r["patient_id"] for r in body["rows"]]
    assert len(set(ids)) == 3
    assert not [i for i in ids for p in clinic.people if p.digits[2:] in i or p.pnr in i]


def test_every_patient_on_the_list_is_audited_with_the_purpose(
    service: Service, clinic: Clinic
) -> None:
    worklist(service, clinic)
    entries = [
        e
        for e in service.audit.search(limit=1000)
        if e.kind == AuditKind.PATIENT_READ and e.resource == "worklist" and e.unit == clinic.unit
    ]
    people = {clinic.late.digits, clinic.no_plan.digits, clinic.sip.digits}
    assert {e.patient for e in entries} >= people
    assert all(e.purpose == "uppfoljning" and e.actor == "Vera Vårdsamordnare" for e in entries)
    assert clinic.low.digits not in {e.patient for e in entries}


def test_another_units_vardsamordnare_sees_neither_the_list_nor_the_patient(
    service: Service, clinic: Clinic
) -> None:
    client = service.client()
    client.headers.update({"X-API-Key": service.keys.other_unit} | PURPOSE)
    assert client.get(f"/units/{clinic.unit}/worklist").status_code == 403
    patient_id = row_of(worklist(service, clinic), clinic.late.pnr)["patient_id"]
    answer = client.get(f"/patients/{patient_id}")
    assert answer.status_code == 404  # as if it did not exist
    assert clinic.late.pnr not in answer.text


def test_the_patient_view_shows_goals_and_who_does_what(service: Service, clinic: Clinic) -> None:
    patient_id = row_of(worklist(service, clinic), clinic.late.pnr)["patient_id"]
    answer = as_vera(service).get(f"/patients/{patient_id}")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["name"], body["personnummer"]) == (clinic.late.name, clinic.late.pnr)
    assert body["units"] == [clinic.unit]
    (plan,) = body["plans"]
    assert (plan["kind"], plan["status"], plan["active"]) == ("patientkontrakt", "aktiv", True)
    assert plan["what_matters"] == "Att kunna bo kvar hemma"
    goals = {g["text"]: g["by_patient"] for g in plan["goals"]}
    assert goals == {"Gå 20 minuter varje dag": True, "Inga oplanerade inläggningar": False}
    who = {a["text"]: (a["responsible"], a["responsible_label"]) for a in plan["actions"]}
    assert who == {
        "Väga mig varje måndag": ("patient", "Patienten"),
        "Läkemedelsgenomgång var tredje månad": ("region", "Regionen"),
        "Hemtjänst morgon och kväll": ("kommun", "Kommunen"),
        "Handla varannan dag": ("narstaende", "Närstående"),
    }
    weigh = next(a for a in plan["actions"] if a["responsible"] == "patient")
    assert (weigh["performer"], weigh["goal"]) == ("Patienten", "Gå 20 minuter varje dag")
    assert {p["name"] for p in plan["participants"]} == {"Karin Ek", "Hemtjänsten Norr"}
    assert [h["text"] for h in body["history"]] == ["Plan upprättad"]
    assert [t["type"] for t in body["open_tasks"]] == ["follow-up"]
    # the slices answer the same
    tasks = as_vera(service).get(f"/patients/{patient_id}/tasks").json()
    assert tasks["open_tasks"] == body["open_tasks"]
    plans = as_vera(service).get(f"/patients/{patient_id}/plans").json()
    assert plans["plans"] == body["plans"]
    followups = as_vera(service).get(f"/patients/{patient_id}/followups").json()
    assert followups["history"] == body["history"]


def test_an_unknown_patient_or_task_is_404(service: Service) -> None:
    client = as_vera(service)
    assert client.get("/patients/does-not-exist-123").status_code == 404
    assert client.post("/tasks/does-not-exist-123/done").status_code == 404


def test_a_task_to_establish_a_plan_cannot_be_marked_done(service: Service, clinic: Clinic) -> None:
    row = row_of(worklist(service, clinic), clinic.no_plan.pnr)
    answer = as_vera(service).post(f"/tasks/{row['open_tasks'][0]['id']}/done")
    assert answer.status_code == 409
    assert "planen" in answer.json()["detail"]


def test_marking_a_follow_up_done_records_uppf_and_completes_the_task(
    service: Service, clinic: Clinic, fhir_client: FhirClient
) -> None:
    row = row_of(worklist(service, clinic), clinic.late.pnr)
    task_id = row["open_tasks"][0]["id"]
    answer = as_vera(service).post(f"/tasks/{task_id}/done", json={"contact_type": "telefon"})
    assert answer.status_code == 200, answer.text
    done = answer.json()
    assert (done["status"], done["event_code"]) == ("completed", "UPPF")
    assert done["event_date"] == today().isoformat()
    assert done["next_follow_up_due"] == (today() + timedelta(days=90)).isoformat()
    assert done["reason"].startswith(f"Uppföljd {today().isoformat()}")  # the engine's reason
    task = fhir_client.read("Task", task_id)
    assert task["status"] == "completed"
    procedures = list(
        fhir_client.search(
            "Procedure", {"subject": f"Patient/{row['patient_id']}", "_count": "50"}, post=True
        )
    )
    codes = [c["code"] for p in procedures for c in p["code"]["coding"]]
    assert codes == ["UPPF"]
    assert procedures[0]["performedDateTime"] == today().isoformat()
    # Gone from the list; a second click is a conflict, not a second Procedure.
    after = row_of(worklist(service, clinic), clinic.late.pnr)
    assert after["open_tasks"] == [] and after["overdue"] is False
    assert as_vera(service).post(f"/tasks/{task_id}/done").status_code == 409


def test_a_date_in_the_future_is_refused(service: Service, clinic: Clinic) -> None:
    row = row_of(worklist(service, clinic), clinic.no_plan.pnr)
    tomorrow = (today() + timedelta(days=1)).isoformat()
    answer = as_vera(service).post(
        f"/tasks/{row['open_tasks'][0]['id']}/done", json={"performed": tomorrow}
    )
    assert answer.status_code == 422


def test_indicators_and_trend(service: Service, clinic: Clinic, fhir_client: FhirClient) -> None:
    client = as_vera(service)
    answer = client.get(f"/units/{clinic.unit}/indicators")
    assert answer.status_code == 200, answer.text
    by_id = {i["id"]: i for i in answer.json()["indicators"]}
    coverage = by_id["plan-coverage"]
    assert (coverage["numerator"], coverage["denominator"]) == (2, 3)
    assert by_id["kva-AW010"]["scoring"] == "cohort"
    assert client.get(f"/units/{clinic.unit}/indicators/trend").json()["days"] == []
    assert client.get(f"/units/{clinic.unit}/indicators/trend.svg").status_code == 404
    store_snapshot(fhir_client, [clinic.unit], today(), rules=RULES, mappings=MAPPINGS)
    trend = client.get(f"/units/{clinic.unit}/indicators/trend").json()
    assert trend["days"] == [today().isoformat()]
    shares = {s["id"]: s["points"][0]["value"] for s in trend["series"]}
    assert shares["plan-coverage"] == pytest.approx(66.67)
    chart = client.get(f"/units/{clinic.unit}/indicators/trend.svg")
    assert chart.status_code == 200 and chart.headers["content-type"] == "image/svg+xml"
    assert chart.content.lstrip().startswith(b"<?xml")


# --- ingest ---


def admin(service: Service) -> dict[str, str]:
    return {"X-API-Key": service.keys.admin}


def test_ingest_reports_rejected_rows_with_masked_personnummer(service: Service) -> None:
    csv = (
        "Personnummer;Datum;Åtgärdskod;Utförande enhet HSA-id;Kontakttyp;Plan-id\n"
        "19121212-1213;2024-10-21;AW010;SE2321000057-E00000000001;besök;\n"
        "19121212-9819;2024-13-40;AW010;SE2321000057-E00000000001;besök;\n"
    )
    before = metrics.ROWS_IN.labels(kind="events")._value.get()
    answer = service.client().post(
        "/ingest/events",
        content=csv.encode(),
        headers=admin(service) | {"Content-Type": "text/csv"},
    )
    assert answer.status_code == 422, answer.text  # every row rejected: nothing written
    body = answer.json()
    assert (body["rows"], body["accepted"], body["rejected"]) == (2, 0, 2)
    assert body["status"] == "avvisad"
    reasons = {(e["line"], e["column"]) for e in body["errors"]}
    assert reasons == {(2, "Personnummer"), (3, "Datum")}
    assert "19121212-1213" not in answer.text and "191212121213" not in answer.text
    assert "19121212-****" in answer.text
    assert metrics.ROWS_IN.labels(kind="events")._value.get() == before + 2


def test_ingest_of_an_unreadable_body_is_422(service: Service) -> None:
    answer = service.client().post(
        "/ingest/discharges", content=b"", headers=admin(service) | {"Content-Type": "text/csv"}
    )
    assert answer.status_code == 422
    assert answer.json()["status"] == "oläsbar" and answer.json()["errors"]


def test_ingest_plans_as_json_lines_and_an_unchanged_resend_writes_nothing(
    service: Service, clinic: Clinic
) -> None:
    plan = clinic.plan(clinic.no_plan, "patientkontrakt", today(), "PK-LINES")
    body = (json.dumps(plan) + "\n" + json.dumps({"kind": "sip"}) + "\n").encode()
    headers = admin(service) | {"Content-Type": "application/x-ndjson"}
    first = service.client().post("/ingest/plans", content=body, headers=headers).json()
    assert (first["accepted"], first["rejected"], first["status"]) == (1, 1, "klar")
    assert first["created"] >= 4  # Goals, CareTeam, CarePlan (and no new Patient)
    assert all(e["line"] == 2 for e in first["errors"])
    again = service.client().post("/ingest/plans", content=body, headers=headers).json()
    assert (again["created"], again["updated"], again["accepted"]) == (0, 0, 1)


def test_ingest_needs_the_integration_or_admin_role(service: Service) -> None:
    client = service.client()
    headers = {"X-API-Key": service.keys.vardsamordnare, "Content-Type": "text/csv"}
    assert client.post("/ingest/events", content=b"x", headers=headers).status_code == 403
    headers = {"X-API-Key": service.keys.integration, "Content-Type": "text/plain"}
    assert client.post("/ingest/events", content=b"x", headers=headers).status_code == 415
    assert client.post("/ingest/events", content=b"x").status_code == 401
    assert [
        e for e in service.audit.search(limit=1000) if e.kind == AuditKind.INGEST
    ]  # each ingest is in the audit log
    assert Path(service.settings.data_dir / "uploads").is_dir()
    assert list((service.settings.data_dir / "uploads").iterdir()) == []  # spool files removed


def test_worklist_and_patient_page_show_plan_quality_and_what_is_missing(
    service: Service, clinic: Clinic
) -> None:
    """Scores by hand from mappings/plan-quality.json (12 per kind):
    - late's patientkontrakt: named fast vårdkontakt 2 + care and patient 2 + what matters 1 +
      the patient's goal 1 = 6 → 0.50;
    - sip's SIP: insatser 2 + both huvudmän 2 + others (patient, närstående) 1 + overall
      responsibility 2 + what matters 1 + the patient's goal 1 = 9 → 0.75."""
    body = worklist(service, clinic)
    late = row_of(body, clinic.late.pnr)["plan_quality"]
    assert late["score"] == 0.5
    assert [u["id"] for u in late["unmet"]] == [
        "agreed-appointment",
        "actions-serve-goals",
        "patient-took-part",
        "consent-registered",
        "follow-up-date",
    ]
    sip = row_of(body, clinic.sip.pnr)["plan_quality"]
    assert (sip["score"], [u["label"] for u in sip["unmet"]]) == (
        0.75,
        [
            "Patienten eller närstående deltog inte",
            "Samtycke är inte registrerat",
            "Datum för uppföljning saknas",
        ],
    )
    assert all(r["plan_quality"] is None for r in body["rows"] if r["plan"] == "ingen")

    client = service.client()
    login = client.post(
        "/ui/login",
        data={"api_key": service.keys.vardsamordnare, "purpose": "vard"},
        follow_redirects=False,
    )
    assert login.status_code == 303, login.text
    page = client.get(f"/ui/units/{clinic.unit}")
    assert page.status_code == 200, page.text
    assert "Planens kvalitet" in page.text
    assert '<span class="score">0,50</span>' in page.text
    assert '<span class="score">0,75</span>' in page.text
    assert "Överenskommen tid saknas" in page.text

    patient_id = row_of(body, clinic.late.pnr)["patient_id"]
    (plan,) = as_vera(service).get(f"/patients/{patient_id}").json()["plans"]
    assert plan["quality"]["score"] == 0.5
    patient_page = client.get(f"/ui/patients/{patient_id}")
    assert patient_page.status_code == 200, patient_page.text
    assert '<span class="score">0,50</span>' in patient_page.text
    for label in ("Överenskommen tid saknas", "Insatserna är inte knutna till mål"):
        assert label in patient_page.text
    indicators = client.get(f"/ui/units/{clinic.unit}/indicators")
    assert indicators.status_code == 200, indicators.text
    assert "Planernas kvalitetspoäng (0–1, god kvalitet från 0,80)" in indicators.text
    assert "min–median–max 0,50–" in indicators.text  # late's 0.50 is the lowest
    assert "0,6–0,8: 1" in indicators.text  # the SIP's 0.75
