"""`GET /units/{hsa_id}/worklist`: the unit's risk-group patients (and those with an open Task of
the unit) with risk, plan, latest follow-up, due date, open Tasks and whether anything is
overdue, a page at a time (50 rows unless `page_size`), filtered and sorted before it is cut
(adapter/worklist/listing.py), with the totals of the whole list. A vårdsamordnare of the unit
or an admin; `X-Purpose` required; every patient on the page is in the audit log before the
answer leaves. Today's list comes from the read model (adapter/readmodel)."""

from __future__ import annotations

from fastapi import APIRouter, Response

from adapter.api.access import PatientAccessDep
from adapter.api.deps import AsOfQuery, ClinicDep, UnitPath, WorklistQueryDep
from adapter.api.models import WorklistOut, worklist_out
from adapter.api.services import unit_worklist

router = APIRouter(tags=["arbetslista"])


@router.get(
    "/units/{hsa_id}/worklist",
    summary="Enhetens arbetslista, en sida i taget",
    response_model=WorklistOut,  # the schema; the answer below is that model, encoded once
)
def worklist(
    hsa_id: UnitPath,
    access: PatientAccessDep,
    clinic: ClinicDep,
    query: WorklistQueryDep,
    as_of: AsOfQuery = None,
) -> Response:
    day = as_of or clinic.today()
    found = worklist_out(hsa_id, day, unit_worklist(clinic, access, hsa_id, day, query))
    return Response(found.model_dump_json(), media_type="application/json")
