"""The SIP meeting survey's indicator `sip-survey` for one unit and quarter: the API
(`GET /units/{hsa_id}/survey?quarter=2025Q1`) and the page (`/ui/units/{hsa_id}/survey`).

Aggregates only, like the other indicators (adapter/api/routes/indicators.py): a vårdsamordnare
of the unit or an admin, no purpose, no per-patient audit entry. Default quarter: today's."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request, status
from fastapi.responses import HTMLResponse

from adapter.api.access import Reader
from adapter.api.clinic import Clinic
from adapter.api.deps import ClinicDep, UnitPath, fhir_errors
from adapter.api.security import ensure_unit_access
from adapter.api.surveys import survey_state
from adapter.api.ui.render import PREFIX, render
from adapter.api.ui.session import PageError, SessionDep, as_page
from adapter.indicators.compute import Period
from adapter.survey.indicators import SurveyResult, quarter, quarter_of, survey_json, unit_survey

router = APIRouter(tags=["indikatorer"])
pages = APIRouter(prefix=PREFIX, include_in_schema=False)
QuarterQuery = Annotated[
    str | None,
    Query(
        alias="quarter",
        max_length=8,
        description="Kvartal, t.ex. 2025Q1 (standard: innevarande)",
    ),
]


def _period(clinic: Clinic, text: str | None) -> Period:
    return quarter(text) if text else quarter_of(clinic.today())


def _result(request: Request, clinic: Clinic, unit: str, period: Period) -> SurveyResult:
    state = survey_state(request)
    with clinic.client() as client:
        return unit_survey(
            client,
            state.survey,
            state.codes,
            unit,
            period,
            clinic.rules,
            mappings=clinic.mappings,
        )


@router.get("/units/{hsa_id}/survey", summary="Enkäten om SIP-mötet per kvartal (sip-survey)")
def survey_indicator(
    request: Request,
    hsa_id: UnitPath,
    principal: Reader,
    clinic: ClinicDep,
    quarter_text: QuarterQuery = None,
) -> dict[str, Any]:
    ensure_unit_access(principal, hsa_id)
    try:
        period = _period(clinic, quarter_text)
    except ValueError as error:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=str(error)) from None
    with fhir_errors():
        return survey_json(_result(request, clinic, hsa_id, period))


@pages.get("/units/{hsa_id}/survey")
def survey_page(
    request: Request,
    hsa_id: UnitPath,
    session: SessionDep,
    clinic: ClinicDep,
    quarter_text: QuarterQuery = None,
) -> HTMLResponse:
    with as_page():
        ensure_unit_access(session.principal, hsa_id)
        try:
            period = _period(clinic, quarter_text)
        except ValueError as error:
            raise PageError(status.HTTP_400_BAD_REQUEST, str(error)) from None
        result = _result(request, clinic, hsa_id, period)
    shown_quarter = f"{period.start.year}Q{(period.start.month - 1) // 3 + 1}"
    return render(
        request, "survey_report.html", session, unit=hsa_id, result=result, quarter=shown_quarter
    )
