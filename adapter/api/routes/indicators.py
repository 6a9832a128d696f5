"""The unit's indicators: computed now from the FHIR server (`GET /units/{hsa_id}/indicators`),
and their trend from the stored weekly snapshots (`.../trend`, and the chart `.../trend.svg`).

Aggregates only (counts and shares, no patient): a vårdsamordnare of the unit or an admin, no
purpose and no per-patient audit entry. The subject lists with the patients are the
MeasureReports on the FHIR server (`sip-fhir indicators --store`), not answered here.
"""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Response, status

from adapter.api.access import Reader
from adapter.api.deps import AsOfQuery, ClinicDep, UnitPath, fhir_errors
from adapter.api.models import IndicatorsOut, TrendOut
from adapter.api.security import ensure_unit_access
from adapter.api.services import trend_svg

router = APIRouter(prefix="/units/{hsa_id}/indicators", tags=["indikatorer"])

SVG = "image/svg+xml"


@router.get("", summary="Enhetens indikatorer (veckan som slutar på as_of)")
def indicators(
    hsa_id: UnitPath, principal: Reader, clinic: ClinicDep, as_of: AsOfQuery = None
) -> IndicatorsOut:
    ensure_unit_access(principal, hsa_id)
    with fhir_errors():
        found = clinic.indicators(hsa_id, as_of or clinic.today())
    return IndicatorsOut.of(found, clinic.settings.profiles_dir)


@router.get("/trend", summary="Trenden ur de veckovisa ögonblicksbilderna, med målen")
def trend(hsa_id: UnitPath, principal: Reader, clinic: ClinicDep) -> TrendOut:
    ensure_unit_access(principal, hsa_id)
    with fhir_errors():
        found = clinic.trend(hsa_id)
    return TrendOut.of(hsa_id, found, clinic.settings.profiles_dir)


@router.get(
    "/trend.svg",
    summary="Trenddiagram (SVG)",
    response_class=Response,
    responses={
        status.HTTP_200_OK: {"content": {SVG: {}}, "description": "Diagrammet"},
        status.HTTP_404_NOT_FOUND: {"description": "Inga ögonblicksbilder sparade ännu"},
    },
)
def trend_chart(hsa_id: UnitPath, principal: Reader, clinic: ClinicDep) -> Response:
    ensure_unit_access(principal, hsa_id)
    with fhir_errors():
        found = clinic.trend(hsa_id)
    if found is None:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, detail="Inga veckovisa ögonblicksbilder sparade ännu."
        )
    return Response(trend_svg(found, clinic.settings.profiles_dir), media_type=SVG)
