"""The vårdsamordnare's pages (Swedish, server-rendered with Jinja2, a little vanilla JS, every
asset served from /static: no CDN).

- /ui/login: API key + the purpose of the session (adapter/api/sessions.py);
- /ui/units/{hsa_id}: the worklist: risk-group patients with risk, plan, latest follow-up, due
  date, open Tasks; overdue rows marked in words and colour; 50 rows a page, filtered and sorted
  on the server over the whole list (the column headers are links; adapter/worklist/listing.py);
  each follow-up or SIP-call Task has a button "Markera som klar" (a form: works without JS);
- /ui/patients/{patient_id}: the plans with goals and who does what, history, open Tasks;
- /ui/units/{hsa_id}/indicators: the indicators with their targets, and the trend chart.

Showing names and personnummer to a logged-in vårdsamordnare of the unit is the point of the
list; every page with patient data writes the audit entries (with the session's purpose) before
it is sent, as the JSON routes do. The pages are not in the OpenAPI description. What the pages
share (templates, session, error pages, wiring) is in adapter/api/ui/.
"""

from __future__ import annotations

import base64
import re
from decimal import Decimal
from functools import partial
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Form, HTTPException, Request, status
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from adapter.api.access import READ_PURPOSES, PatientAccess, audit_trail
from adapter.api.deps import (
    HSA_ID_PATTERN,
    ClinicDep,
    PatientPath,
    TaskPath,
    UnitPath,
    WorklistQueryDep,
    fhir_errors,
)
from adapter.api.principal import PATIENT_DATA_READERS, Role
from adapter.api.security import AuthenticationError, ensure_unit_access
from adapter.api.services import complete_task, read_patient, trend_svg, unit_worklist
from adapter.api.sessions import COOKIE, same_origin
from adapter.api.surveys import survey_state
from adapter.api.ui.render import PREFIX, redirect, render
from adapter.api.ui.session import (
    PageAccessDep,
    SessionDep,
    as_page,
    check_csrf,
    session_store,
)
from adapter.audit import Purpose
from adapter.indicators.compute import Scoring
from adapter.indicators.measures import short_title, title
from adapter.indicators.trend import COUNTS, SHARES
from adapter.logs import get_logger
from adapter.worklist.listing import DEFAULT_PAGE_SIZE, DEFAULT_SORT, WorklistQuery

router = APIRouter(prefix=PREFIX, include_in_schema=False)
_log = get_logger("adapter.api.pages")


# --- login ---


@router.get("/login")
def login_form(request: Request) -> HTMLResponse:
    return render(request, "login.html", None, purposes=READ_PURPOSES)


@router.post("/login")
def login(
    request: Request,
    api_key: Annotated[str, Form(max_length=500)] = "",
    purpose: Annotated[str, Form(max_length=50)] = "",
) -> Response:
    def refused(message: str, code: int) -> HTMLResponse:
        return render(request, "login.html", None, code, purposes=READ_PURPOSES, error=message)

    if not same_origin(request, request.app.state.settings.ui_origins):  # login CSRF
        _log.warning("page login from another origin", origin=request.headers.get("origin"))
        return refused(
            "Inloggningen kom från en annan webbplats; öppna inloggningssidan och försök igen.",
            status.HTTP_403_FORBIDDEN,
        )
    if purpose not in {p.value for p in READ_PURPOSES}:
        return refused("Välj syftet med din inloggning.", status.HTTP_400_BAD_REQUEST)
    try:
        principal = request.app.state.authenticator.authenticate(None, api_key.strip() or None)
    except AuthenticationError as error:
        _log.warning("page login failed", reason=error.reason)
        return refused("Fel API-nyckel.", status.HTTP_401_UNAUTHORIZED)
    if not principal.has_role(*PATIENT_DATA_READERS):
        return refused(
            "Nyckeln ger inte tillgång till arbetslistan (kräver rollen vardsamordnare "
            "eller admin).",
            status.HTTP_403_FORBIDDEN,
        )
    session = session_store(request).start(principal, Purpose(purpose))
    _log.info("page login", principal=principal.name, purpose=purpose)
    response = redirect(f"{PREFIX}/")
    response.set_cookie(
        COOKIE,
        session.token,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
    )
    return response


@router.post("/logout")
def logout(
    request: Request, session: SessionDep, csrf: Annotated[str, Form(max_length=100)] = ""
) -> Response:
    check_csrf(session, csrf)
    session_store(request).end(session.token)
    response = redirect(f"{PREFIX}/login")
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
    return response


# --- the pages ---


@router.get("/")
def home(request: Request, session: SessionDep) -> Response:
    units = sorted(session.principal.units)
    if len(units) == 1 and not session.principal.has_role(Role.ADMIN):
        return redirect(f"{PREFIX}/units/{units[0]}")
    return render(request, "home.html", session, units=units, hsa_pattern=HSA_ID_PATTERN[1:-1])


