"""Login: OIDC bearer JWTs (local RSA keys, a stub JWKS endpoint) and static API keys."""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
import stat
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from joserfc import jwt
from joserfc.jwk import RSAKey

from adapter.api import create_app
from adapter.api.apikeys import (
    ApiKeyEntry,
    ApiKeyError,
    ApiKeyStore,
    add_entry,
    hash_key,
    read_entries,
)
from adapter.api.oidc import KeysUnavailable, OidcConfig, OidcVerifier, TokenError
from adapter.api.principal import Role
from adapter.api.security import AuthenticationError, Authenticator, build_authenticator
from adapter.audit import AuditLog
from adapter.settings import Settings
from tests.support.stderr import logging_to_current_stderr

ISSUER = "https://idp.example.se/realms/region"
AUDIENCE = "sip-fhir"
JWKS_URL = f"{ISSUER}/protocol/openid-connect/certs"
UNIT = "SE2321000057-E00000000001"
NOW = 1_800_000_000


class FakeClock:
    def __init__(self) -> None:
        self.now = float(NOW)

    def __call__(self) -> float:
        return self.now


@functools.cache
def rsa_key(kid: str, holder: str = "idp") -> RSAKey:
    """Generated once per run (2048-bit generation is slow); `holder` tells same-kid keys apart."""
    return RSAKey.generate_key(2048, parameters={"kid": kid})


class StubIssuer:
    """The identity provider: signs tokens, publishes its keys; records every fetch."""

    def __init__(self) -> None:
        self.keys = [rsa_key("k1")]
        self.fetched: list[str] = []
        self.down = False

    def fetch(self, url: str) -> Mapping[str, Any]:
        self.fetched.append(url)
        if self.down:
            raise ConnectionError("idp unreachable")
        if url == f"{ISSUER}/.well-known/openid-configuration":
            return {"issuer": ISSUER, "jwks_uri": JWKS_URL}
        assert url == JWKS_URL
        return {"keys": [key.as_dict(private=False) for key in self.keys]}

    def rotate(self, kid: str) -> RSAKey:
        key = rsa_key(kid)
        self.keys.append(key)
        return key

    def token(
        self, key: RSAKey | None = None, header: dict[str, Any] | None = None, **claims: Any
    ) -> str:
        key = key or self.keys[0]
        body = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": "user-1",
            "name": "Vera Vårdsamordnare",
            "iat": NOW - 10,
            "nbf": NOW - 10,
            "exp": NOW + 300,
            "roles": ["vardsamordnare"],
            "units": [UNIT],
        }
        body.update(claims)
        body = {k: v for k, v in body.items() if v is not None}
        return jwt.encode({"alg": "RS256", "kid": key.kid, **(header or {})}, body, key)


@pytest.fixture(autouse=True)
def _logging() -> Iterator[None]:
    with logging_to_current_stderr():
        yield


@pytest.fixture
def idp() -> StubIssuer:
    return StubIssuer()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def verifier(idp: StubIssuer, clock: FakeClock, **config: Any) -> OidcVerifier:
    options: dict[str, Any] = {"issuer": ISSUER, "audience": AUDIENCE, "jwks_url": JWKS_URL}
    options.update(config)
    return OidcVerifier(OidcConfig(**options), fetch=idp.fetch, clock=clock)


def reason(check: Callable[[], object]) -> str:
    with pytest.raises(TokenError) as caught:
        check()
    return caught.value.reason


# --- OidcVerifier ---


def test_valid_token_gives_principal_with_roles_and_units(
    idp: StubIssuer, clock: FakeClock
) -> None:
    principal = verifier(idp, clock).verify(idp.token(roles=["vardsamordnare", "okand-roll"]))
    assert principal.subject == "user-1"
    assert principal.name == "Vera Vårdsamordnare"
    assert principal.roles == {Role.VARDSAMORDNARE}
    assert principal.units == {UNIT}
    assert principal.method == "oidc"


def test_expired_token_is_rejected(idp: StubIssuer, clock: FakeClock) -> None:
    token = idp.token(iat=NOW - 3600, nbf=NOW - 3600, exp=NOW - 120)  # beyond the 60 s leeway
    assert reason(lambda: verifier(idp, clock).verify(token)) == "expired"


def test_expiry_within_leeway_is_accepted(idp: StubIssuer, clock: FakeClock) -> None:
    token = idp.token(exp=NOW - 30)
    assert verifier(idp, clock).verify(token).subject == "user-1"


def test_token_without_exp_is_rejected(idp: StubIssuer, clock: FakeClock) -> None:
    token = idp.token(exp=None)
    assert "exp" in reason(lambda: verifier(idp, clock).verify(token))


