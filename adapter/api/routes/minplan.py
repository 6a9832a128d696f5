""" "Min plan" for staff to hand to the patient: the page (large text, prints well) and a PDF,
and the SIP meeting survey's one-time code printed on it.

- GET  /ui/patients/{patient_id}/plans/{plan_id}/min-plan       the page
- GET  /ui/patients/{patient_id}/plans/{plan_id}/min-plan.pdf   the PDF
- POST /ui/patients/{patient_id}/plans/{plan_id}/survey-code    a new code: the page with it
- POST /ui/patients/{patient_id}/plans/{plan_id}/min-plan.pdf   the PDF with that code

Like the patient page: a logged-in session, the patient read through `read_patient` (404
outside one's units, audited with the session's purpose), and the plan must be one of the
caller's units' plans (another unit's plan is refused: 404, its content is never read). The
plan itself is read from the FHIR server (CarePlan with its Goals and CareTeam).

The plain code exists only in the answer to the POST that made it (and in what is printed):
the store keeps its hash (adapter/survey/codes.py). It is a POST, not a link, so the code stays
out of URLs, browser history and access logs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request, status
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, Response

from adapter.api.access import PatientAccess
from adapter.api.clinic import Clinic
from adapter.api.deps import ID_PATTERN, ClinicDep, PatientPath
from adapter.api.services import read_patient
from adapter.api.sessions import csrf_ok
from adapter.api.surveys import survey_state, survey_url
from adapter.api.ui.render import PREFIX, render
from adapter.api.ui.session import PageAccessDep, PageError, SessionDep, as_page
from adapter.minplan import MinPlan, min_plan
from adapter.minplan.pdf import render_pdf
from adapter.minplan.read import read_plan
from adapter.minplan.sections import footer, sections
from adapter.survey.codes import shown
from adapter.survey.handout import NotASip, issue_for
from adapter.worklist import PatientView

router = APIRouter(prefix=PREFIX, include_in_schema=False)
PlanPath = Annotated[str, PathParam(pattern=ID_PATTERN, max_length=64)]
NOT_YOURS = "Planen finns inte bland dina enheters planer."
NOT_FOR_PATIENT = (
    "Planen är märkt att patienten inte ska se den (NOPAT, källsystemet): "
    "Min plan kan inte skrivas ut."
)


@dataclass(frozen=True, slots=True)
class PlanPage:
    """A route's patient and plan (the path) with what reading them takes; read by `read()`,
    after the route's CSRF check."""

    request: Request
    patient_id: str
    plan_id: str
    access: PatientAccess
    clinic: Clinic

    def read(self) -> tuple[PatientView, MinPlan]:
        clinic = self.clinic
        with as_page():
            view = read_patient(clinic, self.access, self.patient_id, clinic.today(), "CarePlan")
        if not any(p.id == self.plan_id for p in view.plans):  # scoped: the caller's units' plans
            raise PageError(status.HTTP_404_NOT_FOUND, NOT_YOURS)
        with as_page(), clinic.client() as client:
            found = read_plan(client, self.plan_id)
        if found is None:
            raise PageError(status.HTTP_404_NOT_FOUND, NOT_YOURS)
        plan = min_plan(
            found.care_plan, found.goals, found.team, clinic.today(), patient_name=view.name
        )
        if plan.not_for_patient:  # Inera PDL-001: the source withheld it from the patient
            raise PageError(status.HTTP_403_FORBIDDEN, NOT_FOR_PATIENT)
        return view, plan


def plan_page(
    request: Request,
    patient_id: PatientPath,
    plan_id: PlanPath,
    access: PageAccessDep,
    clinic: ClinicDep,
) -> PlanPage:
    return PlanPage(request, patient_id, plan_id, access, clinic)


PlanPageDep = Annotated[PlanPage, Depends(plan_page)]


def _page(
    request: Request,
    session: SessionDep,
    view: PatientView,
    plan: MinPlan,
    code: str | None = None,
) -> HTMLResponse:
    handout = survey_state(request).codes.status([plan.plan_id]).get(plan.plan_id)
    return render(
        request,
        "minplan.html",
        session,
        view=view,
        plan=plan,
        sections=sections(plan),
        footer=footer(plan),
        code=shown(code) if code else None,
        raw_code=code,
        survey_url=survey_url(request),
        handout=handout,
    )


def _csrf(session: SessionDep, token: str) -> None:
    if not csrf_ok(session, token):
        raise PageError(
            status.HTTP_403_FORBIDDEN, "Formuläret har gått ut; ladda om sidan och försök igen."
        )


@router.get("/patients/{patient_id}/plans/{plan_id}/min-plan")
def min_plan_page(session: SessionDep, page: PlanPageDep) -> HTMLResponse:
    view, plan = page.read()
    return _page(page.request, session, view, plan)


@router.post("/patients/{patient_id}/plans/{plan_id}/survey-code")
def issue_survey_code(
    session: SessionDep, page: PlanPageDep, csrf: Annotated[str, Form(max_length=100)] = ""
) -> HTMLResponse:
    _csrf(session, csrf)
    view, plan = page.read()
    codes = survey_state(page.request).codes
    try:
        code, _ = issue_for(codes, plan, view.patient_id, page.clinic.today())
    except NotASip as error:
        raise PageError(status.HTTP_400_BAD_REQUEST, str(error)) from None
    return _page(page.request, session, view, plan, code)


def _pdf(plan: MinPlan, survey: tuple[str, str] | None) -> Response:
    return Response(
        render_pdf(plan, survey),
        media_type="application/pdf",
        headers={
            "Content-Disposition": 'inline; filename="min-plan.pdf"',
            "Cache-Control": "no-store",
        },
    )


@router.get("/patients/{patient_id}/plans/{plan_id}/min-plan.pdf")
def min_plan_pdf(page: PlanPageDep) -> Response:
    _, plan = page.read()
    return _pdf(plan, None)


@router.post("/patients/{patient_id}/plans/{plan_id}/min-plan.pdf")
def min_plan_pdf_with_code(
    session: SessionDep,
    page: PlanPageDep,
    csrf: Annotated[str, Form(max_length=100)] = "",
    code: Annotated[str, Form(max_length=20)] = "",
) -> Response:
    _csrf(session, csrf)
    _, plan = page.read()
    if not survey_state(page.request).codes.belongs_to(code, page.plan_id):
        raise PageError(status.HTTP_400_BAD_REQUEST, "Koden hör inte till den här planen.")
    return _pdf(plan, (shown(code), survey_url(page.request)))
