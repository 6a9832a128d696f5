"""Liveness and readiness probes: open to all, they say nothing about patients."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Request, Response, status
from pydantic import BaseModel

from adapter.api.readiness import run_checks

router = APIRouter(tags=["drift"])


class Health(BaseModel):
    status: Literal["ok"] = "ok"


class Readiness(BaseModel):
    status: Literal["ok", "ej redo"]
    checks: dict[str, Literal["ok", "fel"]]


@router.get("/healthz", summary="Processen lever")
def healthz() -> Health:
    return Health()


@router.get(
    "/readyz",
    summary="Tjänsten är redo: FHIR-servern, utkorgen och granskningsloggen svarar",
    responses={status.HTTP_503_SERVICE_UNAVAILABLE: {"model": Readiness}},
)
def readyz(request: Request, response: Response) -> Readiness:
    results = run_checks(request.app.state.readiness_checks)
    ready = all(results.values())
    if not ready:
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    return Readiness(
        status="ok" if ready else "ej redo",
        checks={name: "ok" if ok else "fel" for name, ok in results.items()},
    )
