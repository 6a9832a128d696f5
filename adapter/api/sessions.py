"""Logins of the worklist pages: server-side sessions behind an HttpOnly SameSite=Strict cookie.

The vårdsamordnare logs in on /ui/login with an API key (`sip-fhir api-key --role
vardsamordnare --unit <HSA-id>`) and chooses the purpose of the session (vård, uppföljning or
kvalitet), which every audit entry of the session carries. The key is checked once, by the same
Authenticator as the API's `X-API-Key`, and never stored: the cookie holds a random token, the
session (principal, purpose, CSRF token) stays in this process's memory. So:

- a session ends after IDLE_SECONDS without a request, after MAX_SECONDS in all, at logout,
  and when the service restarts (log in again);
- with several API processes the pages need sticky sessions (or one process);
- the cookie is `Secure` when the request came over HTTPS (behind a TLS-terminating proxy set
  `--proxy-headers` so uvicorn sees it);
- forms carry the session's CSRF token as well as relying on SameSite=Strict;
- the login form itself (no session yet, so no token) refuses a post whose `Origin` (or, without
  one, `Referer`) is another site's: login CSRF would otherwise log a user in as the attacker.
  The service's own origin is the request's (scheme and Host); behind a proxy that rewrites
  Host, list the public one in `SIP_FHIR_UI_ORIGINS`. A post with neither header is no
  browser's (browsers send Origin on every form POST, `null` when the page hides it).

OIDC login (authorisation code flow) for the pages is out of scope: the API takes OIDC bearer
tokens; a region with an identity provider can put the pages behind its proxy later.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from starlette.requests import Request

from adapter.api.principal import Principal
from adapter.audit import Purpose

COOKIE = "sip_fhir_session"
IDLE_SECONDS = 30 * 60
MAX_SECONDS = 10 * 3600


@dataclass(slots=True)
class PageSession:
    token: str
    principal: Principal
    purpose: Purpose
    csrf: str
    started: float
    seen: float
    flash: list[str] = field(default_factory=list)  # messages for the next page shown

    def take_flash(self) -> list[str]:
        messages, self.flash = self.flash, []
        return messages


class SessionStore:
    """Sessions by token; thread-safe (routes run in a thread pool)."""

    def __init__(
        self,
        *,
        idle_seconds: float = IDLE_SECONDS,
        max_seconds: float = MAX_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.idle_seconds = idle_seconds
        self.max_seconds = max_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._sessions: dict[str, PageSession] = {}

    def start(self, principal: Principal, purpose: Purpose) -> PageSession:
        now = self._clock()
        session = PageSession(
            token=secrets.token_urlsafe(32),
            principal=principal,
            purpose=purpose,
            csrf=secrets.token_urlsafe(32),
            started=now,
            seen=now,
        )
        with self._lock:
            self._expire(now)
            self._sessions[session.token] = session
        return session

    def get(self, token: str | None) -> PageSession | None:
        """The live session of `token` (its idle time restarts), or None."""
        if not token:
            return None
        now = self._clock()
        with self._lock:
            self._expire(now)
            session = self._sessions.get(token)
            if session is not None:
                session.seen = now
            return session

    def end(self, token: str | None) -> None:
        with self._lock:
            self._sessions.pop(token or "", None)

    def __len__(self) -> int:
        with self._lock:
            return len(self._sessions)

    def _expire(self, now: float) -> None:
        dead = [
            token
            for token, s in self._sessions.items()
            if now - s.seen > self.idle_seconds or now - s.started > self.max_seconds
        ]
        for token in dead:
            del self._sessions[token]


def csrf_ok(session: PageSession, given: str | None) -> bool:
    return bool(given) and secrets.compare_digest(session.csrf.encode(), (given or "").encode())


def _origin(url: str) -> str:
    parts = urlsplit(url.strip())
    return f"{parts.scheme}://{parts.netloc}".lower() if parts.scheme and parts.netloc else ""


def same_origin(request: Request, trusted: Iterable[str] = ()) -> bool:
    """Whether a form post came from the service's own pages (see the module's docstring)."""
    allowed = {_origin(str(request.url)), *(_origin(o) for o in trusted)} - {""}
    origin = request.headers.get("origin")
    if origin is not None:
        return _origin(origin) in allowed  # "null" (a hidden origin) is never allowed
    referer = request.headers.get("referer")
    return referer is None or _origin(referer) in allowed
