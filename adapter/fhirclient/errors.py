"""What can go wrong talking to a FHIR server, in two words: temporary (retry may help) or fatal.

Every error carries the server's own reason (OperationOutcome or OAuth2 error fields), masked: a
server may echo submitted content, personnummer included, in its diagnostics.
"""

from __future__ import annotations

from typing import Any

import requests

from adapter.logs import mask_personnummer, mask_value

# Temporary by nature. 500 is among them because servers hide temporary faults (a deadlock, a
# restarting node, a database failover) behind it; the retry budget bounds the cost when it is real.
RETRYABLE_STATUSES = frozenset({408, 429, 500, 502, 503, 504})

# How many issues of an OperationOutcome make it into the message.
_MAX_ISSUES = 5
_MAX_TEXT = 300


class FhirError(Exception):
    """A failed request: `status` (None without an HTTP answer), `outcome`, human `message`."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        outcome: dict[str, Any] | None = None,
        request: str | None = None,
    ) -> None:
        self.message = mask_personnummer(message)
        self.status = status
        self.outcome: dict[str, Any] | None = mask_value(outcome)
        self.request = request  # "METHOD path", no query: for the reader, never personal data
        super().__init__(self.message)

    def __str__(self) -> str:
        context = ", ".join(
            part for part in (f"HTTP {self.status}" if self.status else None, self.request) if part
        )
        return f"{self.message} ({context})" if context else self.message


class TemporaryError(FhirError):
    """Retry may help (busy or unreachable server); raised once the retry budget is spent."""

    def __init__(self, message: str, *, unprocessed: bool = False, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        # True when the server surely did not act on it, so even a plain POST may be resent.
        self.unprocessed = unprocessed
        self.retry_after: float | None = None  # seconds the server asked us to wait
        self.attempts = 1


class FatalError(FhirError):
    """Retrying the same request will not help."""


class NotFound(FatalError):
    """404/410: no such resource (or it was deleted)."""


class Conflict(FatalError):
    """409/412: concurrent change, stale If-Match, or several matches for a conditional write."""


class Rejected(FatalError):
    """400/422: the server refuses the content; `message` says why."""


class AuthError(FatalError):
    """401/403, or the token service said no."""


def _fatal_class(status: int) -> type[FatalError]:
    if status in (404, 410):
        return NotFound
    if status in (409, 412):
        return Conflict
    if status in (400, 422):
        return Rejected
    if status in (401, 403):
        return AuthError
    return FatalError


def outcome_message(outcome: dict[str, Any]) -> str:
    """The human reason in an OperationOutcome: each issue's details.text, else its diagnostics.

    Errors first; informational issues only when there is nothing worse.
    """
    issues = [issue for issue in outcome.get("issue", []) if isinstance(issue, dict)]
    serious = [i for i in issues if i.get("severity") in ("fatal", "error")] or issues
    texts: list[str] = []
    for issue in serious[:_MAX_ISSUES]:
        text = (issue.get("details") or {}).get("text") or issue.get("diagnostics")
        if text and text not in texts:
            texts.append(str(text))
    return "; ".join(texts)


def body_message(body: Any) -> str:
    """The reason in an error body: OperationOutcome, or the OAuth2 error fields."""
    if not isinstance(body, dict):
        return ""
    if body.get("resourceType") == "OperationOutcome":
        return outcome_message(body)
    return str(body.get("error_description") or body.get("error") or "")


def _json_or_none(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def error_for_status(
    status: int, body: Any, *, request: str | None = None, fallback: str = ""
) -> FhirError:
    """The error of our taxonomy for an HTTP status and its (parsed) body."""
    outcome = (
        body if isinstance(body, dict) and body.get("resourceType") == "OperationOutcome" else None
    )
    message = body_message(body) or fallback or f"HTTP {status}"
    if status in RETRYABLE_STATUSES:
        # 429 and 503 mean the server turned the request away before doing anything with it.
        return TemporaryError(
            message,
            status=status,
            outcome=outcome,
            request=request,
            unprocessed=status in (429, 503),
        )
    return _fatal_class(status)(message, status=status, outcome=outcome, request=request)


def error_for_response(response: requests.Response, *, request: str | None = None) -> FhirError:
    """The error for a failed HTTP response, with the server's reason as the message."""
    body = _json_or_none(response)
    text = "" if body is not None else response.text.strip()[:_MAX_TEXT]
    return error_for_status(
        response.status_code,
        body,
        request=request,
        fallback=text or f"HTTP {response.status_code} {response.reason or ''}".strip(),
    )


def entry_error(entry: dict[str, Any]) -> FhirError | None:
    """The error of one batch-response entry (`response.status` like "422 Unprocessable Entity")."""
    response = entry.get("response") or {}
    status_text = str(response.get("status", ""))
    code = status_text.split(" ", 1)[0]
    if not code.isdigit() or int(code) < 400:
        return None
    return error_for_status(int(code), response.get("outcome"), fallback=status_text)


def is_error_outcome(outcome: dict[str, Any]) -> bool:
    """True if an OperationOutcome (e.g. from $validate) holds an error or fatal issue."""
    return any(
        issue.get("severity") in ("fatal", "error")
        for issue in outcome.get("issue", [])
        if isinstance(issue, dict)
    )
