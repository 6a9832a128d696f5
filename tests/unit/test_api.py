"""The service frame: roles, units, purpose and audit on patient reads, probes, metrics, limits,
error answers. Login is replaced through `app.dependency_overrides[current_principal]`."""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from adapter import metrics
from adapter.api import create_app
from adapter.api.principal import Principal, Role
from adapter.api.readiness import default_checks, run_checks
from adapter.audit import AuditKind, AuditLog, Purpose
from adapter.settings import Settings
from tests.support.app import ANNA, OWN_UNIT, PURPOSE, TOLVAN, VARDSAMORDNARE, Service
from tests.support.stderr import logging_to_current_stderr

OTHER_UNIT = "SE2321000057-E00000000002"
# Not inside a word (HSA-ids hold a 10-digit organisation number) or a number.
PNR_SHAPE = re.compile(r"(?<![\w.])(\d{6}|\d{8})[-+]?\d{4}(?![\w.])")

INTEGRATION = Principal(
    "prea60-import", "apikey:prea60-import", frozenset({Role.INTEGRATION}), method="apikey"
)
ADMIN = Principal("Adam", "sub-adam", frozenset({Role.ADMIN}))


@pytest.fixture
def service(tmp_path: Path) -> Service:
    return Service(tmp_path)


@pytest.fixture(autouse=True)
def _logging() -> Iterator[None]:
    with logging_to_current_stderr():
        yield


@pytest.fixture
def log_output(capsys: pytest.CaptureFixture[str]) -> Callable[[], str]:
    """What the app logs (through the masking processor of adapter.logs) during the test."""
    return lambda: capsys.readouterr().err


# --- roles, units, purpose, audit ---


def test_vardsamordnare_reads_own_unit_and_each_patient_is_audited(service: Service) -> None:
    response = service.login(VARDSAMORDNARE).get(f"/units/{OWN_UNIT}/patients", headers=PURPOSE)
    assert response.status_code == 200
    events = service.events(AuditKind.PATIENT_READ)
    assert sorted(e.patient for e in events) == sorted([TOLVAN.digits, ANNA.digits])  # once each
    for event in events:
        assert (event.actor, event.subject) == ("Vera", "sub-vera")
        assert event.purpose == Purpose.UPPFOLJNING
        assert event.route == "/units/{unit}/patients"  # the template, not the filled-in path
        assert event.resource == "Patient" and event.unit == OWN_UNIT
        assert event.request_id == response.headers["X-Request-ID"]
        assert event.at.tzinfo is not None


def test_vardsamordnare_cannot_read_another_unit(service: Service) -> None:
    client = service.login(VARDSAMORDNARE)
    response = client.get(f"/units/{OTHER_UNIT}/patients", headers=PURPOSE)
    assert response.status_code == 403
    assert OTHER_UNIT in response.json()["detail"]
    assert client.get(f"/units/{OTHER_UNIT}/summary").status_code == 403
    assert client.get(f"/units/{OWN_UNIT}/summary").status_code == 200
    assert service.events() == []


def test_integration_cannot_read_patient_data(service: Service) -> None:
    response = service.login(INTEGRATION).get(f"/units/{OWN_UNIT}/patients", headers=PURPOSE)
    assert response.status_code == 403
    assert "vardsamordnare eller admin" in response.json()["detail"]
    assert service.events() == []


def test_admin_reads_every_unit(service: Service) -> None:
    client = service.login(ADMIN)
    assert client.get(f"/units/{OTHER_UNIT}/patients", headers=PURPOSE).status_code == 200
    assert client.get(f"/units/{OTHER_UNIT}/summary").status_code == 200


@pytest.mark.parametrize("purpose", [None, "", "nyfikenhet"])
def test_patient_read_requires_a_known_purpose(service: Service, purpose: str | None) -> None:
    headers = {} if purpose is None else {"X-Purpose": purpose}
    response = service.login(VARDSAMORDNARE).get(f"/units/{OWN_UNIT}/patients", headers=headers)
    assert response.status_code == 400
    assert "X-Purpose" in response.json()["detail"]
    assert "vard, uppfoljning eller kvalitet" in response.json()["detail"]
    assert service.events() == []


