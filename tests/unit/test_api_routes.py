"""The worklist, patient, task, ingest and page routes without a FHIR server: who may call what,
the purpose and the audit entries, the answers' shape, the pages' login (cookie, CSRF, session
purpose), and that no personnummer reaches a URL. The Clinic (the routes' I/O) is replaced by
one that serves patients built from records (tests/unit/test_api_routes_readmodel.py)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from adapter.api.principal import Role
from adapter.api.sessions import COOKIE, SessionStore, csrf_ok
from adapter.audit import Purpose
from tests.support.app import VARDSAMORDNARE
from tests.support.pages import OTHER_UNIT, Service, login, make_pages_service, task_id
from tests.support.records import UNIT
from tests.support.stderr import logging_to_current_stderr
from tests.support.worklist import (
    AS_OF,
    LATE,
    NO_PLAN,
)

PURPOSE = {"X-Purpose": "vard"}
PNR_IN_URL = re.compile(r"\d{8}-?\d{4}")


@pytest.fixture(autouse=True)
def _logging() -> Iterator[None]:
    with logging_to_current_stderr():
        yield


@pytest.fixture
def service(tmp_path: Path) -> Service:
    return make_pages_service(tmp_path)


# --- the JSON API ---


def test_the_worklist_answers_the_rows_and_audits_each_patient_with_the_purpose(
    service: Service,
) -> None:
    answer = service.client.get(
        f"/units/{UNIT}/worklist", headers=service.as_(Role.VARDSAMORDNARE, **PURPOSE)
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert [r["personnummer"] for r in body["rows"]] == ["19380313-9801", "19310619-9817"]
    assert [r["patient_id"] for r in body["rows"]] == ["1", "2"]
    assert body["rows"][0]["open_tasks"][0]["type"] == "follow-up"
    assert (body["patients"], body["overdue"], body["open_tasks"]) == (2, 1, 2)
    reads = service.reads()
    assert sorted(e.patient for e in reads) == sorted([LATE.digits, NO_PLAN.digits])
    assert {(e.purpose, e.resource, e.unit, e.route) for e in reads} == {
        ("vard", "worklist", UNIT, "/units/{hsa_id}/worklist")
    }


def test_the_worklist_answers_a_page_and_audits_only_the_patients_on_it(service: Service) -> None:
    vera = service.as_(Role.VARDSAMORDNARE, **PURPOSE)
    answer = service.client.get(
        f"/units/{UNIT}/worklist", params={"page_size": 1, "page": 2}, headers=vera
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert [r["personnummer"] for r in body["rows"]] == ["19310619-9817"]
    assert (body["patients"], body["matching"], body["page"], body["pages"]) == (2, 2, 2, 2)
    assert [e.patient for e in service.reads()] == [NO_PLAN.digits]
    late = service.client.get(
        f"/units/{UNIT}/worklist", params={"overdue": "true", "sort": "-risk"}, headers=vera
    ).json()
    assert ([r["patient_id"] for r in late["rows"]], late["matching"]) == (["1"], 1)


def test_filters_and_paging_open_no_other_unit(service: Service) -> None:
    params = {"q": "19", "page_size": 500, "sort": "-risk", "with_tasks": "true"}
    other = service.as_("other", **PURPOSE)
    assert (
        service.client.get(f"/units/{UNIT}/worklist", params=params, headers=other).status_code
        == 403
    )
    assert service.reads() == []


@pytest.mark.parametrize(
    "params",
    [{"sort": "personnummer"}, {"page_size": 501}, {"page": 0}, {"plan": "x"}, {"q": "x" * 65}],
)
def test_a_bad_worklist_query_is_422_and_audits_nothing(
    service: Service, params: dict[str, object]
) -> None:
    vera = service.as_(Role.VARDSAMORDNARE, **PURPOSE)
    answer = service.client.get(f"/units/{UNIT}/worklist", params=params, headers=vera)
    assert answer.status_code == 422
    assert service.reads() == []


@pytest.mark.parametrize(
    ("who", "headers", "status"),
    [
        (Role.VARDSAMORDNARE, {}, 400),  # no purpose
        (Role.VARDSAMORDNARE, {"X-Purpose": "nyfikenhet"}, 400),
        ("other", PURPOSE, 403),  # another unit
        (Role.INTEGRATION, PURPOSE, 403),  # sends data in, reads none
    ],
)
def test_the_worklist_is_refused_without_purpose_unit_or_role(
    service: Service, who: Role | str, headers: dict[str, str], status: int
) -> None:
    answer = service.client.get(f"/units/{UNIT}/worklist", headers=service.as_(who, **headers))
    assert answer.status_code == status
    assert service.reads() == []


def test_an_admin_reads_any_unit_and_a_bad_hsa_id_is_422(service: Service) -> None:
    client, admin = service.client, service.as_(Role.ADMIN, **PURPOSE)
    assert client.get(f"/units/{UNIT}/worklist", headers=admin).status_code == 200
    assert client.get("/units/not-an-hsa-id/worklist", headers=admin).status_code == 422


def test_a_patient_by_opaque_id_own_unit_only(service: Service) -> None:
    vera = service.as_(Role.VARDSAMORDNARE, **PURPOSE)
    answer = service.client.get("/patients/1", headers=vera)
    assert answer.status_code == 200
    assert answer.json()["personnummer"] == "19380313-9801"
    assert [e.patient for e in service.reads()] == [LATE.digits]
    for path in ("/patients/1", "/patients/1/plans", "/patients/1/tasks"):
        answer = service.client.get(path, headers=service.as_("other", **PURPOSE))
        assert answer.status_code == 404  # the same answer as for no patient at all
    assert service.client.get("/patients/999", headers=vera).status_code == 404
    assert service.client.get("/patients/...", headers=vera).status_code == 422  # not an id
    history = service.client.get("/patients/1/followups", headers=vera).json()
    assert [h["text"] for h in history["history"]] == ["Plan upprättad"]


def test_marking_a_task_done(service: Service) -> None:
    vera = service.as_(Role.VARDSAMORDNARE, **PURPOSE)
    follow_up = task_id(service, 1, "follow-up")
    answer = service.client.post(
        f"/tasks/{follow_up}/done", json={"contact_type": "telefon"}, headers=vera
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["event_code"] == "UPPF"
    assert service.clinic.done == [(follow_up, AS_OF, "telefon", "key-vardsamordnare")]
    assert [(e.patient, e.resource) for e in service.reads()] == [(LATE.digits, "Task")]
    establish = task_id(service, 2, "establish-plan")
    assert service.client.post(f"/tasks/{establish}/done", headers=vera).status_code == 409
    other = service.as_("other", **PURPOSE)
    assert service.client.post(f"/tasks/{follow_up}/done", headers=other).status_code == 404
    bad = {"contact_type": "brevduva"}
    assert (
        service.client.post(f"/tasks/{follow_up}/done", json=bad, headers=vera).status_code == 422
    )
    future = {"performed": "2999-01-01"}
    answer = service.client.post(f"/tasks/{follow_up}/done", json=future, headers=vera)
    assert answer.status_code == 422 and "framtiden" in answer.json()["detail"]
    assert len(service.clinic.done) == 1


def test_ingest_needs_the_role_and_a_known_content_type(service: Service) -> None:
    client = service.client
    csv = {"Content-Type": "text/csv"}
    vera = service.as_(Role.VARDSAMORDNARE, **csv)
    assert client.post("/ingest/events", content=b"x", headers=vera).status_code == 403
    plain = service.as_(Role.INTEGRATION, **{"Content-Type": "text/plain"})
    answer = client.post("/ingest/events", content=b"x", headers=plain)
    assert answer.status_code == 415 and "text/csv" in answer.json()["detail"]
    json_body = service.as_(Role.INTEGRATION, **{"Content-Type": "application/json"})
    answer = client.post("/ingest/plans", content=b"{broken", headers=json_body)
    assert answer.status_code == 422 and "Ogiltig JSON" in answer.json()["detail"]
    multipart = service.as_(Role.INTEGRATION)
    answer = client.post("/ingest/prea60", data={"other": "x"}, files={"x": b""}, headers=multipart)
    assert answer.status_code == 422 and "file" in answer.json()["detail"]


def test_no_personnummer_in_any_route_of_the_api(service: Service) -> None:
    paths = service.app.openapi()["paths"]  # type: ignore[attr-defined]
    assert not [p for p in paths if PNR_IN_URL.search(p) or "personnummer" in p]
    assert "/units/{hsa_id}/worklist" in paths and "/patients/{patient_id}" in paths


# --- the pages ---


def test_login_sets_an_http_only_strict_cookie_and_the_session_purpose_is_audited(
    service: Service,
) -> None:
    answer = service.client.post(
        "/ui/login",
        data={"api_key": service.keys[Role.VARDSAMORDNARE], "purpose": "uppfoljning"},
        follow_redirects=False,
    )
    cookie = answer.headers["set-cookie"]
    assert COOKIE in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie
    assert service.keys[Role.VARDSAMORDNARE] not in cookie  # a token, never the key
    home = service.client.get("/ui/", follow_redirects=False)
    assert home.headers["location"] == f"/ui/units/{UNIT}"  # one unit: straight to it
    page = service.client.get(f"/ui/units/{UNIT}")
    assert page.status_code == 200
    assert "Åsa Lind" in page.text and "19380313-****" in page.text
    assert "Försenad" in page.text and "Markera som klar" in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert {(e.purpose, e.route) for e in service.reads()} == {
        ("uppfoljning", "/ui/units/{hsa_id}")
    }
    assert sorted(e.patient for e in service.reads()) == sorted([LATE.digits, NO_PLAN.digits])


def test_the_worklist_page_pages_sorts_and_filters_on_the_server(service: Service) -> None:
    client = login(service, Role.VARDSAMORDNARE)
    first = client.get(f"/ui/units/{UNIT}", params={"page_size": 1})
    assert "Visar 1–1 av 2 patienter." in first.text and "Sida 1 av 2" in first.text
    assert "Åsa Lind" in first.text and "19310619-****" not in first.text
    assert f'href="/ui/units/{UNIT}?page=2&amp;page_size=1" rel="next"' in first.text
    assert [e.patient for e in service.reads()] == [LATE.digits]  # only the row shown
    # the column link sorts the whole list: the highest risk first, then back to page 1
    by_risk = client.get(f"/ui/units/{UNIT}", params={"sort": "-risk", "page_size": 1}).text
    assert '<th scope="col" class="num" aria-sort="descending">' in by_risk
    assert f'href="/ui/units/{UNIT}?sort=risk&amp;page_size=1"' in by_risk
    filtered = client.get(f"/ui/units/{UNIT}", params={"overdue": "1"}).text
    assert "Visar 1–1 av 1 patienter (filtrerat ur 2)." in filtered
    assert "<strong>2</strong> patienter" in filtered  # the totals are the whole list's
    none = client.get(f"/ui/units/{UNIT}", params={"q": "ingen sådan"}).text
    assert "Inga patienter matchar (filtrerat ur 2)." in none and "<tbody>" not in none
    assert client.get(f"/ui/units/{UNIT}", params={"sort": "x"}).status_code == 422


def test_pages_load_nothing_from_elsewhere(service: Service) -> None:
    page = login(service, Role.VARDSAMORDNARE).get(f"/ui/units/{UNIT}").text
    sources = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert sources and all(s.startswith(("/", "#")) for s in sources), sources
    assert not [s for s in sources if s.startswith("//")]
    for asset in ("/static/app.css", "/static/worklist.js"):
        assert service.client.get(asset).status_code == 200


@pytest.mark.parametrize(
    ("who", "purpose", "status", "text"),
    [
        ("nobody", "vard", 401, "Fel API-nyckel"),
        (Role.INTEGRATION, "vard", 403, "kräver rollen"),
        (Role.VARDSAMORDNARE, "", 400, "Välj syftet"),
    ],
)
def test_a_refused_login_says_why_and_starts_no_session(
    service: Service, who: Role | str, purpose: str, status: int, text: str
) -> None:
    key = service.keys.get(who, "fel-nyckel")
    answer = service.client.post("/ui/login", data={"api_key": key, "purpose": purpose})
    assert answer.status_code == status and text in answer.text
    assert COOKIE not in answer.headers.get("set-cookie", "")
    assert len(service.app.state.page_sessions) == 0  # type: ignore[attr-defined]


def test_pages_need_a_login_and_logout_ends_it(service: Service) -> None:
    answer = service.client.get(f"/ui/units/{UNIT}", follow_redirects=False)
    assert (answer.status_code, answer.headers["location"]) == (303, "/ui/login")
    client = login(service, Role.VARDSAMORDNARE)
    store: SessionStore = service.app.state.page_sessions  # type: ignore[attr-defined]
    session = store.get(client.cookies.get(COOKIE))
    assert session is not None
    answer = client.post("/ui/logout", data={"csrf": "fel"})
    assert answer.status_code == 403  # the form's token is checked
    answer = client.post("/ui/logout", data={"csrf": session.csrf}, follow_redirects=False)
    assert answer.headers["location"] == "/ui/login" and len(store) == 0
    assert client.get(f"/ui/units/{UNIT}", follow_redirects=False).status_code == 303


def test_the_page_button_marks_done_with_the_csrf_token_and_says_so(service: Service) -> None:
    client = login(service, Role.VARDSAMORDNARE)
    session = service.app.state.page_sessions.get(client.cookies.get(COOKIE))  # type: ignore[attr-defined]
    follow_up = task_id(service, 1, "follow-up")
    back = f"/ui/units/{UNIT}"
    refused = client.post(f"/ui/tasks/{follow_up}/done", data={"back": back})
    assert refused.status_code == 403 and service.clinic.done == []
    answer = client.post(
        f"/ui/tasks/{follow_up}/done",
        data={"csrf": session.csrf, "back": back},
        follow_redirects=False,
    )
    assert answer.headers["location"] == back
    assert [d[0] for d in service.clinic.done] == [follow_up]
    assert "Klart: UPPF registrerad" in client.get(back).text
    elsewhere = client.post(
        f"/ui/tasks/{follow_up}/done",
        data={"csrf": session.csrf, "back": "https://example.org/"},
        follow_redirects=False,
    )
    assert elsewhere.headers["location"] == "/ui/"  # never an open redirect


def test_another_units_page_is_an_error_page_and_the_patient_page_shows_the_plan(
    service: Service,
) -> None:
    client = login(service, Role.VARDSAMORDNARE)
    answer = client.get(f"/ui/units/{OTHER_UNIT}")
    assert answer.status_code == 403 and "Behörighet saknas" in answer.text
    patient = client.get("/ui/patients/1")
    assert patient.status_code == 200 and "19380313-9801" in patient.text
    assert client.get("/ui/patients/999").status_code == 404


def test_a_page_view_moves_the_idle_clock_at_most_once_per_step(tmp_path: Path) -> None:
    """A session read is not a write per page (SEEN_STEPS): a view within a sixtieth of the
    idle time after the last recorded one leaves `seen` where it was."""
    now = [0.0]
    store = SessionStore(tmp_path / "sessions.sqlite", idle_seconds=60, clock=lambda: now[0])
    session = store.start(VARDSAMORDNARE, Purpose.VARD)
    now[0] = 30.0
    assert store.get(session.token) is not None  # recorded: seen = 30
    now[0] = 30.5  # within the step (1 s): not recorded
    assert store.get(session.token) is not None
    now[0] = 90.2  # 60.2 s after the recorded view: idle too long
    assert store.get(session.token) is None


def test_sessions_expire_when_idle_and_after_the_maximum(tmp_path: Path) -> None:
    now = [0.0]
    store = SessionStore(
        tmp_path / "sessions.sqlite", idle_seconds=10, max_seconds=25, clock=lambda: now[0]
    )
    session = store.start(VARDSAMORDNARE, Purpose.VARD)
    for step in (9, 18):  # used within the idle time: kept
        now[0] = step
        assert store.get(session.token) == replace(session, seen=step)
    now[0] = 26  # past the maximum
    assert store.get(session.token) is None
    other = store.start(VARDSAMORDNARE, Purpose.VARD)
    now[0] = 37  # idle too long
    assert store.get(other.token) is None and store.get(None) is None
    assert csrf_ok(other, other.csrf) and not csrf_ok(other, "x") and not csrf_ok(other, None)
