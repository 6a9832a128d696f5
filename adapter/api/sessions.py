"""Logins of the worklist pages: server-side sessions behind an HttpOnly SameSite=Strict cookie.

The vårdsamordnare logs in on /ui/login with an API key (`sip-fhir api-key --role
vardsamordnare --unit <HSA-id>`) and chooses the purpose of the session (vård, uppföljning or
kvalitet), which every audit entry of the session carries. The key is checked once, by the same
Authenticator as the API's `X-API-Key`, and never stored: the cookie holds a random token, the
session (principal, purpose, CSRF token, messages for the next page) is stored where the adapter
keeps its state (adapter/database.py) under a SHA-256 of the token, never the token itself. So:

- a session ends after IDLE_SECONDS without a request, after MAX_SECONDS in all, and at logout;
  it survives a restart of the service;
- with SIP_FHIR_DATABASE_URL every API process sees every session: a login on one is valid on
  all of them, a logout ends it on all (no sticky sessions needed); without it they live in
  <data_dir>/sessions.sqlite (the processes of one machine);
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

import hashlib
import json
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from sqlalchemy import (
    Column,
    ColumnElement,
    Engine,
    Float,
    Index,
    MetaData,
    Table,
    Text,
    delete,
    func,
    insert,
    or_,
    select,
)
from sqlalchemy import update as sql_update
from starlette.requests import Request

from adapter.api.principal import Principal, Role
from adapter.audit import Purpose
from adapter.database import open_tables, state_url, url_of
from adapter.settings import Settings

COOKIE = "sip_fhir_session"
IDLE_SECONDS = 30 * 60
MAX_SECONDS = 10 * 3600
SEEN_STEPS = 60
SQLITE_FILE = "sessions.sqlite"
_METADATA = MetaData()
_TABLE = Table(
    "page_session",
    _METADATA,
    Column("token_hash", Text, primary_key=True),  # SHA-256 of the cookie's token
    Column("principal", Text, nullable=False),  # JSON
    Column("purpose", Text, nullable=False),
    Column("csrf", Text, nullable=False),
    Column("started", Float, nullable=False),  # epoch seconds: shared by processes and hosts
    Column("seen", Float, nullable=False),
    Column("flash", Text, nullable=False, server_default="[]"),  # JSON list of messages
    Index("page_session_seen", "seen"),
)


class Flash:
    """A session's messages for the next page shown, kept in the store: the next page may be
    served by another process."""

    def __init__(self, engine: Engine, token_hash: str, messages: list[str]) -> None:
        self._engine = engine
        self._token_hash = token_hash
        self._messages = messages

    def append(self, message: str) -> None:
        self._messages.append(message)
        self._save()

    def take(self) -> list[str]:
        messages, self._messages = self._messages, []
        if messages:
            self._save()
        return messages

    def _save(self) -> None:
        with self._engine.begin() as db:
            db.execute(
                sql_update(_TABLE)
                .where(_TABLE.c.token_hash == self._token_hash)
                .values(flash=json.dumps(self._messages))
            )


@dataclass(slots=True)
class PageSession:
    token: str
    principal: Principal
    purpose: Purpose
    csrf: str
    started: float
    seen: float
    flash: Flash = field(compare=False, repr=False)

    def take_flash(self) -> list[str]:
        return self.flash.take()


class SessionStore:
    """Sessions by token in a database table: a SQLite file (a Path) or a database URL (a str).
    Thread-safe (routes run in a thread pool) and shared by every process on that database."""

    def __init__(
        self,
        target: Path | str,
        *,
        idle_seconds: float = IDLE_SECONDS,
        max_seconds: float = MAX_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.url = url_of(target)
        self.idle_seconds = idle_seconds
        self.max_seconds = max_seconds
        self._clock = clock
        self._engine = open_tables(self.url, _METADATA)

    @classmethod
    def for_settings(cls, settings: Settings) -> SessionStore:
        return cls(state_url(settings, SQLITE_FILE))

    def start(self, principal: Principal, purpose: Purpose) -> PageSession:
        now = self._clock()
        token = secrets.token_urlsafe(32)
        csrf = secrets.token_urlsafe(32)
        with self._engine.begin() as db:
            db.execute(delete(_TABLE).where(self._expired(now)))
            db.execute(
                insert(_TABLE).values(
                    token_hash=_hash(token),
                    principal=_principal_json(principal),
                    purpose=purpose.value,
                    csrf=csrf,
                    started=now,
                    seen=now,
                    flash="[]",
                )
            )
        return PageSession(
            token, principal, purpose, csrf, now, now, Flash(self._engine, _hash(token), [])
        )

    def get(self, token: str | None) -> PageSession | None:
        """The live session of `token` (its idle time restarts), or None."""
        if not token:
            return None
        now = self._clock()
        c = _TABLE.c
        where = (c.token_hash == _hash(token), ~self._expired(now))
        with self._engine.connect() as db:
            row = db.execute(
                select(c.principal, c.purpose, c.csrf, c.started, c.seen, c.flash).where(*where)
            ).first()
        if row is None:
            return None
        # A read, not a write, per page: `seen` moves once per SEEN_STEPS-th of the idle time
        # (30 s of 30 min), so fifty users' pages are not fifty commits a second.
        if now - row.seen >= self.idle_seconds / SEEN_STEPS:
            with self._engine.begin() as db:
                db.execute(sql_update(_TABLE).where(*where).values(seen=now))
        flash = Flash(self._engine, _hash(token), list(json.loads(row.flash)))
        return PageSession(
            token,
            _principal(row.principal),
            Purpose(row.purpose),
            row.csrf,
            row.started,
            now,
            flash,
        )

    def end(self, token: str | None) -> None:
        with self._engine.begin() as db:
            db.execute(delete(_TABLE).where(_TABLE.c.token_hash == _hash(token or "")))

    def __len__(self) -> int:
        """Live sessions."""
        query = select(func.count()).where(~self._expired(self._clock()))
        with self._engine.connect() as db:
            return int(db.execute(query.select_from(_TABLE)).scalar_one())

    def _expired(self, now: float) -> ColumnElement[bool]:
        c = _TABLE.c
        return or_(c.seen < now - self.idle_seconds, c.started < now - self.max_seconds)


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _principal_json(principal: Principal) -> str:
    return json.dumps(
        {
            "name": principal.name,
            "subject": principal.subject,
            "roles": sorted(principal.roles),
            "units": sorted(principal.units),
            "method": principal.method,
        }
    )


def _principal(stored: str) -> Principal:
    data = json.loads(stored)
    return Principal(
        name=data["name"],
        subject=data["subject"],
        roles=frozenset(Role(r) for r in data["roles"]),
        units=frozenset(data["units"]),
        method=data["method"],
    )


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
