"""HTTP-level facts: Retry-After, origins, and what a failed connection means for a retry."""

from __future__ import annotations

import email.utils
import http.client
from datetime import UTC, datetime
from urllib.parse import urlsplit

import requests
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError

from adapter.fhirclient.errors import FatalError, FhirError, TemporaryError

_DEFAULT_PORTS = {"http": 80, "https": 443}


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP-date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    return scheme, (parts.hostname or "").lower(), parts.port or _DEFAULT_PORTS.get(scheme)


def _causes(exc: BaseException) -> list[BaseException]:
    """The exception and what lies under it: urllib3 wraps the real cause a few levels deep."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain:
        chain.append(current)
        reason = getattr(current, "reason", None)
        inner = next((arg for arg in current.args if isinstance(arg, BaseException)), None)
        current = (
            reason
            if isinstance(reason, BaseException)
            else inner or current.__cause__ or current.__context__
        )
    return chain


def _protocol_error(chain: list[BaseException]) -> http.client.HTTPException | None:
    """An answer that breaks HTTP (e.g. "got more than 100 headers"): the same request gets the
    same answer again, so it is not a network fault. A connection closed before or during the
    answer (RemoteDisconnected, IncompleteRead) is one, and stays retryable."""
    for cause in chain:
        if isinstance(cause, http.client.HTTPException) and not isinstance(
            cause, ConnectionError | http.client.IncompleteRead
        ):
            return cause
    return None


def transport_error(exc: requests.RequestException, request: str) -> FhirError:
    chain = _causes(exc)
    reason = str(chain[-1]) or type(chain[-1]).__name__  # e.g. "[Errno 111] Connection refused"
    protocol = _protocol_error(chain)
    if protocol is not None:
        return FatalError(
            "Servern svarade, men svaret bryter mot HTTP-protokollet "
            f"({str(protocol) or type(protocol).__name__}); det är inget nätverksfel och ett nytt "
            "försök ger samma svar. Kontrollera FHIR-serverns inställningar och version, "
            "eller en proxy emellan",
            request=request,
        )
    if isinstance(exc, requests.exceptions.SSLError):
        return FatalError(f"TLS-fel mot servern: {reason}", request=request)
    if isinstance(exc, requests.exceptions.InvalidURL | requests.exceptions.InvalidSchema):
        return FatalError(f"Ogiltig adress: {reason}", request=request)
    if isinstance(exc, requests.ConnectionError | requests.Timeout):
        # Refused, or timed out while connecting: the request never reached the server.
        never_sent = any(isinstance(e, NewConnectionError | ConnectTimeoutError) for e in chain)
        what = (
            "Servern svarade inte i tid"
            if isinstance(exc, requests.ReadTimeout)
            else "Ingen kontakt med servern"
        )
        return TemporaryError(f"{what}: {reason}", request=request, unprocessed=never_sent)
    if isinstance(exc, requests.exceptions.ChunkedEncodingError):
        return TemporaryError(f"Svaret bröts: {reason}", request=request)
    return FatalError(f"Anropet misslyckades: {reason}", request=request)
