"""The pages wired into the app: their sessions, their static files at /static, `/` to the
start page, and the error pages (login required, PageError)."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from adapter.api.sessions import COOKIE, SessionStore
from adapter.api.ui.render import PREFIX, STATIC_DIR, redirect, render
from adapter.api.ui.session import LoginRequired, PageError, session_store


def install(app: FastAPI) -> None:
    app.state.page_sessions = SessionStore.for_settings(app.state.settings)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return redirect(f"{PREFIX}/")

    async def login_required(request: Request, _error: Exception) -> Response:
        return redirect(f"{PREFIX}/login")

    async def page_error(request: Request, error: Exception) -> Response:
        assert isinstance(error, PageError)  # noqa: S101  (registered for PageError only)
        session = session_store(request).get(request.cookies.get(COOKIE))
        return render(request, "error.html", session, error.status_code, message=error.message)

    app.add_exception_handler(LoginRequired, login_required)
    app.add_exception_handler(PageError, page_error)