def test_token_not_yet_valid_is_rejected(idp: StubIssuer, clock: FakeClock) -> None:
    token = idp.token(nbf=NOW + 600)
    assert reason(lambda: verifier(idp, clock).verify(token)) == "invalid_claim:nbf"


def test_wrong_issuer_is_rejected(idp: StubIssuer, clock: FakeClock) -> None:
    token = idp.token(iss="https://evil.example.com")
    assert reason(lambda: verifier(idp, clock).verify(token)) == "invalid_claim:iss"


def test_wrong_audience_is_rejected(idp: StubIssuer, clock: FakeClock) -> None:
    token = idp.token(aud=["another-api"])
    assert reason(lambda: verifier(idp, clock).verify(token)) == "invalid_claim:aud"


def test_audience_list_containing_ours_is_accepted(idp: StubIssuer, clock: FakeClock) -> None:
    token = idp.token(aud=["another-api", AUDIENCE])
    assert verifier(idp, clock).verify(token).subject == "user-1"


def test_bad_signature_is_rejected(idp: StubIssuer, clock: FakeClock) -> None:
    impostor = rsa_key("k1", holder="impostor")  # same kid, other key
    token = idp.token(key=impostor)
    assert reason(lambda: verifier(idp, clock).verify(token)) == "bad_signature"


def test_tampered_payload_is_rejected(idp: StubIssuer, clock: FakeClock) -> None:
    header, _, signature = idp.token().split(".")
    _, payload, _ = idp.token(roles=["admin"]).split(".")
    assert reason(lambda: verifier(idp, clock).verify(f"{header}.{payload}.{signature}")) == (
        "bad_signature"
    )


def test_symmetric_algorithm_is_refused(idp: StubIssuer, clock: FakeClock) -> None:
    # The classic confusion: HS256 "signed" with the public key as the shared secret.
    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": "x", "exp": NOW + 300, "roles": ["admin"]}
    signing_input = (
        f"{b64(json.dumps({'alg': 'HS256', 'kid': 'k1'}).encode())}."
        f"{b64(json.dumps(claims).encode())}"
    )
    secret = idp.keys[0].as_pem(private=False)
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    token = f"{signing_input}.{b64(signature)}"
    assert reason(lambda: verifier(idp, clock).verify(token)) == "unsupported_algorithm"


def test_garbage_token_is_rejected(idp: StubIssuer, clock: FakeClock) -> None:
    assert reason(lambda: verifier(idp, clock).verify("not-a-jwt")) in {"malformed", "decode_error"}


def test_unknown_kid_is_rejected_after_one_refresh(idp: StubIssuer, clock: FakeClock) -> None:
    check = verifier(idp, clock)
    check.verify(idp.token())
    stranger = rsa_key("unknown", holder="stranger")
    clock.now += 60  # past min_refresh_seconds
    assert reason(lambda: check.verify(idp.token(key=stranger))) == "unknown_kid"
    assert idp.fetched == [JWKS_URL, JWKS_URL]  # refreshed once for the unknown kid


def test_unknown_kids_cannot_force_a_fetch_each(idp: StubIssuer, clock: FakeClock) -> None:
    check = verifier(idp, clock)
    check.verify(idp.token())
    for n in range(5):
        stranger = rsa_key(f"x{n}", holder="stranger")
        assert reason(lambda s=stranger: check.verify(idp.token(key=s))) == "unknown_kid"
    assert idp.fetched == [JWKS_URL]  # within min_refresh_seconds: no refetch


def test_rotated_key_is_picked_up_on_unknown_kid(idp: StubIssuer, clock: FakeClock) -> None:
    check = verifier(idp, clock)
    check.verify(idp.token())
    new_key = idp.rotate("k2")
    clock.now += 31
    assert check.verify(idp.token(key=new_key)).subject == "user-1"
    assert len(idp.fetched) == 2


def test_jwks_is_cached_then_refreshed_after_ttl(idp: StubIssuer, clock: FakeClock) -> None:
    check = verifier(idp, clock, cache_seconds=600)
    check.verify(idp.token())
    check.verify(idp.token())
    assert len(idp.fetched) == 1
    clock.now += 601
    check.verify(idp.token(iat=None, nbf=None, exp=int(clock.now) + 60))
    assert len(idp.fetched) == 2


