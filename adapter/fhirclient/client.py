"""The FHIR R4 client: the only code in sip-fhir that talks HTTP to a FHIR server.

One pooled `requests.Session` per client (safe to share between a few threads), (connect, read)
timeouts, retries with tenacity, the two-word error taxonomy of `errors.py`, and callbacks so
callers count requests, retries and errors without the transport knowing about metrics.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from types import TracebackType
from typing import Any
from urllib.parse import urlencode, urljoin, urlsplit

import requests
from requests.adapters import HTTPAdapter
from tenacity import RetryCallState, Retrying, retry_if_exception, wait_exponential_jitter

from adapter import __version__
from adapter.canonical import PERSONNUMMER, SAMORDNINGSNUMMER
from adapter.fhirclient.auth import FhirAuth, apply_tls, build_auth, tls_arguments
from adapter.fhirclient.errors import (
    FatalError,
    FhirError,
    TemporaryError,
    entry_error,
    error_for_response,
)
from adapter.fhirclient.results import (
    FHIR_JSON,
    Resource,
    WriteResult,
    as_dict,
    encode,
    json_body,
    next_link,
)
from adapter.fhirclient.transport import origin, parse_retry_after, transport_error
from adapter.logs import get_logger
from adapter.sandbox import decorate, decorate_bundle
from adapter.settings import EndpointSettings

SUPPORTED_FHIR_VERSION = "4.0."  # R4: 4.0.0 and 4.0.1 on the wire
# GET entries per batch Bundle. A server answers a batch's entries in parallel, each on a thread
# holding a database connection (HAPI: up to 100 threads beside a HikariCP pool of 10), so 100
# entries at once left other requests waiting out the pool's timeout (tests/benchmarks/README.md).
BATCH_READS = 20

SearchParams = Mapping[str, str | Sequence[str]] | Sequence[tuple[str, str]]

OnRequest = Callable[[str, str, int | None, float], None]  # method, path, status, seconds
OnRetry = Callable[[int, float, str], None]  # attempt that failed, wait in seconds, reason
OnError = Callable[[FhirError], None]  # once per operation that gives up

_TYPE = re.compile(r"[A-Z][A-Za-z]{1,63}")
_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")
_OPERATION = re.compile(r"\$[a-z][a-z-]{0,63}")


def _check_name(pattern: re.Pattern[str], value: str, what: str) -> str:
    if not pattern.fullmatch(value):
        raise ValueError(f"Ogiltig {what}: {value!r}")
    return value


def _type_of(body: Mapping[str, Any]) -> str:
    return _check_name(_TYPE, str(body.get("resourceType", "")), "resurstyp")


def _carries_personnummer(values: Sequence[str]) -> bool:
    return any(system in value for value in values for system in (PERSONNUMMER, SAMORDNINGSNUMMER))


def _param_values(params: SearchParams | None) -> list[str]:
    if params is None:
        return []
    pairs = params.items() if isinstance(params, Mapping) else params
    values: list[str] = []
    for key, value in pairs:
        values.append(key)
        values.extend([value] if isinstance(value, str) else value)
    return values


class FhirClient:
    """A FHIR R4 server at `endpoint.base_url`.

    `sleep` and `clock` (monotonic seconds) are injectable so tests of the retry schedule do not
    wait; `auth` replaces the credentials built from the settings.
    """

    def __init__(
        self,
        endpoint: EndpointSettings,
        *,
        on_request: OnRequest | None = None,
        on_retry: OnRetry | None = None,
        on_error: OnError | None = None,
        auth: FhirAuth | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        pool_size: int = 8,
    ) -> None:
        self.endpoint = endpoint
        self.base_url: str = endpoint.base_url.rstrip("/")
        self._on_request = on_request
        self._on_retry = on_retry
        self._on_error = on_error
        self._sleep = sleep
        self._clock = clock
        self._timeout = (endpoint.connect_timeout, endpoint.read_timeout)
        self._backoff = wait_exponential_jitter(initial=1, max=endpoint.max_retry_after, jitter=1)
        self._log = get_logger("adapter.fhirclient").bind(server=self.base_url)
        # Sandbox mode: what every written resource gets (adapter/sandbox.py).
        self._sandbox = {
            "run_tag": endpoint.run_tag,
            "profile_version": endpoint.profile_version,
        }

        session = requests.Session()
        # urllib3 must not retry on its own: tenacity owns the schedule and the budget.
        pool = HTTPAdapter(pool_connections=2, pool_maxsize=pool_size, max_retries=0)
        session.mount("http://", pool)
        session.mount("https://", pool)
        session.headers.update(
            {
                "Accept": FHIR_JSON,
                "User-Agent": f"sip-fhir/{__version__}",
                # Every read fresh: HAPI answers an identical search within 60 s (by default) from
                # its cache, the searches inside a batch Bundle too, and would miss our own writes.
                "Cache-Control": "no-cache",
            }
        )
        apply_tls(session, endpoint)
        self.auth = auth if auth is not None else build_auth(endpoint, clock=clock)
        session.auth = self.auth
        self.session = session

    # --- lifecycle ---

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> FhirClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # --- operations ---

    def capabilities(self) -> dict[str, Any]:
        """The server's CapabilityStatement; FatalError unless it speaks FHIR R4 (4.0.x)."""
        statement = self._json("GET", self._url("metadata"))
        version = str(statement.get("fhirVersion", ""))
        if not version.startswith(SUPPORTED_FHIR_VERSION):
            raise FatalError(
                f"Servern talar FHIR {version or 'okänd version'}; sip-fhir kräver R4 (4.0.x)",
                request="GET metadata",
            )
        return statement

    def read(self, resource_type: str, resource_id: str) -> dict[str, Any]:
        return self._json("GET", self._resource_url(resource_type, resource_id))

    def vread(self, resource_type: str, resource_id: str, version_id: str) -> dict[str, Any]:
        version = _check_name(_ID, version_id, "version")
        return self._json(
            "GET", f"{self._resource_url(resource_type, resource_id)}/_history/{version}"
        )

    def search(
        self, resource_type: str, params: SearchParams | None = None, *, post: bool = False
    ) -> Iterator[dict[str, Any]]:
        """The matching resources across all pages (included resources left out)."""
        for bundle in self.search_bundles(resource_type, params, post=post):
            for entry in bundle.get("entry", []):
                if (entry.get("search") or {}).get("mode", "match") == "match":
                    yield entry["resource"]

    def search_bundles(
        self, resource_type: str, params: SearchParams | None = None, *, post: bool = False
    ) -> Iterator[dict[str, Any]]:
        """Each page Bundle of a search, following `next` links (for _include/_revinclude).

        `post=True` sends `POST Type/_search` with a form body, which keeps values such as a
        personnummer out of request lines and access logs; a GET with one is refused.
        """
        _check_name(_TYPE, resource_type, "resurstyp")
        if post:
            bundle = self._json("POST", self._url(resource_type, "_search"), data=params or {})
        else:
            self._refuse_personnummer_in_url(_param_values(params))
            bundle = self._json("GET", self._url(resource_type), params=params)
        while True:
            yield bundle
            link = next_link(bundle)
            if not link:
                return
            bundle = self._json("GET", self._same_origin(link))

    def create(self, resource: Resource, *, if_none_exist: str | None = None) -> WriteResult:
        """POST Type; with `if_none_exist` ("identifier=sys|val") a conditional create."""
        body = as_dict(resource)
        headers = {}
        if if_none_exist:
            headers["If-None-Exist"] = if_none_exist.lstrip("?")
        # A plain create is not idempotent: it is only resent when the server surely did nothing.
        return self._write(
            "POST", self._url(_type_of(body)), body, headers, idempotent=bool(if_none_exist)
        )

    def update(self, resource: Resource, *, if_match: str | None = None) -> WriteResult:
        """PUT Type/id; `if_match` ("3" or 'W/"3"') makes a stale version a Conflict."""
        body = as_dict(resource)
        url = self._resource_url(_type_of(body), str(body.get("id", "")))
        headers = {}
        if if_match:
            headers["If-Match"] = if_match if if_match.startswith("W/") else f'W/"{if_match}"'
        return self._write("PUT", url, body, headers)

    def conditional_update(self, resource: Resource, criteria: str) -> WriteResult:
        """PUT Type?criteria: create or update the one match; several matches are a Conflict.

        The criteria travel in the URL: a personnummer belongs in a transaction entry instead.
        """
        body = as_dict(resource)
        criteria = criteria.lstrip("?")
        self._refuse_personnummer_in_url([criteria])
        return self._write("PUT", f"{self._url(_type_of(body))}?{criteria}", body, {})

    def delete(self, resource_type: str, resource_id: str) -> None:
        self._request("DELETE", self._resource_url(resource_type, resource_id))

    def operation(
        self, resource_type: str, resource_id: str, name: str, parameters: Resource
    ) -> dict[str, Any]:
        """POST Type/id/$name with a Parameters body (e.g. `$meta-delete`)."""
        operation = _check_name(_OPERATION, name, "operation")
        url = f"{self._resource_url(resource_type, resource_id)}/{operation}"
        return json_body(self._send_json("POST", url, as_dict(parameters)))

    def transaction(self, bundle: Resource) -> dict[str, Any]:
        """POST a transaction Bundle; all or nothing. Returns the response Bundle.

        Retried like any other request: the server applies it atomically, and with conditional
        entries (ifNoneExist, PUT Type?identifier=...) a resend after a lost answer changes nothing.
        """
        return self._post_bundle(bundle, "transaction")

    def batch(self, bundle: Resource) -> dict[str, Any]:
        """POST a batch Bundle; each entry succeeds or fails alone (see errors.entry_error)."""
        return self._post_bundle(bundle, "batch")

    def batch_reads(self, urls: Sequence[str]) -> list[dict[str, Any]]:
        """GET each of `urls` (`Type?query`, relative to the base) in batch Bundles of
        BATCH_READS: the resource each answered (a searchset Bundle for a search), in order. An
        entry's error is raised (errors.entry_error)."""
        found: list[dict[str, Any]] = []
        for start in range(0, len(urls), BATCH_READS):
            part = urls[start : start + BATCH_READS]
            entries = [{"request": {"method": "GET", "url": url}} for url in part]
            answer = self.batch({"resourceType": "Bundle", "type": "batch", "entry": entries})
            for _, entry in zip(part, answer.get("entry", []), strict=True):
                error = entry_error(entry)
                if error is not None:
                    raise error
                found.append(entry.get("resource") or {})
        return found

    def validate(self, resource: Resource, profile: str | None = None) -> dict[str, Any]:
        """POST Type/$validate (against `profile` if given); returns the OperationOutcome.

        A validation failure is a result, not an error: HAPI answers 200 or 412 with the outcome.
        """
        body = as_dict(resource)
        url = self._url(_type_of(body), "$validate")
        if profile:
            url = f"{url}?{urlencode({'profile': profile})}"
        return json_body(self._send_json("POST", url, body, accept={412}))

    # --- plumbing ---

    def _url(self, *parts: str) -> str:
        return "/".join((self.base_url, *parts))

    def _resource_url(self, resource_type: str, resource_id: str) -> str:
        return self._url(
            _check_name(_TYPE, resource_type, "resurstyp"), _check_name(_ID, resource_id, "id")
        )

    def _same_origin(self, link: str) -> str:
        """A link from the server, refused unless it points back at it: it gets our credentials."""
        url = urljoin(self.base_url + "/", link)
        if origin(url) != origin(self.base_url):
            scheme, host, port = origin(url)
            raise FatalError(
                f"Servern hänvisar nästa sida till en annan server ({scheme}://{host}:{port}); "
                "den följs inte eftersom inloggningsuppgifterna då skulle skickas dit",
                request="GET next",
            )
        return url

    @staticmethod
    def _refuse_personnummer_in_url(values: Sequence[str]) -> None:
        if _carries_personnummer(values):
            raise ValueError(
                "Personnummer får inte stå i en URL: sök med post=True (POST _search) "
                "eller skriv via en transaktion"
            )

    def _post_bundle(self, bundle: Resource, kind: str) -> dict[str, Any]:
        body = as_dict(bundle)
        if body.get("resourceType") != "Bundle" or body.setdefault("type", kind) != kind:
            raise ValueError(f"Väntade en Bundle av typen {kind}")
        body = decorate_bundle(body, **self._sandbox)
        return json_body(self._send_json("POST", self.base_url, body))

    def _write(
        self,
        method: str,
        url: str,
        body: dict[str, Any],
        headers: dict[str, str],
        *,
        idempotent: bool = True,
    ) -> WriteResult:
        headers = {"Prefer": "return=representation", **headers}
        body = decorate(body, **self._sandbox)
        return WriteResult.from_response(
            self._send_json(method, url, body, headers=headers, idempotent=idempotent)
        )

    def _send_json(
        self,
        method: str,
        url: str,
        body: dict[str, Any],
        *,
        headers: dict[str, str] | None = None,
        **options: Any,
    ) -> requests.Response:
        headers = {"Content-Type": FHIR_JSON, **(headers or {})}
        return self._request(method, url, data=encode(body), headers=headers, **options)

    def _json(self, method: str, url: str, **kwargs: Any) -> dict[str, Any]:
        return json_body(self._request(method, url, **kwargs))

    def _request(
        self,
        method: str,
        url: str,
        *,
        idempotent: bool = True,
        accept: set[int] | frozenset[int] = frozenset(),
        **kwargs: Any,
    ) -> requests.Response:
        """One request with retries; a FhirError (TemporaryError once the budget is spent)."""
        label = f"{method} {urlsplit(url).path.removeprefix(urlsplit(self.base_url).path) or '/'}"
        deadline = self._clock() + self.endpoint.max_retry_seconds
        max_attempts = self.endpoint.max_attempts

        def retryable(exc: BaseException) -> bool:
            return isinstance(exc, TemporaryError) and (idempotent or exc.unprocessed)

        def give_up(state: RetryCallState) -> bool:
            # Stop before a wait that would end past the budget: waiting then is pointless.
            return (
                state.attempt_number >= max_attempts
                or self._clock() + state.upcoming_sleep > deadline
            )

        retrying = Retrying(
            retry=retry_if_exception(retryable),
            wait=self._wait,
            stop=give_up,
            sleep=self._sleep,
            before_sleep=self._report_retry,
            reraise=True,
        )
        try:
            return retrying(self._attempt, method, url, label, accept, kwargs)
        except FhirError as error:
            if isinstance(error, TemporaryError):
                error.attempts = retrying.statistics.get("attempt_number", 1)
            self._log.warning(
                "fhir.error",
                request=label,
                status=error.status,
                kind=type(error).__name__,
                reason=error.message,
            )
            if self._on_error:
                self._on_error(error)
            raise

    def _attempt(
        self,
        method: str,
        url: str,
        label: str,
        accept: set[int] | frozenset[int],
        kwargs: dict[str, Any],
        renewed: bool = False,
    ) -> requests.Response:
        started = self._clock()
        try:
            response = self.session.request(
                method,
                url,
                timeout=self._timeout,
                allow_redirects=False,
                **tls_arguments(self.session),
                **kwargs,
            )
        except requests.RequestException as exc:
            self._report_request(method, url, None, started)
            raise transport_error(exc, label) from exc
        status = response.status_code
        self._report_request(method, url, status, started)
        if status == 401 and not renewed and self.auth.renew():
            # An expired or revoked token: one more try with a fresh one, not counted as a retry.
            return self._attempt(method, url, label, accept, kwargs, renewed=True)
        if status < 300 or status in accept:
            return response
        if status < 400:
            raise FatalError(
                f"Servern hänvisar vidare till {response.headers.get('Location', '?')}; "
                "ange den adressen som bas-URL",
                status=status,
                request=label,
            )
        error = error_for_response(response, request=label)
        if isinstance(error, TemporaryError):
            error.retry_after = parse_retry_after(response.headers.get("Retry-After"))
        raise error

    def _wait(self, state: RetryCallState) -> float:
        """The server's Retry-After (capped), else exponential backoff with jitter."""
        error = state.outcome.exception() if state.outcome else None
        if isinstance(error, TemporaryError) and error.retry_after is not None:
            return min(error.retry_after, self.endpoint.max_retry_after)
        return float(self._backoff(state))

    def _report_retry(self, state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        reason = (
            f"HTTP {error.status}"
            if isinstance(error, FhirError) and error.status
            else (error.message if isinstance(error, FhirError) else repr(error))
        )
        wait = state.upcoming_sleep
        self._log.warning(
            "fhir.retry",
            attempt=state.attempt_number,
            wait=round(wait, 2),
            reason=reason,
            request=getattr(error, "request", None),
        )
        if self._on_retry:
            self._on_retry(state.attempt_number, wait, reason)

    def _report_request(self, method: str, url: str, status: int | None, started: float) -> None:
        seconds = self._clock() - started
        path = urlsplit(url).path
        self._log.debug(
            "fhir.request", method=method, path=path, status=status, ms=round(seconds * 1000)
        )
        if self._on_request:
            self._on_request(method, path, status, seconds)
