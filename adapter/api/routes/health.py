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
async def healthz() -> Health:
    # async and without I/O: answered on the event loop itself, never queued behind the
    # worker threads that slow patient reads may all be holding.
    return Health()


@router.get(
    "/readyz",
    summary="Tjänsten är redo: FHIR-servern svarar, utkorgen kan läsas, granskningsloggen skrivas",
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