def test_unauthenticated_patient_read_is_401(service: Service) -> None:
    response = service.login(None).get(f"/units/{OWN_UNIT}/patients", headers=PURPOSE)
    assert response.status_code == 401


def test_patient_route_that_records_nothing_fails(service: Service) -> None:
    response = service.login(ADMIN).get("/forgetful", headers=PURPOSE)
    assert response.status_code == 500
    assert TOLVAN.digits not in response.text


def test_admin_searches_audit_log_by_patient_in_the_body(service: Service) -> None:
    service.login(VARDSAMORDNARE).get(f"/units/{OWN_UNIT}/patients", headers=PURPOSE)
    response = service.login(ADMIN).post("/audit/search", json={"patient": "19121212-9819"})
    assert response.status_code == 200
    events = response.json()["events"]
    assert [(e["kind"], e["actor"]) for e in events] == [
        ("audit_search", "Adam"),  # the search itself is logged, newest first
        ("patient_read", "Vera"),
    ]
    assert all(e["patient"] == TOLVAN.digits for e in events)
    search = service.events(AuditKind.AUDIT_SEARCH)[0]
    assert search.purpose == Purpose.LOGGUPPFOLJNING


def test_audit_search_filters_by_subject_and_limit(service: Service) -> None:
    for _ in range(3):
        service.login(VARDSAMORDNARE).get(f"/units/{OWN_UNIT}/patients", headers=PURPOSE)
    client = service.login(ADMIN)
    response = client.post("/audit/search", json={"subject": "sub-vera", "limit": 4})
    assert [e["subject"] for e in response.json()["events"]] == ["sub-vera"] * 4


@pytest.mark.parametrize("principal", [VARDSAMORDNARE, INTEGRATION])
def test_only_admin_reads_the_audit_log(service: Service, principal: Principal) -> None:
    assert service.login(principal).post("/audit/search", json={}).status_code == 403


def test_audit_log_has_no_get_by_patient(service: Service) -> None:
    client = service.login(ADMIN)
    assert client.get("/audit", params={"patient": "191212129819"}).status_code in {404, 405}
    assert client.get("/audit/search", params={"patient": "191212129819"}).status_code == 405


def test_invalid_personnummer_in_search_is_explained_without_echo(service: Service) -> None:
    response = service.login(ADMIN).post("/audit/search", json={"patient": "19121212-1213"})
    assert response.status_code == 422
    body = response.json()
    assert body["errors"] == [
        {"field": "body.patient", "reason": "Fel kontrollsiffra i personnumret"}
    ]
    assert "1213" not in response.text


def test_validation_errors_are_swedish(service: Service) -> None:
    response = service.login(ADMIN).post("/audit/search", json={"limit": 0, "colour": "red"})
    assert response.status_code == 422
    reasons = {e["field"]: e["reason"] for e in response.json()["errors"]}
    assert reasons == {"body.limit": "är för litet", "body.colour": "okänt fält"}


