"""Credentials for a FHIR endpoint: none, static bearer token, OAuth2 client credentials; mTLS.

mTLS is a property of the session (client certificate + CA bundle) and combines with any mode; the
OAuth2 token endpoint is reached with the same certificate and CA, as SITHS deployments require.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import requests
from authlib.integrations.base_client import OAuthError
from authlib.integrations.requests_client import OAuth2Session
from requests.auth import AuthBase

from adapter.fhirclient.errors import AuthError, FatalError, error_for_response
from adapter.settings import AuthMode, EndpointSettings

# Renew a token this long before expiry, so no request leaves with a token that dies on the way.
DEFAULT_LEEWAY = 60.0


class FhirAuth(AuthBase):
    """Adds credentials to each request; `renew` is asked once after a 401."""

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        return request

    def renew(self) -> bool:
        """Drop the current credential; True if a fresh one is worth one more try."""
        return False


class BearerToken(FhirAuth):
    """A static token from the settings: nothing to renew."""

    def __init__(self, token: str) -> None:
        self._token = token

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self._token}"
        return request


class ClientCredentials(FhirAuth):
    """OAuth2 client credentials grant (authlib), renewed `leeway` seconds before expiry.

    `clock` is monotonic seconds; tests inject one to move time without waiting.
    """

    def __init__(
        self,
        token_session: OAuth2Session,
        token_url: str,
        *,
        clock: Callable[[], float] = time.monotonic,
        leeway: float = DEFAULT_LEEWAY,
    ) -> None:
        self._session = token_session
        self._token_url = token_url
        self._clock = clock
        self._leeway = leeway
        self._lock = threading.Lock()  # one fetch at a time when threads share the client
        self._access_token: str | None = None
        self._renew_at = 0.0
        self.fetches = 0

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self.access_token()}"
        return request

    def renew(self) -> bool:
        with self._lock:
            self._access_token = None
        return True

    def access_token(self) -> str:
        with self._lock:
            if self._access_token is None or self._clock() >= self._renew_at:
                self._access_token = self._fetch()
            return self._access_token

    def _fetch(self) -> str:
        now = self._clock()
        try:
            token = self._session.fetch_token(
                self._token_url, grant_type="client_credentials", **tls_arguments(self._session)
            )
        except OAuthError as exc:  # the server's JSON error: invalid_client, invalid_scope, ...
            raise AuthError(f"Token-tjänsten nekade: {exc.description or exc.error}") from exc
        except requests.HTTPError as exc:  # an error page without JSON, e.g. 503 from a gateway
            if exc.response is None:  # raised before any answer (a hook, a proxy library)
                message = f"Token-begäran misslyckades: {exc}"
                raise FatalError(message, request="POST token") from exc
            raise error_for_response(exc.response, request="POST token") from exc
        except ValueError as exc:  # 2xx but not a JSON object
            raise AuthError("Token-tjänsten svarade inte med JSON") from exc
        access_token = token.get("access_token")
        if not access_token:
            raise AuthError("Token-tjänsten svarade utan access_token")
        self.fetches += 1
        expires_in = token.get("expires_in")
        if expires_in is None:
            self._renew_at = float("inf")  # no lifetime given: keep it until a 401 says otherwise
        else:
            lifetime = float(expires_in)
            # A short-lived token renews halfway rather than never being considered fresh.
            self._renew_at = now + lifetime - min(self._leeway, lifetime / 2)
        return str(access_token)


def apply_tls(session: requests.Session, endpoint: EndpointSettings) -> None:
    """Client certificate (mTLS, e.g. a SITHS function certificate) and CA bundle on the session."""
    for label, path in (
        ("klientcertifikatet (SIP_FHIR_CLIENT_CERT)", endpoint.client_cert),
        ("klientnyckeln (SIP_FHIR_CLIENT_KEY)", endpoint.client_key),
        ("CA-filen (SIP_FHIR_CA_BUNDLE)", endpoint.ca_bundle),
    ):
        if path is not None and not path.is_file():
            raise ValueError(f"Filen för {label} finns inte: {path}")
    if endpoint.client_key is not None and endpoint.client_cert is None:
        raise ValueError("SIP_FHIR_CLIENT_KEY är satt men inte SIP_FHIR_CLIENT_CERT")
    if endpoint.client_cert is not None:
        session.cert = (
            (str(endpoint.client_cert), str(endpoint.client_key))
            if endpoint.client_key is not None
            else str(endpoint.client_cert)  # certificate and key in one PEM file
        )
    if endpoint.ca_bundle is not None:
        session.verify = str(endpoint.ca_bundle)


def tls_arguments(session: requests.Session) -> dict[str, Any]:
    """Certificate and CA as per-request arguments.

    requests lets REQUESTS_CA_BUNDLE/CURL_CA_BUNDLE override a session's own `verify`; passed with
    each request, the configured CA wins (and `True` still defers to the environment).
    """
    return {"cert": session.cert, "verify": session.verify}


def build_auth(
    endpoint: EndpointSettings, *, clock: Callable[[], float] = time.monotonic
) -> FhirAuth:
    """The credentials the settings ask for; a clear error naming the missing setting otherwise."""
    if endpoint.auth is AuthMode.NONE:
        return FhirAuth()
    if endpoint.auth is AuthMode.BEARER:
        if endpoint.token is None:
            raise ValueError("SIP_FHIR_AUTH=bearer kräver SIP_FHIR_TOKEN")
        return BearerToken(endpoint.token.get_secret_value())
    token_url = endpoint.oauth2_token_url
    client_id = endpoint.oauth2_client_id
    secret = endpoint.oauth2_client_secret
    if token_url is None or client_id is None or secret is None:
        missing = [
            name
            for name, value in (
                ("SIP_FHIR_OAUTH2_TOKEN_URL", token_url),
                ("SIP_FHIR_OAUTH2_CLIENT_ID", client_id),
                ("SIP_FHIR_OAUTH2_CLIENT_SECRET", secret),
            )
            if value is None
        ]
        raise ValueError(f"SIP_FHIR_AUTH=oauth2 kräver {', '.join(missing)}")
    token_session = OAuth2Session(
        client_id=client_id,
        client_secret=secret.get_secret_value(),
        scope=endpoint.oauth2_scope,
        default_timeout=(endpoint.connect_timeout, endpoint.read_timeout),
    )
    apply_tls(token_session, endpoint)
    return ClientCredentials(token_session, token_url, clock=clock)


__all__ = [
    "BearerToken",
    "ClientCredentials",
    "FhirAuth",
    "apply_tls",
    "build_auth",
    "tls_arguments",
]
