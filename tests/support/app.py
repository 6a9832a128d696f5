"""The API app over a fake FHIR server, with keys per role."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.testclient import TestClient

from adapter.api import create_app
from adapter.api.access import IngestAccessDep, PatientAccessDep
from adapter.api.principal import Principal, Role
from adapter.api.security import current_principal, require_unit_access
from adapter.audit import AuditKind, AuditLog
from adapter.domain import PersonId
from adapter.settings import Settings

OWN_UNIT = "SE2321000057-E00000000001"


TOLVAN = PersonId("191212129819")


ANNA = PersonId("195001019800")


VARDSAMORDNARE = Principal(
    "Vera", "sub-vera", frozenset({Role.VARDSAMORDNARE}), frozenset({OWN_UNIT})
)


def routes_for_tests() -> APIRouter:
    """Routes shaped like the real ones will be: thin, using the shared dependencies."""
    router = APIRouter()

    @router.get("/units/{unit}/patients")
    def unit_patients(unit: str, access: PatientAccessDep) -> dict[str, int]:
        access.ensure_unit(unit)
        access.record([TOLVAN, ANNA, TOLVAN], resource="Patient", unit=unit)
        return {"patients": 2}

    @router.get("/units/{unit}/summary", dependencies=[Depends(require_unit_access)])
    def unit_summary(unit: str) -> dict[str, str]:
        return {"unit": unit}

    @router.get("/forgetful")
    def forgetful(access: PatientAccessDep) -> dict[str, str]:
        return {"patient": TOLVAN.digits}  # returns patient data, records nothing

    @router.get("/boom")
    def boom() -> None:
        raise RuntimeError(f"database said no for {TOLVAN.digits}")

    @router.post("/ingest")
    async def ingest(request: Request, ingest: IngestAccessDep) -> dict[str, int]:
        lines = (await request.body()).decode().splitlines()
        ingest.record(resource="prea60", accepted=len(lines), rejected=0)
        return {"accepted": len(lines)}

    return router


class Service:
    def __init__(self, tmp_path: Path, **settings: Any) -> None:
        self.audit = AuditLog(tmp_path / "audit.sqlite")
        self.app: FastAPI = create_app(
            Settings(data_dir=tmp_path, **settings),
            audit_log=self.audit,
            readiness_checks={"fhir": lambda: None, "outbox": lambda: None},
        )
        self.app.include_router(routes_for_tests())
        self.client = TestClient(self.app, raise_server_exceptions=False)

    def login(self, principal: Principal | None) -> TestClient:
        if principal is None:
            self.app.dependency_overrides.pop(current_principal, None)
        else:
            self.app.dependency_overrides[current_principal] = lambda: principal
        return self.client

    def events(self, kind: AuditKind | None = None) -> list[Any]:
        return [e for e in self.audit.search(limit=1000) if kind is None or e.kind == kind]


PURPOSE = {"X-Purpose": "uppfoljning"}
