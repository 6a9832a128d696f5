"""The SIP meeting survey's answer page: /enkat, open without login.

The patient types the one-time code from "Min plan" and answers the questions. Safeguards:
- the code is all the page learns: the unit and the meeting date (adapter/survey/codes.py);
- one answer per code: the code is claimed atomically before the answer is stored, and released
  again only if the FHIR server did not take the answer;
- a rate limit per client address (every POST counts), so codes cannot be guessed;
- CSRF: a double-submit token (a SameSite=Strict cookie and the same value in the form);
- the answer is a QuestionnaireResponse without subject (adapter/survey/response.py).

The page shows nothing about the patient, sets no session, and writes no audit entry: there is
no patient data in it. The log line says only that an answer for a unit was stored.
"""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import APIRouter, FastAPI, Form, Request, status
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData

from adapter.api.surveys import PATH, SurveyState, survey_state
from adapter.api.ui.render import CSP, templates
from adapter.fhirclient import FhirClient, FhirError
from adapter.logs import get_logger
from adapter.settings import Settings
from adapter.survey.codes import normalize
from adapter.survey.questionnaire import Survey
from adapter.survey.response import AnswerError, parse_answers
from adapter.survey.submit import Outcome, submit

CSRF_COOKIE = "sip_fhir_enkat"
router = APIRouter(include_in_schema=False)
_log = get_logger("adapter.api.survey")


def _form(
    request: Request,
    status_code: int = status.HTTP_200_OK,
    *,
    error: str | None = None,
    chosen: dict[str, str] | None = None,
    code: str = "",
) -> HTMLResponse:
    token = secrets.token_urlsafe(24)
    response = templates.TemplateResponse(
        request,
        "survey.html",
        {
            "survey": survey_state(request).survey,
            "csrf": token,
            "error": error,
            "chosen": chosen or {},
            "code": code,
        },
        status_code=status_code,
        headers={"Content-Security-Policy": CSP, "Cache-Control": "no-store"},
    )
    response.set_cookie(
        CSRF_COOKIE,
        token,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path=PATH,
    )
    return response


def _done(request: Request, status_code: int, heading: str, message: str) -> HTMLResponse:
    return templates.TemplateResponse(
        request,
        "survey_done.html",
        {"heading": heading, "message": message},
        status_code=status_code,
        headers={"Content-Security-Policy": CSP, "Cache-Control": "no-store"},
    )


@router.get(PATH)
def survey_form(request: Request) -> HTMLResponse:
    return _form(request)


def _answers(form: FormData, survey: Survey) -> dict[str, str]:
    return {q.link_id: str(form.get(q.link_id) or "") for q in survey.questions}


@router.post(PATH)
async def survey_answer(
    request: Request,
    code: Annotated[str, Form(max_length=40)] = "",
    csrf: Annotated[str, Form(max_length=100)] = "",
) -> HTMLResponse:
    state = survey_state(request)
    client_address = request.client.host if request.client else "okänd"
    if not await run_in_threadpool(state.limit.allow, client_address):
        return _done(
            request,
            status.HTTP_429_TOO_MANY_REQUESTS,
            "För många försök",
            "Vänta en stund och försök igen.",
        )
    cookie = request.cookies.get(CSRF_COOKIE) or ""
    if not (csrf and cookie and secrets.compare_digest(csrf, cookie)):
        return _form(
            request,
            status.HTTP_403_FORBIDDEN,
            error="Formuläret har gått ut. Fyll i det igen.",
        )
    chosen = _answers(await request.form(), state.survey)
    typed = normalize(code)
    try:
        answers = parse_answers(state.survey, chosen)
    except AnswerError as error:
        return _form(
            request, status.HTTP_400_BAD_REQUEST, error=str(error), chosen=chosen, code=code
        )
    settings: Settings = request.app.state.settings
    try:
        with FhirClient(settings.endpoint()) as client:
            outcome = await run_in_threadpool(
                submit, client, state.codes, state.survey, typed, answers
            )
    except FhirError:
        _log.exception("survey answer not stored")
        return _done(
            request,
            status.HTTP_503_SERVICE_UNAVAILABLE,
            "Svaret kunde inte sparas",
            "Något gick fel hos oss. Försök igen lite senare; koden gäller fortfarande.",
        )
    if outcome is Outcome.UNKNOWN_CODE:
        return _form(
            request,
            status.HTTP_400_BAD_REQUEST,
            error="Koden stämmer inte. Kontrollera koden på din plan.",
            chosen=chosen,
            code=code,
        )
    if outcome is Outcome.USED_CODE:
        return _done(
            request,
            status.HTTP_409_CONFLICT,
            "Koden är redan använd",
            "Det finns redan ett svar med den här koden. Tack för att du ville svara!",
        )
    _log.info("survey answer stored")
    return _done(request, status.HTTP_201_CREATED, "Tack för ditt svar!", "Ditt svar är sparat.")


def install(app: FastAPI) -> None:
    """The survey's state (the Questionnaire from mappings/, the code store in the data dir)
    and its answer page."""
    settings: Settings = app.state.settings
    app.state.survey = SurveyState.for_settings(settings)
    app.include_router(router)