def test_broken_json_is_named_as_such(service: Service) -> None:
    response = service.login(ADMIN).post(
        "/audit/search", content=b'{"patient": ', headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422
    assert response.json()["errors"] == [{"field": "body", "reason": "är inte giltig JSON"}]


def test_ingest_is_audited_without_patient_and_logged_masked(
    service: Service, log_output: Callable[[], str]
) -> None:
    uploader = Principal("19121212-9819", "19121212-9819", frozenset({Role.INTEGRATION}))
    response = service.login(uploader).post("/ingest", content=b"a\nb\nc\n")
    assert response.json() == {"accepted": 3}
    (event,) = service.events(AuditKind.INGEST)
    assert (event.resource, event.detail, event.patient) == (
        "prea60",
        "accepted=3 rejected=0",
        None,
    )
    err = log_output()
    assert "ingest" in err and "19121212-****" in err
    assert "1212-1212" not in err


def test_vardsamordnare_cannot_ingest(service: Service) -> None:
    assert service.login(VARDSAMORDNARE).post("/ingest", content=b"a").status_code == 403


# --- probes and metrics ---


def test_probes_need_no_login(service: Service) -> None:
    client = service.login(None)
    assert client.get("/healthz").json() == {"status": "ok"}
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": {"fhir": "ok", "outbox": "ok"}}


def test_readyz_503_when_a_check_fails_without_leaking_why(service: Service) -> None:
    def fhir_down() -> None:
        raise ConnectionError("http://fhir.internal:8080 refused")

    service.app.state.readiness_checks["fhir"] = fhir_down
    response = service.login(None).get("/readyz")
    assert response.status_code == 503
    assert response.json() == {"status": "ej redo", "checks": {"fhir": "fel", "outbox": "ok"}}
    assert "fhir.internal" not in response.text


def test_metrics_exposed_without_personal_data(service: Service) -> None:
    metrics.count_rows_in("prea60", 3)
    metrics.count_rows_in("191212129819")  # a mistake in a caller: must not reach a label
    metrics.count_resource_written("Task", "created")
    metrics.count_retry()
    metrics.set_outbox_depth(7)
    metrics.set_task_counts(
        {(OWN_UNIT, "establish-plan"): 2, ("19121212-9819", "follow-up"): 1},
        {(OWN_UNIT, "establish-plan"): 1},
    )
    response = service.login(None).get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert 'sip_fhir_rows_in_total{kind="prea60"}' in text
    assert 'sip_fhir_rows_in_total{kind="ogiltig"}' in text
    assert 'sip_fhir_resources_written_total{outcome="created",type="Task"}' in text
    assert "sip_fhir_retries_total" in text
    assert "sip_fhir_outbox_depth 7.0" in text
    assert f'sip_fhir_tasks_open{{type="establish-plan",unit="{OWN_UNIT}"}} 2.0' in text
    assert 'sip_fhir_tasks_open{type="follow-up",unit="ogiltig"} 1.0' in text
    assert f'sip_fhir_tasks_overdue{{type="establish-plan",unit="{OWN_UNIT}"}} 1.0' in text
    assert PNR_SHAPE.search(text) is None


def test_task_gauges_forget_units_without_tasks(service: Service) -> None:
    metrics.set_task_counts({(OTHER_UNIT, "renew-plan"): 1}, {})
    metrics.set_task_counts({}, {})
    assert OTHER_UNIT not in service.login(None).get("/metrics").text


def test_metrics_refreshers_run_at_scrape_and_failures_are_contained(service: Service) -> None:
    def broken() -> None:
        raise RuntimeError("outbox locked")

    metrics.register_refresher(lambda: metrics.set_outbox_depth(42))
    metrics.register_refresher(broken)
    try:
        assert "sip_fhir_outbox_depth 42.0" in service.login(None).get("/metrics").text
    finally:
        metrics._refreshers.clear()


def test_metrics_can_require_login(tmp_path: Path) -> None:
    private = Service(tmp_path, metrics_public=False)
    assert private.login(None).get("/metrics").status_code == 401
    assert private.login(INTEGRATION).get("/metrics").status_code == 200


# --- limits and error answers ---


def test_body_over_limit_is_413(tmp_path: Path) -> None:
    small = Service(tmp_path, max_body_bytes=100)
    client = small.login(INTEGRATION)
    assert client.post("/ingest", content=b"x" * 100).status_code == 200
    response = client.post("/ingest", content=b"x" * 101)
    assert response.status_code == 413
    assert response.json() == {"detail": "Begäran är för stor: högst 100 byte tillåts."}


def test_declared_oversize_body_is_refused_before_routing(tmp_path: Path) -> None:
    small = Service(tmp_path, max_body_bytes=100)
    client = small.login(None)
    assert client.post("/healthz", content=b"x" * 100).status_code == 405  # routed
    assert client.post("/healthz", content=b"x" * 101).status_code == 413  # never routed


def test_chunked_body_over_limit_is_413(tmp_path: Path) -> None:
    small = Service(tmp_path, max_body_bytes=100)

    def chunks() -> Iterator[bytes]:
        for _ in range(10):
            yield b"y" * 30

    response = small.login(INTEGRATION).post("/ingest", content=chunks())
    assert response.status_code == 413
    assert "för stor" in response.json()["detail"]
    assert small.events() == []


def test_exception_gives_generic_500_with_request_id(
    service: Service, log_output: Callable[[], str]
) -> None:
    response = service.login(ADMIN).get("/boom")
    assert response.status_code == 500
    request_id = response.headers["X-Request-ID"]
    assert response.json() == {
        "detail": f"Ett internt fel uppstod. Ange referens {request_id} om du kontaktar supporten.",
        "request_id": request_id,
    }
    assert "Traceback" not in response.text and "database" not in response.text
    err = log_output()
    assert "Traceback" in err and "RuntimeError" in err and request_id in err
    assert "19121212-****" in err and TOLVAN.digits not in err


def test_access_log_masks_personnummer_in_paths(
    service: Service, log_output: Callable[[], str]
) -> None:
    service.login(None).get("/patients/191212129819", params={"q": "19121212-9819"})
    err = log_output()
    assert "path=/patients/19121212-****" in err
    assert PNR_SHAPE.search(err.replace("19121212-****", "")) is None


def test_not_found_and_security_headers(service: Service) -> None:
    response = service.login(None).get("/nope")
    assert response.status_code == 404
    assert response.json() == {"detail": "Det finns ingen sådan adress."}
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert len(response.headers["X-Request-ID"]) == 32


def test_safe_incoming_request_id_is_kept(service: Service) -> None:
    client = service.login(None)
    assert (
        client.get("/healthz", headers={"X-Request-ID": "proxy-1234abcd"}).headers["X-Request-ID"]
        == "proxy-1234abcd"
    )
    assert (
        client.get("/healthz", headers={"X-Request-ID": "bad\tid"}).headers["X-Request-ID"]
        != "bad\tid"
    )


def test_openapi_docs_are_served(service: Service) -> None:
    client = service.login(None)
    assert client.get("/docs").status_code == 200
    schema = client.get("/openapi.json").json()
    assert "/audit/search" in schema["paths"]
    assert {"HTTPBearer", "APIKeyHeader"} <= set(schema["components"]["securitySchemes"])


def test_service_hooks_run_for_the_life_of_the_app(tmp_path: Path) -> None:
    calls: list[str] = []
    app = create_app(
        Settings(data_dir=tmp_path),
        readiness_checks={},
        hooks=[lambda _app: _recording(calls, "scheduler")],
    )
    app.state.service_hooks.append(lambda _app: _recording(calls, "late"))
    with TestClient(app) as client:
        assert calls == ["scheduler-start", "late-start"]
        assert client.get("/healthz").status_code == 200
    assert calls == ["scheduler-start", "late-start", "late-stop", "scheduler-stop"]


@contextmanager
def _recording(calls: list[str], name: str) -> Iterator[None]:
    calls.append(f"{name}-start")
    yield
    calls.append(f"{name}-stop")


# --- default readiness checks ---


def test_default_checks_report_an_unreachable_fhir_server_quickly(tmp_path: Path) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings = Settings(data_dir=tmp_path, base_url=f"http://127.0.0.1:{port}/fhir")
    checks = default_checks(settings, AuditLog(tmp_path / "audit.sqlite"))
    started = time.monotonic()
    assert run_checks(checks) == {"fhir": False, "outbox": True, "audit": True}
    assert time.monotonic() - started < 10  # one attempt, not the sync's retry budget