def test_cached_keys_survive_an_unreachable_issuer(idp: StubIssuer, clock: FakeClock) -> None:
    check = verifier(idp, clock, cache_seconds=600)
    check.verify(idp.token())
    idp.down = True
    clock.now += 601
    assert check.verify(idp.token(exp=int(clock.now) + 60)).subject == "user-1"
    clock.now += 10
    assert check.verify(idp.token(exp=int(clock.now) + 60)).subject == "user-1"
    assert len(idp.fetched) == 2  # the failed refresh is not retried on every request
    clock.now += 30
    check.verify(idp.token(exp=int(clock.now) + 60))
    assert len(idp.fetched) == 3  # ... but again after min_refresh_seconds


def test_unreachable_issuer_without_cached_keys(idp: StubIssuer, clock: FakeClock) -> None:
    idp.down = True
    with pytest.raises(KeysUnavailable):
        verifier(idp, clock).verify(idp.token())


def test_first_fetch_is_retried_once_the_issuer_is_back(idp: StubIssuer, clock: FakeClock) -> None:
    check = verifier(idp, clock)
    idp.down = True
    for _ in range(3):
        with pytest.raises(KeysUnavailable):
            check.verify(idp.token())
    assert len(idp.fetched) == 1
    idp.down = False
    clock.now += 30
    assert check.verify(idp.token(exp=int(clock.now) + 60)).subject == "user-1"


def test_jwks_url_is_discovered_from_the_issuer(idp: StubIssuer, clock: FakeClock) -> None:
    principal = verifier(idp, clock, jwks_url=None).verify(idp.token())
    assert principal.subject == "user-1"
    assert idp.fetched == [f"{ISSUER}/.well-known/openid-configuration", JWKS_URL]


def test_nested_roles_claim(idp: StubIssuer, clock: FakeClock) -> None:
    token = idp.token(roles=None, realm_access={"roles": ["admin", "offline_access"]})
    principal = verifier(idp, clock, roles_claim="realm_access.roles").verify(token)
    assert principal.roles == {Role.ADMIN}


def test_space_separated_roles_and_missing_units(idp: StubIssuer, clock: FakeClock) -> None:
    principal = verifier(idp, clock).verify(idp.token(roles="integration admin", units=None))
    assert principal.roles == {Role.INTEGRATION, Role.ADMIN}
    assert principal.units == frozenset()


# --- API keys ---

KEY = "s3cret-key-for-tests"


def write_keys(path: Path, entries: dict[str, Any]) -> Path:
    path.write_text(json.dumps(entries), encoding="utf-8")
    return path


def test_api_key_store_finds_principal_by_hash(tmp_path: Path) -> None:
    path = write_keys(
        tmp_path / "keys.json",
        {hash_key(KEY): {"name": "prea60-import", "role": "integration", "units": [UNIT]}},
    )
    store = ApiKeyStore.load(path)
    principal = store.principal_for(KEY)
    assert principal is not None
    assert (principal.name, principal.subject) == ("prea60-import", "apikey:prea60-import")
    assert principal.roles == {Role.INTEGRATION}
    assert principal.units == {UNIT}
    assert store.principal_for("wrong") is None
    assert store.principal_for(hash_key(KEY)) is None  # the hash itself is no key


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ({KEY: {"name": "x", "role": "admin"}}, "ingen sha256-summa"),
        ({hash_key(KEY): {"name": "x", "role": "superuser"}}, "role"),
        ({hash_key(KEY): {"role": "admin"}}, "name"),
        (["not", "an", "object"], "JSON-objekt"),
    ],
)
def test_api_key_file_errors_are_explained(tmp_path: Path, content: Any, message: str) -> None:
    path = write_keys(tmp_path / "keys.json", content)
    with pytest.raises(ApiKeyError, match=message) as caught:
        read_entries(path)
    assert KEY not in str(caught.value)  # a key pasted by mistake is not echoed


def test_missing_api_key_file(tmp_path: Path) -> None:
    with pytest.raises(ApiKeyError, match="finns inte"):
        read_entries(tmp_path / "nope.json")


