"""A page's caller: the session cookie (adapter/api/sessions.py), its CSRF token, the audit of
what a page shows (with the session's purpose, as the JSON routes write it), and errors as
error pages instead of JSON."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status

from adapter.api.access import PatientAccess, audit_trail
from adapter.api.deps import fhir_errors
from adapter.api.sessions import COOKIE, PageSession, SessionStore, csrf_ok


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


def check_csrf(session: PageSession, token: str | None) -> None:
    if not csrf_ok(session, token):
        raise PageError(
            status.HTTP_403_FORBIDDEN, "Formuläret har gått ut; ladda om sidan och försök igen."
        )