@router.get("/units")
def choose_unit(session: SessionDep, hsa_id: str = "") -> Response:
    unit = hsa_id.strip()
    if not re.fullmatch(HSA_ID_PATTERN, unit):
        session.flash.append("Ogiltigt HSA-id: ange t.ex. SE2321000057-E00000000001.")
        return redirect(f"{PREFIX}/")
    return redirect(f"{PREFIX}/units/{unit}")


@router.get("/units/{hsa_id}")
def worklist_page(
    request: Request,
    hsa_id: UnitPath,
    session: SessionDep,
    access: PageAccessDep,
    clinic: ClinicDep,
    query: WorklistQueryDep,
) -> HTMLResponse:
    here = f"{PREFIX}/units/{hsa_id}"
    with as_page():
        as_of = clinic.today()
        listing = unit_worklist(clinic, access, hsa_id, as_of, query)
        unconfirmed = clinic.unconfirmed_runs(hsa_id)
    surveys = survey_state(request).codes.status_by_patient(r.patient_id for r in listing.rows)
    return render(
        request,
        "worklist.html",
        session,
        unit=hsa_id,
        listing=listing,
        query=query,
        here=here,
        page_link=partial(_worklist_link, here, query),
        default_sort=DEFAULT_SORT,
        default_page_size=DEFAULT_PAGE_SIZE,
        as_of=as_of,
        unconfirmed=unconfirmed,
        surveys=surveys,
    )


def _worklist_link(here: str, query: WorklistQuery, sort: str | None = None, page: int = 1) -> str:
    """The worklist with `query`'s filters, another order or page: only what differs from the
    defaults goes into the address."""
    params = {
        "q": query.text.strip(),
        "plan": query.plan.value if query.plan else "",
        "overdue": "1" if query.overdue_only else "",
        "with_tasks": "1" if query.with_tasks_only else "",
        "sort": "" if (sort or query.sort) == DEFAULT_SORT else (sort or query.sort),
        "page": "" if page == 1 else str(page),
        "page_size": "" if query.page_size == DEFAULT_PAGE_SIZE else str(query.page_size),
    }
    found = urlencode({key: value for key, value in params.items() if value})
    return f"{here}?{found}" if found else here


@router.get("/patients/{patient_id}")
def patient_page(
    request: Request,
    patient_id: PatientPath,
    session: SessionDep,
    access: PageAccessDep,
    clinic: ClinicDep,
) -> HTMLResponse:
    with as_page():
        view = read_patient(clinic, access, patient_id, clinic.today(), "Patient")
    surveys = survey_state(request).codes.status(p.id for p in view.plans)
    return render(request, "patient.html", session, view=view, surveys=surveys)


@router.post("/tasks/{task_id}/done")
async def task_done_page(
    request: Request,
    task_id: TaskPath,
    clinic: ClinicDep,
    session: SessionDep,
    csrf: Annotated[str, Form(max_length=100)] = "",
    back: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    check_csrf(session, csrf)
    access = PatientAccess(audit_trail(request, session.principal), session.purpose)
    target = back if _safe_back(back) else f"{PREFIX}/"
    try:
        with fhir_errors():
            done = await run_in_threadpool(complete_task, clinic, access, task_id)
    except HTTPException as error:
        session.flash.append(f"Uppgiften kunde inte markeras som klar: {error.detail}")
        return redirect(target)
    session.flash.append(
        f"Klart: {done.event_code.value} registrerad {done.event_date.isoformat()}; "
        "uppgiften är avslutad."
    )
    return redirect(target)


def _safe_back(url: str) -> bool:
    """Only our own pages: no open redirect."""
    return url.startswith(f"{PREFIX}/") and "//" not in url and "\\" not in url


@router.get("/units/{hsa_id}/indicators")
def indicators_page(
    request: Request, hsa_id: UnitPath, session: SessionDep, clinic: ClinicDep
) -> HTMLResponse:
    with as_page():
        ensure_unit_access(session.principal, hsa_id)
        found = clinic.indicators(hsa_id, clinic.today())
        trend = clinic.trend(hsa_id)
    chart = None
    if trend is not None:
        chart = (
            "data:image/svg+xml;base64,"
            + base64.b64encode(trend_svg(trend, clinic.settings.profiles_dir)).decode()
        )
    rows = [
        {
            "title": title(r.indicator, clinic.settings.profiles_dir),
            "share": r.scoring is Scoring.PROPORTION,
            "result": r,
            "met_region": _met(r.value, r.region_target_percent),
            "met_unit": _met(r.value, r.unit_target_percent),
        }
        for r in found.results
    ]
    return render(
        request,
        "indicators.html",
        session,
        unit=hsa_id,
        period=found.period,
        rows=rows,
        trend=trend,
        chart=chart,
        trend_columns=[
            {
                "code": code,
                "label": short_title(code, clinic.settings.profiles_dir),
                "share": code in SHARES,
            }
            for code in (*SHARES, *COUNTS)
        ],
    )


def _met(value: Decimal | None, target: Decimal | None) -> bool | None:
    return None if value is None or target is None else value >= target