def test_add_entry_stores_only_the_hash_owner_readable(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "keys.json"
    add_entry(path, KEY, ApiKeyEntry(name="a", role=Role.ADMIN))
    add_entry(path, "another", ApiKeyEntry(name="b", role=Role.INTEGRATION))
    text = path.read_text(encoding="utf-8")
    assert KEY not in text and hash_key(KEY) in text
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert set(read_entries(path)) == {hash_key(KEY), hash_key("another")}


# --- Authenticator: which header means what ---


@pytest.fixture
def authenticator(idp: StubIssuer, clock: FakeClock, tmp_path: Path) -> Authenticator:
    path = write_keys(tmp_path / "keys.json", {hash_key(KEY): {"name": "k", "role": "admin"}})
    return Authenticator(ApiKeyStore.load(path), verifier(idp, clock))


def auth_reason(authenticator: Authenticator, authorization: str | None, key: str | None) -> str:
    with pytest.raises(AuthenticationError) as caught:
        authenticator.authenticate(authorization, key)
    return caught.value.reason


def test_authenticator_header_forms(authenticator: Authenticator, idp: StubIssuer) -> None:
    assert authenticator.authenticate(None, KEY).method == "apikey"
    assert authenticator.authenticate(f"ApiKey {KEY}", None).method == "apikey"
    assert authenticator.authenticate(f"Bearer {idp.token()}", None).method == "oidc"
    assert auth_reason(authenticator, None, None) == "no_credentials"
    assert auth_reason(authenticator, "Basic dXNlcjpwYXNz", None) == "unknown_scheme"
    assert auth_reason(authenticator, f"Bearer {idp.token()}", KEY) == "two_credentials"
    assert auth_reason(authenticator, "ApiKey wrong", None) == "unknown_api_key"


def test_bearer_without_oidc_configured(tmp_path: Path, idp: StubIssuer) -> None:
    assert auth_reason(Authenticator(None, None), f"Bearer {idp.token()}", None) == (
        "oidc_not_configured"
    )


def test_build_authenticator_requires_audience_with_issuer(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="AUDIENCE"):
        build_authenticator(Settings(data_dir=tmp_path, oidc_issuer=ISSUER))


# --- Through the API ---


@pytest.fixture
def client(tmp_path: Path, idp: StubIssuer) -> TestClient:
    """The real app: OIDC with the stub issuer (real clock), API keys from a file."""
    keys = write_keys(tmp_path / "keys.json", {hash_key(KEY): {"name": "drift", "role": "admin"}})
    settings = Settings(
        data_dir=tmp_path,
        api_keys_file=keys,
        oidc_issuer=ISSUER,
        oidc_audience=AUDIENCE,
        oidc_jwks_url=JWKS_URL,
    )
    app = create_app(
        settings,
        authenticator=build_authenticator(settings, fetch=idp.fetch),
        audit_log=AuditLog(tmp_path / "audit.sqlite"),
        readiness_checks={},
    )
    return TestClient(app)


def real_time_token(idp: StubIssuer, key: RSAKey | None = None, **claims: Any) -> str:
    now = int(time.time())
    times = {"iat": now - 5, "nbf": now - 5, "exp": now + 300}
    return idp.token(key=key, **{"roles": ["admin"], **times, **claims})


def search(client: TestClient, headers: dict[str, str]) -> Any:
    return client.post("/audit/search", json={}, headers=headers)


def test_api_accepts_valid_token(client: TestClient, idp: StubIssuer) -> None:
    response = search(client, {"Authorization": f"Bearer {real_time_token(idp)}"})
    assert response.status_code == 200, response.text
    assert response.json()["events"][0]["actor"] == "Vera Vårdsamordnare"


@pytest.mark.parametrize(
    "claims",
    [
        {"exp": 1_000_000},
        {"iss": "https://evil.example.com"},
        {"aud": "another-api"},
    ],
    ids=["expired", "wrong-issuer", "wrong-audience"],
)
def test_api_rejects_bad_claims(
    client: TestClient, idp: StubIssuer, claims: dict[str, Any]
) -> None:
    response = search(client, {"Authorization": f"Bearer {real_time_token(idp, **claims)}"})
    assert response.status_code == 401
    assert response.json() == {"detail": "Inloggning saknas eller är ogiltig."}
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("kid", ["k1", "unknown"], ids=["bad-signature", "unknown-kid"])
def test_api_rejects_foreign_keys(client: TestClient, idp: StubIssuer, kid: str) -> None:
    foreign = rsa_key(kid, holder="stranger")
    response = search(client, {"Authorization": f"Bearer {real_time_token(idp, key=foreign)}"})
    assert response.status_code == 401


def test_api_key_header_forms(client: TestClient) -> None:
    assert search(client, {"X-API-Key": KEY}).status_code == 200
    assert search(client, {"Authorization": f"ApiKey {KEY}"}).status_code == 200
    assert search(client, {"X-API-Key": "wrong"}).status_code == 401
    assert search(client, {}).status_code == 401


def test_unreachable_issuer_gives_503(client: TestClient, idp: StubIssuer) -> None:
    idp.down = True
    response = search(client, {"Authorization": f"Bearer {real_time_token(idp)}"})
    assert response.status_code == 503
    assert "identitetsutfärdaren" in response.json()["detail"]
