"""The vårdsamordnare's pages (Swedish, server-rendered with Jinja2, a little vanilla JS, every
asset served from /static: no CDN).

- /ui/login: API key + the purpose of the session (adapter/api/sessions.py);
- /ui/units/{hsa_id}: the worklist: risk-group patients with risk, plan, latest follow-up, due
  date, open Tasks; overdue rows marked in words and colour; sortable (the column headers are
  buttons) and filterable in the browser; each follow-up or SIP-call Task has a button
  "Markera som klar" (a form: works without JS);
- /ui/patients/{patient_id}: the plans with goals and who does what, history, open Tasks;
- /ui/units/{hsa_id}/indicators: the indicators with their targets, and the trend chart.

Showing names and personnummer to a logged-in vårdsamordnare of the unit is the point of the
list; every page with patient data writes the audit entries (with the session's purpose) before
it is sent, as the JSON routes do. The pages are not in the OpenAPI description.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Form, HTTPException, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool

from adapter.api.access import READ_PURPOSES, PatientAccess, audit_trail
from adapter.api.deps import (
    HSA_ID_PATTERN,
    ClinicDep,
    PatientPath,
    TaskPath,
    UnitPath,
    fhir_errors,
)
from adapter.api.principal import PATIENT_DATA_READERS, Role
from adapter.api.security import AuthenticationError, ensure_unit_access
from adapter.api.services import complete_task, read_patient, trend_svg
from adapter.api.sessions import COOKIE, PageSession, SessionStore, csrf_ok, same_origin
from adapter.audit import Purpose
from adapter.canonical import TaskType
from adapter.domain import PersonId
from adapter.indicators.compute import Scoring
from adapter.indicators.distribution import BANDS, band_label
from adapter.indicators.measures import short_title, title
from adapter.indicators.present import scores_text, swedish
from adapter.indicators.trend import COUNTS, SHARES
from adapter.logs import get_logger
from adapter.personnummer import written
from adapter.worklist.labels import TASK_TITLES

PACKAGE_DIR = Path(__file__).resolve().parent.parent
TEMPLATES_DIR = PACKAGE_DIR / "templates"
STATIC_DIR = PACKAGE_DIR / "static"
PREFIX = "/ui"
# No inline script or style, nothing from elsewhere; the chart is a data: image.
CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
)
PURPOSE_LABELS = {
    Purpose.VARD: "Vård och behandling",
    Purpose.UPPFOLJNING: "Uppföljning av planer",
    Purpose.KVALITET: "Kvalitetsarbete",
}
# Tasks a button can mark done (the others close when a plan arrives: adapter/api/clinic.py)
DONE_TYPES = frozenset({TaskType.FOLLOW_UP, TaskType.SIP_CALL})

router = APIRouter(prefix=PREFIX, include_in_schema=False)
templates = Jinja2Templates(directory=TEMPLATES_DIR)
_log = get_logger("adapter.api.pages")


# --- template helpers ---


def _masked(person: PersonId) -> str:
    return person.masked


def _full(person: PersonId) -> str:
    return written(person.digits)


def _percent(value: Decimal | float | None) -> str:
    return swedish(None if value is None else Decimal(str(value)))


def _risk(value: Decimal | None) -> str:
    """A Prea60 risk as the list gives it: one decimal, "23,5 %"."""
    return "–" if value is None else f"{value:.1f}".replace(".", ",") + " %"


def _score(value: Decimal | None) -> str:
    """A plan's quality score as Swedish write it: "0,58"."""
    return "–" if value is None else f"{value:.2f}".replace(".", ",")


def _day(value: date | None) -> str:
    return value.isoformat() if value else "–"


def _bands(counts: tuple[int, ...]) -> list[tuple[str, int]]:
    """Plans per score band, labelled in Swedish: [("0,0–0,2", 1), ...]."""
    return [(band_label(band), n) for band, n in zip(BANDS, counts, strict=True)]


templates.env.filters.update(
    masked=_masked,
    pnr=_full,
    percent=_percent,
    risk=_risk,
    day=_day,
    score=_score,
    scores=scores_text,
    bands=_bands,
)
templates.env.globals.update(
    purpose_labels=PURPOSE_LABELS, done_types=DONE_TYPES, task_titles=TASK_TITLES
)


# --- sessions and errors ---


class LoginRequired(Exception):
    pass


class PageError(Exception):
    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message


def session_store(request: Request) -> SessionStore:
    store: SessionStore = request.app.state.page_sessions
    return store


def page_session(request: Request) -> PageSession:
    session = session_store(request).get(request.cookies.get(COOKIE))
    if session is None:
        raise LoginRequired
    return session


SessionDep = Annotated[PageSession, Depends(page_session)]


def page_access(request: Request, session: SessionDep) -> Iterator[PatientAccess]:
    """PatientAccess for a page: the session's caller and purpose (audited like the API)."""
    access = PatientAccess(audit_trail(request, session.principal), session.purpose)
    yield access
    if not access.recorded:
        raise RuntimeError(f"{access.trail.route} showed patient data but wrote no audit entry")


