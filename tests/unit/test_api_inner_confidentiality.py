"""Inner confidentiality (issue 10.2) without a FHIR server: of a patient shared by two units, a
vårdsamordnare sees their own unit's plans, Tasks, history and risks, and the other unit's plan
only as a summary (unit, kind, status, dates). Replays the review's attack on every route and
page of the app, enumerated from the app itself, so a new route without the check fails here.
The integration twin on the real HAPI server: tests/integration/test_api_access.py."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from adapter.api import create_app
from adapter.api.apikeys import ApiKeyEntry, add_entry, new_key
from adapter.api.clinic import Clinic, TaskContext
from adapter.api.principal import Role
from adapter.api.sessions import COOKIE
from adapter.audit import AuditKind, AuditLog
from adapter.followup.load import LoadedPatient
from adapter.followup.service import FollowupService
from adapter.settings import Settings
from adapter.worklist import PatientView, WorklistRow, worklist_rows
from adapter.worklist.rows import PlanLabel, logical_id
from adapter.worklist.scope import EVERY_UNIT, UnitScope, scoped_view
from tests.support.confidentiality import (
    OTHER,
    OWN,
    SECRET,
    body,
    every_route,
    filled,
    full_view,
    records,
)
from tests.support.stderr import logging_to_current_stderr
from tests.support.worklist import AS_OF, RULES, loaded_patients

PURPOSE = {"X-Purpose": "vard"}


@pytest.fixture(scope="module")
def shared() -> LoadedPatient:
    (patient,) = loaded_patients(records())
    return patient


# --- the pure rule ---


def test_the_own_unit_sees_its_plan_and_only_a_summary_of_the_other_units(
    shared: LoadedPatient,
) -> None:
    view = full_view(shared)
    assert {p.unit_hsa_id for p in view.plans} == {OWN, OTHER}  # what the server holds
    assert {t.unit_hsa_id for t in view.tasks} == {OTHER}  # the follow-up is the other unit's
    seen = scoped_view(view, UnitScope(frozenset({OWN})))
    (own,) = seen.plans
    assert own.unit_hsa_id == OWN and own.what_matters == "Att orka gå till affären själv"
    (summary,) = seen.plans_elsewhere
    assert (summary.unit_hsa_id, summary.kind, summary.status) == (OTHER, PlanLabel.SIP, "aktiv")
    assert (summary.created, summary.updated) == (date(2024, 8, 1), date(2024, 8, 1))
    assert SECRET not in repr(seen)  # no title, what matters, goal, action, participant or key
    assert seen.tasks == ()
    assert {h.unit_hsa_id for h in seen.history} == {OWN}
    assert [r.unit_hsa_id for r in seen.risks] == [OWN] and seen.units == (OWN,)


def test_the_other_unit_sees_its_own_plan_task_and_history(shared: LoadedPatient) -> None:
    seen = scoped_view(full_view(shared), UnitScope(frozenset({OTHER})))
    (plan,) = seen.plans
    assert plan.what_matters == f"{SECRET} det som är viktigt"
    assert [p.unit_hsa_id for p in seen.plans_elsewhere] == [OWN]
    assert [t.unit_hsa_id for t in seen.tasks] == [OTHER]
    assert {h.unit_hsa_id for h in seen.history} == {OTHER}
    assert seen.risks == ()  # the patient is listed at the other unit, not this one


def test_an_admin_sees_everything_and_a_caller_without_units_nothing(
    shared: LoadedPatient,
) -> None:
    view = full_view(shared)
    assert scoped_view(view, EVERY_UNIT) == view
    nothing = scoped_view(view, UnitScope(frozenset()))
    assert (nothing.plans, nothing.tasks, nothing.risks, nothing.units) == ((), (), (), ())
    assert len(nothing.plans_elsewhere) == 2 and SECRET not in repr(nothing)


# --- every route and page of the app ---


class SharedClinic(Clinic):
    """The routes' Clinic on the shared patient, with the plans' resources as a server has them."""

    def __init__(self, settings: Settings, patient: LoadedPatient) -> None:
        super().__init__(settings, FollowupService(settings))
        self.shared = patient
        self.done: list[str] = []

    def today(self) -> date:
        return AS_OF

    def worklist(self, unit_hsa_id: str, as_of: date) -> list[WorklistRow]:
        return worklist_rows([self.shared], unit_hsa_id, as_of, RULES, {"1": "Delad Patient"})

    def patient(self, patient_id: str, as_of: date) -> tuple[PatientView, LoadedPatient] | None:
        if logical_id(self.shared.reference) != patient_id:
            return None
        return full_view(self.shared), self.shared

    def open_task(self, task_id: str) -> TaskContext | None:
        task = next((t for t in self.shared.tasks if t.id == task_id), None)
        return TaskContext(task, self.shared) if task else None

    def mark_done(self, context: TaskContext, **_: object) -> object:  # type: ignore[override]
        self.done.append(context.task.id)
        raise AssertionError("another unit's Task must not be marked done")


@dataclass
class Service:
    app: FastAPI
    client: TestClient
    audit: AuditLog
    clinic: SharedClinic
    keys: dict[str, str]


@pytest.fixture
def service(tmp_path: Path, shared: LoadedPatient) -> Iterator[Service]:
    keys_file = tmp_path / "keys.json"
    keys = {}
    for who, role, units in (
        ("own", Role.VARDSAMORDNARE, [OWN]),
        ("other", Role.VARDSAMORDNARE, [OTHER]),
        ("admin", Role.ADMIN, []),
    ):
        keys[who] = new_key()
        add_entry(keys_file, keys[who], ApiKeyEntry(name=f"key-{who}", role=role, units=units))
    # Routes that go to the FHIR server themselves (Prea60 decisions) find none, at once.
    settings = Settings(
        data_dir=tmp_path / "data",
        api_keys_file=keys_file,
        scheduler=False,
        base_url="http://127.0.0.1:9/fhir",
        max_retry_seconds=0,
    )
    audit = AuditLog(tmp_path / "audit.sqlite")
    app = create_app(settings, audit_log=audit, readiness_checks={})
    clinic = SharedClinic(settings, shared)
    app.state.clinic = clinic
    with logging_to_current_stderr():
        yield Service(app, TestClient(app, raise_server_exceptions=False), audit, clinic, keys)


def other_units_task(service: Service) -> str:
    return next(t.id for t in service.clinic.shared.tasks if t.unit_hsa_id == OTHER)


def test_the_attack_get_patient_with_the_own_units_key(service: Service) -> None:
    """The review: a key of unit …777 got unit …888's SIP, its history and its open Task."""
    answer = service.client.get("/patients/1", headers={"X-API-Key": service.keys["own"]} | PURPOSE)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert SECRET not in answer.text
    assert [p["unit"] for p in body["plans"]] == [OWN]
    assert body["plans_elsewhere"] == [
        {
            "unit": OTHER,
            "kind": "SIP",
            "status": "aktiv",
            "active": True,
            "created": "2024-08-01",
            "updated": "2024-08-01",
            "valid_until": None,
        }
    ]
    assert body["open_tasks"] == [] and {h["unit"] for h in body["history"]} == {OWN}
    (entry,) = [e for e in service.audit.search(limit=100) if e.kind == AuditKind.PATIENT_READ]
    assert entry.unit == OWN  # the caller's unit, and what was shown:
    assert (
        entry.detail == f"units={OWN} plans=1 plans_elsewhere=1({OTHER}) history=2 tasks=0 risks=1"
    )


