"""OAuth2/OIDC bearer tokens: JWTs verified against the configured issuer's published keys.

Checked: the signature (asymmetric algorithms only, key chosen by `kid` from the issuer's JWKS),
`iss`, `aud`, `exp`, `nbf`, `iat`, and that `sub` is present. The JWKS is fetched once, cached
for `cache_seconds`, and fetched again when a token names a `kid` the cache lacks (key
rotation) - at most once per `min_refresh_seconds`, so unknown kids cannot make us hammer the
issuer.

Claims read (names configurable, dotted paths allowed, e.g. `realm_access.roles`):
- `roles`: list (or space-separated string) of `vardsamordnare`, `integration`, `admin`;
- `units`: list of the HSA-ids of the units whose patients the user may see;
- `name`, else `preferred_username`, else `sub`: the name shown in the audit log.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import requests
from joserfc import jwt
from joserfc.errors import ClaimError, ExpiredTokenError, JoseError
from joserfc.jwk import GuestProtocol, Key, import_key

from adapter.api.principal import Principal, parse_roles, parse_units
from adapter.logs import get_logger

FetchJson = Callable[[str], Mapping[str, Any]]

_log = get_logger("adapter.api.oidc")


class TokenError(Exception):
    """The token is not acceptable; `reason` is a short code for the log, never shown in full."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class KeysUnavailable(Exception):
    """The issuer's keys could not be fetched, so no token can be checked now."""


def fetch_json(url: str) -> Mapping[str, Any]:
    response = requests.get(url, timeout=(5, 10), headers={"Accept": "application/json"})
    response.raise_for_status()
    body = response.json()
    if not isinstance(body, dict):
        raise ValueError(f"{url}: not a JSON object")
    return body


@dataclass(frozen=True, slots=True)
class OidcConfig:
    issuer: str
    audience: str
    jwks_url: str | None = None  # None: discover from the issuer
    algorithms: Sequence[str] = ("RS256", "PS256", "ES256")
    roles_claim: str = "roles"
    units_claim: str = "units"
    leeway_seconds: int = 60
    cache_seconds: float = 3600
    min_refresh_seconds: float = 30


class JwksCache:
    """The issuer's signing keys by `kid`."""

    def __init__(self, config: OidcConfig, fetch: FetchJson, clock: Callable[[], float]) -> None:
        self._config = config
        self._fetch = fetch
        self._clock = clock
        self._lock = threading.Lock()
        self._url = config.jwks_url
        self._keys: dict[str | None, Key] = {}
        self._fetched_at: float | None = None  # last successful fetch
        self._attempted_at: float | None = None  # last fetch, successful or not

    def key(self, kid: str | None) -> Key:
        with self._lock:
            now = self._clock()
            stale = self._fetched_at is None or now - self._fetched_at >= self._config.cache_seconds
            if stale and self._may_fetch(now):
                self._refresh(now)
            found = self._find(kid)
            if found is None and self._may_fetch(now):
                self._refresh(now)
                found = self._find(kid)
            if not self._keys:
                raise KeysUnavailable("no keys from the issuer yet")
        if found is None:
            raise TokenError("unknown_kid")
        return found

    def _may_fetch(self, now: float) -> bool:
        """At most one fetch per min_refresh_seconds, whether it worked or not."""
        last = self._attempted_at
        return last is None or now - last >= self._config.min_refresh_seconds

    def _find(self, kid: str | None) -> Key | None:
        if kid is None and len(self._keys) == 1:
            return next(iter(self._keys.values()))
        return self._keys.get(kid)

    def _refresh(self, now: float) -> None:
        self._attempted_at = now
        try:
            keys = self._load()
        except Exception as error:
            if not self._keys:
                raise KeysUnavailable(str(error)) from error
            _log.warning("jwks refresh failed, keeping cached keys", error=str(error))
            return
        self._keys, self._fetched_at = keys, now

    def _load(self) -> dict[str | None, Key]:
        if self._url is None:
            self._url = self._discover()
        keys: dict[str | None, Key] = {}
        for entry in self._fetch(self._url).get("keys", []):
            if entry.get("use", "sig") != "sig":
                continue
            try:
                keys[entry.get("kid")] = import_key(entry)
            except (JoseError, ValueError, KeyError, TypeError) as error:
                _log.warning("jwks key skipped", kid=entry.get("kid"), error=str(error))
        return keys

    def _discover(self) -> str:
        issuer = self._config.issuer
        document = self._fetch(f"{issuer.rstrip('/')}/.well-known/openid-configuration")
        if document.get("issuer") != issuer:
            raise ValueError(f"discovery document names issuer {document.get('issuer')!r}")
        return str(document["jwks_uri"])


class OidcVerifier:
    def __init__(
        self,
        config: OidcConfig,
        *,
        fetch: FetchJson = fetch_json,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self._clock = clock
        self._keys = JwksCache(config, fetch, clock)

    def verify(self, token: str) -> Principal:
        """The principal the token speaks for; TokenError or KeysUnavailable otherwise."""
        try:
            decoded = jwt.decode(token, self._resolve_key, algorithms=list(self.config.algorithms))
        except JoseError as error:
            raise TokenError(error.error or "invalid_token") from None
        except (ValueError, KeyError, TypeError, IndexError):
            raise TokenError("malformed") from None
        claims = decoded.claims
        registry = jwt.JWTClaimsRegistry(
            now=int(self._clock()),
            leeway=self.config.leeway_seconds,
            iss={"essential": True, "value": self.config.issuer},
            aud={"essential": True, "value": self.config.audience},
            exp={"essential": True},
            sub={"essential": True},
        )
        try:
            registry.validate(claims)
        except ExpiredTokenError:
            raise TokenError("expired") from None
        except ClaimError as error:
            raise TokenError(f"{error.error}:{error.claim}") from None
        return self._principal(claims)

    def _resolve_key(self, obj: GuestProtocol) -> Key:
        kid = obj.headers().get("kid")
        return self._keys.key(kid if isinstance(kid, str) else None)

    def _principal(self, claims: Mapping[str, Any]) -> Principal:
        subject = str(claims["sub"])
        name = claims.get("name") or claims.get("preferred_username") or subject
        return Principal(
            name=str(name),
            subject=subject,
            roles=parse_roles(_claim(claims, self.config.roles_claim)),
            units=parse_units(_claim(claims, self.config.units_claim)),
            method="oidc",
        )


def _claim(claims: Mapping[str, Any], path: str) -> object:
    value: object = claims
    for part in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value
