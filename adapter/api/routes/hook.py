"""The FHIR server's rest-hook notifications: something that can fulfil or create a follow-up
Task was written, re-evaluate that patient (adapter/followup/subscriptions.py registers them).

`PUT|POST /fhir-hook/{type}/{id}` with the resource as the body (payload application/fhir+json),
or an empty body (the resource is then read from the server); `POST /fhir-hook` is the
payload-less ping of a server that says nothing more (nothing to do: the scans cover it). The
server proves itself with the shared secret in the X-Sip-Fhir-Hook header (Subscription.channel.
header), not with a user's login. The answer comes at once; the patient is evaluated after it.
"""

from __future__ import annotations

import re
import secrets
from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Depends, HTTPException, Request, status
from fastapi.responses import JSONResponse

from adapter import personnummer, safejson
from adapter.api.deps import followup_service
from adapter.fhirclient import FhirError
from adapter.followup.service import FollowupService
from adapter.followup.subscriptions import CRITERIA, HOOK_HEADER, HOOK_PATH
from adapter.logs import get_logger

router = APIRouter(prefix=HOOK_PATH, tags=["uppföljning"])

_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")
_FHIR_JSON = "application/fhir+json"
_log = get_logger("adapter.api.hook")


def verify_hook_secret(request: Request) -> None:
    """503 while no secret is configured; 401 unless the header carries it."""
    secret = request.app.state.settings.hook_secret
    if secret is None:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            detail="Notifieringar är avstängda: SIP_FHIR_HOOK_SECRET är inte satt.",
        )
    given = request.headers.get(HOOK_HEADER, "")
    if not secrets.compare_digest(given.encode(), secret.get_secret_value().encode()):
        _log.warning("hook: wrong or missing secret", path=request.url.path)
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, detail="Fel eller saknad hemlighet.")


def _outcome(text: str, code: int = status.HTTP_200_OK) -> JSONResponse:
    body = {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "information", "code": "informational", "diagnostics": text}],
    }
    return JSONResponse(body, status_code=code, media_type=_FHIR_JSON)


def _evaluate(
    service: FollowupService, resource_type: str, resource_id: str, resource: Any
) -> None:
    try:
        service.notified(resource_type, resource_id, resource)
    except FhirError as error:  # could not read the resource: the scans will cover it
        _log.error(
            "hook: resource not read",
            resource=f"{resource_type}/{resource_id}",
            error=error.message,
        )


Service = Annotated[FollowupService, Depends(followup_service)]


_SUMMARY = "Notifiering från FHIR-serverns prenumeration (rest-hook)"


@router.put(
    "/{resource_type}/{resource_id}",
    dependencies=[Depends(verify_hook_secret)],
    summary=_SUMMARY,
    operation_id="fhir_hook_put",
)
@router.post(
    "/{resource_type}/{resource_id}",
    dependencies=[Depends(verify_hook_secret)],
    summary=_SUMMARY,
    operation_id="fhir_hook_post",
)
async def notification(
    resource_type: str,
    resource_id: str,
    request: Request,
    background: BackgroundTasks,
    service: Service,
) -> JSONResponse:
    # A personnummer-shaped id is no resource's: never read from (nor logged by) the server.
    if (
        resource_type not in CRITERIA
        or not _ID.fullmatch(resource_id)
        or personnummer.shaped(resource_id)
    ):
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="Bevakas inte.")
    body = await request.body()
    resource = None
    if body.strip():
        try:
            resource = safejson.loads(body)
        except safejson.TooDeep as error:
            raise HTTPException(status.HTTP_400_BAD_REQUEST, detail=error.reason) from None
        except ValueError:
            raise HTTPException(status.HTTP_400_BAD_REQUEST, detail="Ogiltig JSON.") from None
        if not isinstance(resource, dict) or resource.get("resourceType") != resource_type:
            raise HTTPException(
                status.HTTP_400_BAD_REQUEST, detail=f"Väntade en {resource_type}-resurs."
            )
    background.add_task(_evaluate, service, resource_type, resource_id, resource)
    return _outcome("Mottagen: patientens uppföljningsuppgifter omprövas.")


@router.post(
    "",
    dependencies=[Depends(verify_hook_secret)],
    summary="Notifiering utan resurs (prenumeration utan payload)",
    operation_id="fhir_hook_ping",
)
async def ping() -> JSONResponse:
    return _outcome("Mottagen utan resurs: inget att ompröva (schemalagda genomgångar täcker det).")