def test_the_other_unit_and_an_admin_still_see_the_plan_in_full(service: Service) -> None:
    for who, units in (("other", [OTHER]), ("admin", [OWN, OTHER])):
        headers = {"X-API-Key": service.keys[who]} | PURPOSE
        body = service.client.get("/patients/1", headers=headers).json()
        assert sorted(p["unit"] for p in body["plans"]) == units
        assert SECRET in str(body["plans"])
        assert other_units_task(service) in {t["id"] for t in body["open_tasks"]}


def parameters(task: str) -> dict[str, list[str]]:
    """The values each path parameter is tried with."""
    return {
        "patient_id": ["1"],
        "hsa_id": [OWN, OTHER],
        "task_id": [task],
        "resource_type": ["CarePlan", "Task"],  # the FHIR server's notifications (hook secret)
        "resource_id": ["1"],
        "run": ["2024-12-09"],  # a Prea60 run (confirm / reject)
    }


def other_plan_ids(service: Service) -> list[str]:
    """The other unit's CarePlan id (Min plan's routes: adapter/api/routes/minplan.py)."""
    view = full_view(service.clinic.shared)
    return [p.id for p in view.plans if p.unit_hsa_id == OTHER]


def test_no_route_or_page_shows_another_units_plan_content(service: Service) -> None:
    """Every route of the app (API and pages), with the own unit's key and its page session:
    nothing of the other unit's plan content, its Task or its key in any answer."""
    client = service.client
    csrf = page_login(service, "own")
    client.headers.update({"X-API-Key": service.keys["own"]} | PURPOSE)
    task = other_units_task(service)
    routes = sorted(every_route(service.app), key=lambda r: r[1].endswith("/logout"))  # last
    assert ("GET", "/patients/{patient_id}") in routes and (
        "GET",
        "/ui/patients/{patient_id}",
    ) in routes
    answered = {}
    for method, template in routes:
        for path in filled(template, parameters(task) | {"plan_id": other_plan_ids(service)}):
            answer = client.request(method, path, **body(method, path, csrf))
            text = answer.text
            assert SECRET not in text, f"{method} {path} shows the other unit's plan"
            assert f"lifecare:SIP-{SECRET}" not in text
            answered[(method, path)] = answer.status_code
    assert service.clinic.done == []  # the other unit's Task was not marked done
    # the check is not vacuous: the patient routes and page answered with the patient
    for path in ("/patients/1", "/patients/1/plans", "/patients/1/followups", "/patients/1/tasks"):
        assert answered[("GET", path)] == 200
    assert answered[("GET", "/ui/patients/1")] == 200
    assert answered[("POST", f"/tasks/{task}/done")] == 404
    plan_routes = [k for k in answered if "/plans/" in k[1] and k[1].startswith("/ui/")]
    assert len(plan_routes) == 4 and all(answered[k] == 404 for k in plan_routes)  # Min plan


def page_login(service: Service, who: str) -> str:
    """Log in to the pages; the session's form token."""
    answer = service.client.post(
        "/ui/login", data={"api_key": service.keys[who], "purpose": "vard"}, follow_redirects=False
    )
    assert answer.status_code == 303
    session = service.app.state.page_sessions.get(service.client.cookies.get(COOKIE))
    return str(session.csrf)


def test_the_patient_page_shows_the_other_units_plan_as_a_summary(service: Service) -> None:
    page_login(service, "own")
    page = service.client.get("/ui/patients/1")
    assert page.status_code == 200 and SECRET not in page.text
    assert "Planer vid andra enheter" in page.text and f"SIP vid {OTHER} (aktiv)" in page.text
    assert "Att orka gå till affären själv" in page.text  # the own unit's plan, in full