PageAccessDep = Annotated[PatientAccess, Depends(page_access, scope="function")]


@contextmanager
def as_page() -> Iterator[None]:
    """An HTTP error of the shared code (403, 404, a FHIR fault) as an error page."""
    try:
        with fhir_errors():
            yield
    except HTTPException as error:
        raise PageError(error.status_code, str(error.detail)) from None


def render(
    request: Request,
    name: str,
    session: PageSession | None,
    status_code: int = status.HTTP_200_OK,
    **context: Any,
) -> HTMLResponse:
    context |= {
        "session": session,
        "flash": session.take_flash() if session else [],
        "is_admin": bool(session and session.principal.has_role(Role.ADMIN)),
    }
    return templates.TemplateResponse(
        request, name, context, status_code=status_code, headers={"Content-Security-Policy": CSP}
    )


def _redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=status.HTTP_303_SEE_OTHER)


def _check_csrf(session: PageSession, token: str | None) -> None:
    if not csrf_ok(session, token):
        raise PageError(
            status.HTTP_403_FORBIDDEN, "Formuläret har gått ut; ladda om sidan och försök igen."
        )


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
    response = _redirect(f"{PREFIX}/")
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
    _check_csrf(session, csrf)
    session_store(request).end(session.token)
    response = _redirect(f"{PREFIX}/login")
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
    return response


# --- the pages ---


@router.get("/")
def home(request: Request, session: SessionDep) -> Response:
    units = sorted(session.principal.units)
    if len(units) == 1 and not session.principal.has_role(Role.ADMIN):
        return _redirect(f"{PREFIX}/units/{units[0]}")
    return render(request, "home.html", session, units=units, hsa_pattern=HSA_ID_PATTERN[1:-1])


@router.get("/units")
def choose_unit(session: SessionDep, hsa_id: str = "") -> Response:
    unit = hsa_id.strip()
    if not re.fullmatch(HSA_ID_PATTERN, unit):
        session.flash.append("Ogiltigt HSA-id: ange t.ex. SE2321000057-E00000000001.")
        return _redirect(f"{PREFIX}/")
    return _redirect(f"{PREFIX}/units/{unit}")


@router.get("/units/{hsa_id}")
def worklist_page(
    request: Request,
    hsa_id: UnitPath,
    session: SessionDep,
    access: PageAccessDep,
    clinic: ClinicDep,
) -> HTMLResponse:
    with as_page():
        access.ensure_unit(hsa_id)
        as_of = clinic.today()
        rows = clinic.worklist(hsa_id, as_of)
        unconfirmed = clinic.unconfirmed_runs(hsa_id)
    access.record([row.person for row in rows], resource="worklist", unit=hsa_id)
    surveys = request.app.state.survey.codes.status_by_patient(r.patient_id for r in rows)
    return render(
        request,
        "worklist.html",
        session,
        unit=hsa_id,
        rows=rows,
        as_of=as_of,
        unconfirmed=unconfirmed,
        surveys=surveys,
    )


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
    surveys = request.app.state.survey.codes.status(p.id for p in view.plans)  # routes/survey.py
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
    _check_csrf(session, csrf)
    access = PatientAccess(audit_trail(request, session.principal), session.purpose)
    target = back if _safe_back(back) else f"{PREFIX}/"
    try:
        with fhir_errors():
            done = await run_in_threadpool(complete_task, clinic, access, task_id)
    except HTTPException as error:
        session.flash.append(f"Uppgiften kunde inte markeras som klar: {error.detail}")
        return _redirect(target)
    session.flash.append(
        f"Klart: {done.event_code.value} registrerad {done.event_date.isoformat()}; "
        "uppgiften är avslutad."
    )
    return _redirect(target)


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
        chart = "data:image/svg+xml;base64," + base64.b64encode(trend_svg(trend)).decode()
    rows = [
        {
            "title": title(r.indicator),
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
            {"code": code, "label": short_title(code), "share": code in SHARES}
            for code in (*SHARES, *COUNTS)
        ],
    )


def _met(value: Decimal | None, target: Decimal | None) -> bool | None:
    return None if value is None or target is None else value >= target


# --- wiring ---


def install(app: FastAPI) -> None:
    """The pages, their static files at /static, their sessions and error pages."""
    app.state.page_sessions = SessionStore.for_settings(app.state.settings)
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return _redirect(f"{PREFIX}/")

    async def login_required(request: Request, _error: Exception) -> Response:
        return _redirect(f"{PREFIX}/login")

    async def page_error(request: Request, error: Exception) -> Response:
        assert isinstance(error, PageError)  # noqa: S101  (registered for PageError only)
        session = session_store(request).get(request.cookies.get(COOKIE))
        return render(request, "error.html", session, error.status_code, message=error.message)

    app.add_exception_handler(LoginRequired, login_required)
    app.add_exception_handler(PageError, page_error)
