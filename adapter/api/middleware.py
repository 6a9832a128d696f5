"""ASGI middleware: request id + access log + last-resort error answer, and the body size limit.

Pure ASGI (not BaseHTTPMiddleware) so streaming bodies pass through untouched.
"""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

from fastapi import status
from starlette.datastructures import Headers, MutableHeaders
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from adapter import personnummer
from adapter.logs import get_logger

REQUEST_ID_HEADER = "X-Request-ID"
_SAFE_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{8,64}")

_log = get_logger("adapter.api")


def safe_request_id(incoming: str) -> str:
    """A proxy's request id when it is 8-64 of [A-Za-z0-9._-] and holds no personnummer (it is
    stored in the audit log and echoed in logs and answers); else a new one."""
    if _SAFE_REQUEST_ID.fullmatch(incoming) and not personnummer.shaped(incoming):
        return incoming
    return uuid.uuid4().hex


def internal_error_body(request_id: str) -> dict[str, str]:
    return {
        "detail": f"Ett internt fel uppstod. Ange referens {request_id} om du kontaktar supporten.",
        "request_id": request_id,
    }


class RequestContext:
    """Gives each request an id (kept from a proxy's X-Request-ID when it looks safe), logs one
    access line (path without query string, masked), marks answers `Cache-Control: no-store`,
    and turns any exception that got this far into a generic 500 with the id, its stack trace
    going to our own (masked) log only - never to the client, nor to the server's raw log."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = safe_request_id(Headers(scope=scope).get(REQUEST_ID_HEADER, ""))
        state: dict[str, Any] = scope.setdefault("state", {})
        state["request_id"] = request_id
        started = time.perf_counter()
        response_status: int | None = None

        async def send_with_headers(message: Message) -> None:
            nonlocal response_status
            if message["type"] == "http.response.start":
                response_status = message["status"]
                headers = MutableHeaders(scope=message)
                headers[REQUEST_ID_HEADER] = request_id
                headers.setdefault("Cache-Control", "no-store")
                headers.setdefault("X-Content-Type-Options", "nosniff")
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        except Exception:
            _log.exception("unhandled error", request_id=request_id, path=scope.get("path"))
            if response_status is None:
                response = JSONResponse(
                    internal_error_body(request_id),
                    status_code=status.HTTP_500_INTERNAL_SERVER_ERROR,
                )
                await response(scope, receive, send_with_headers)
        finally:
            principal = state.get("principal")
            _log.info(
                "request",
                method=scope.get("method"),
                path=scope.get("path"),
                status=response_status,
                ms=round((time.perf_counter() - started) * 1000, 1),
                request_id=request_id,
                principal=getattr(principal, "name", None),
            )


class BodyTooLarge(HTTPException):
    def __init__(self, max_bytes: int) -> None:
        super().__init__(
            status.HTTP_413_CONTENT_TOO_LARGE,
            detail=f"Begäran är för stor: högst {max_bytes} byte tillåts.",
        )


class BodySizeLimit:
    """413 for a body over `max_bytes`: at once when Content-Length says so, else (chunked
    bodies) as soon as the bytes read pass the limit. Starlette's own limit answers in English
    plain text; ours answers like every other error (Swedish JSON)."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(scope, receive, send)
            return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)  # FastAPI lets HTTPExceptions through
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge:
            if started:
                raise
            await self._refuse(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        error = BodyTooLarge(self.max_bytes)
        response = JSONResponse({"detail": error.detail}, status_code=error.status_code)
        await response(scope, receive, send)
