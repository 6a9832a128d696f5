"""Authentication and authorisation as FastAPI dependencies.

A caller logs in with ONE of:
- `Authorization: Bearer <JWT>` from the configured OIDC issuer (see adapter.api.oidc);
- `X-API-Key: <key>` or `Authorization: ApiKey <key>`, a static key from the key file.

Routes ask for what they need: `CurrentPrincipal`, `Depends(require_role(...))`,
`Depends(require_unit_access)`. Tests replace `current_principal` in
`app.dependency_overrides`; everything else builds on it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import APIKeyHeader, HTTPBearer

from adapter.api.apikeys import ApiKeyStore
from adapter.api.oidc import (
    FetchJson,
    KeysUnavailable,
    OidcConfig,
    OidcVerifier,
    TokenError,
    fetch_json,
)
from adapter.api.principal import Principal, Role
from adapter.logs import get_logger
from adapter.settings import Settings

_log = get_logger("adapter.api.security")

# Declared for the OpenAPI page ("Authorize"); the headers are read by Authenticator itself.
_bearer_scheme = HTTPBearer(auto_error=False, description="OIDC-åtkomsttoken (JWT)")
_api_key_scheme = APIKeyHeader(
    name="X-API-Key", auto_error=False, description="Statisk API-nyckel (lokal användning)"
)

UNAUTHENTICATED = "Inloggning saknas eller är ogiltig."


class AuthenticationError(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Authenticator:
    """Turns request headers into a Principal, or says why not."""

    def __init__(self, api_keys: ApiKeyStore | None, oidc: OidcVerifier | None) -> None:
        self.api_keys = api_keys
        self.oidc = oidc

    def authenticate(self, authorization: str | None, api_key: str | None) -> Principal:
        scheme, _, credentials = (authorization or "").strip().partition(" ")
        credentials = credentials.strip()
        if authorization and api_key:
            raise AuthenticationError("two_credentials")
        if api_key or scheme.lower() == "apikey":
            return self._by_api_key(api_key or credentials)
        if scheme.lower() == "bearer" and credentials:
            return self._by_token(credentials)
        raise AuthenticationError("no_credentials" if not authorization else "unknown_scheme")

    def _by_api_key(self, key: str) -> Principal:
        principal = self.api_keys.principal_for(key) if self.api_keys and key else None
        if principal is None:
            raise AuthenticationError("unknown_api_key")
        return principal

    def _by_token(self, token: str) -> Principal:
        if self.oidc is None:
            raise AuthenticationError("oidc_not_configured")
        try:
            return self.oidc.verify(token)
        except TokenError as error:
            raise AuthenticationError(error.reason) from None


def build_authenticator(settings: Settings, *, fetch: FetchJson = fetch_json) -> Authenticator:
    """From the settings; `fetch` (url -> JSON) replaces the HTTP fetch of the issuer's keys."""
    api_keys = ApiKeyStore.load(settings.api_keys_file) if settings.api_keys_file else None
    oidc = None
    if settings.oidc_issuer:
        if not settings.oidc_audience:
            raise ValueError("SIP_FHIR_OIDC_AUDIENCE måste anges tillsammans med OIDC_ISSUER")
        config = OidcConfig(
            issuer=settings.oidc_issuer,
            audience=settings.oidc_audience,
            jwks_url=settings.oidc_jwks_url,
            algorithms=tuple(settings.oidc_algorithms),
            roles_claim=settings.oidc_roles_claim,
            units_claim=settings.oidc_units_claim,
            leeway_seconds=settings.oidc_leeway_seconds,
            cache_seconds=settings.oidc_jwks_cache_seconds,
        )
        oidc = OidcVerifier(config, fetch=fetch)
    if api_keys is None and oidc is None:
        _log.warning("no login configured: set SIP_FHIR_OIDC_ISSUER or SIP_FHIR_API_KEYS_FILE")
    return Authenticator(api_keys, oidc)


def get_authenticator(request: Request) -> Authenticator:
    authenticator: Authenticator = request.app.state.authenticator
    return authenticator


def current_principal(
    request: Request,
    authenticator: Annotated[Authenticator, Depends(get_authenticator)],
    _bearer: Annotated[object, Depends(_bearer_scheme)] = None,
    api_key: Annotated[str | None, Depends(_api_key_scheme)] = None,
) -> Principal:
    """The logged-in caller; 401 otherwise (503 when the issuer's keys cannot be fetched)."""
    try:
        principal = authenticator.authenticate(request.headers.get("authorization"), api_key)
    except AuthenticationError as error:
        _log.warning("authentication failed", reason=error.reason, path=request.url.path)
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            detail=UNAUTHENTICATED,
            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
        ) from None
    except KeysUnavailable as error:
        _log.error("oidc keys unavailable", error=str(error))
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            detail="Inloggningen kan inte kontrolleras just nu: identitetsutfärdaren svarar inte.",
        ) from None
    request.state.principal = principal
    return principal


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


def forbidden(detail: str) -> HTTPException:
    return HTTPException(status.HTTP_403_FORBIDDEN, detail=detail)


def require_role(*roles: Role) -> Callable[[Principal], Principal]:
    """A dependency: the caller, who must hold one of `roles` (else 403)."""
    wanted = " eller ".join(role.value for role in roles)

    def dependency(principal: CurrentPrincipal) -> Principal:
        if not principal.has_role(*roles):
            raise forbidden(f"Behörighet saknas: kräver rollen {wanted}.")
        return principal

    return dependency


def ensure_unit_access(principal: Principal, unit: str) -> None:
    """403 unless `principal` may see patient data of `unit` (an admin: every unit)."""
    if not principal.can_read_unit(unit):
        raise forbidden(f"Behörighet saknas till enheten {unit}.")


def require_unit_access(unit: str, principal: CurrentPrincipal) -> Principal:
    """A dependency for routes with a `unit` path or query parameter (HSA-id)."""
    ensure_unit_access(principal, unit)
    return principal
