"""`GET /units/{hsa_id}/worklist`: the unit's risk-group patients (and those with an open Task of
the unit) with risk, plan, latest follow-up, due date, open Tasks and whether anything is
overdue. A vårdsamordnare of the unit or an admin; `X-Purpose` required; every patient listed is
in the audit log before the answer leaves. Today's list comes from the read model
(adapter/readmodel), encoded once per version of it."""

from __future__ import annotations

from fastapi import APIRouter, Response

from adapter.api.access import PatientAccessDep
from adapter.api.deps import AsOfQuery, ClinicDep, UnitPath, fhir_errors
from adapter.api.models import WorklistOut
from adapter.api.worklist_answer import worklist_json

router = APIRouter(tags=["arbetslista"])


@router.get(
    "/units/{hsa_id}/worklist",
    summary="Enhetens arbetslista",
    response_model=WorklistOut,  # the schema; the answer is encoded already
)
def worklist(
    hsa_id: UnitPath, access: PatientAccessDep, clinic: ClinicDep, as_of: AsOfQuery = None
) -> Response:
    access.ensure_unit(hsa_id)
    day = as_of or clinic.today()
    with fhir_errors():
        rows = clinic.worklist(hsa_id, day)
    access.record([row.person for row in rows], resource="worklist", unit=hsa_id)
    return Response(worklist_json(hsa_id, day, rows), media_type="application/json")
