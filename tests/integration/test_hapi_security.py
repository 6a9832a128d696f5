"""Our HAPI server in secured mode (HAPI_AUTH=jwt), attacked and used for real.

Replays the review's finding (issue 10.1): `curl 'http://HOST:8080/fhir/Patient?_count=1'` returned
patient data without credentials. Here an anonymous caller, and callers with forged, expired or
misdirected tokens, get 401 from the server itself; the adapter's own commands work with
SIP_FHIR_AUTH=bearer and SIP_FHIR_AUTH=oauth2 (client credentials against a local token endpoint
standing in for the region's IdP); rest-hook deliveries (HAPI's internal work) still flow; and the
server listens on loopback only by default.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from tests.support.hapi import HAPI_START_TIMEOUT, run_hapi
from tests.support.net import free_port
from tests.support.secured_hapi import (
    AUDIENCE,
    ISSUER,
    SCOPE,
    SigningKey,
    TokenEndpoint,
    hapi_server,
    is_loopback,
    listening_addresses,
    patients_with,
    sip_fhir,
    unsigned_token,
    write_events,
)

pytestmark = pytest.mark.integration

TEST_SYSTEM = "https://sip-fhir.se/fhir/identifier/test"


class Secured:
    def __init__(self, base_url: str, key: SigningKey) -> None:
        self.base_url = base_url
        self.key = key

    def headers(self, token: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {token or self.key.mint()}"}


CLIENT_ID = "sip-fhir-adapter"
CLIENT_SECRET = uuid.uuid4().hex


@pytest.fixture(scope="module")
def idp() -> Iterator[TokenEndpoint]:
    """Stands in for the region's IdP: token endpoint and JWKS URL, on loopback."""
    with TokenEndpoint(SigningKey(), CLIENT_ID, CLIENT_SECRET).running() as endpoint:
        yield endpoint


@pytest.fixture(scope="module")
def secured(idp: TokenEndpoint, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Secured]:
    """One HAPI server for the module: HAPI_AUTH=jwt with the IdP's JWKS URL, default bind address.
    (test_hapi_mtls.py runs one with a JWKS file.)"""
    env = {
        "HAPI_AUTH": "jwt",
        "HAPI_JWT_JWKS_URL": idp.jwks_url,
        "HAPI_JWT_JWKS_FILE": "",
        "HAPI_JWT_ISSUER": ISSUER,
        "HAPI_JWT_AUDIENCE": AUDIENCE,
        "HAPI_JWT_REQUIRED_SCOPE": SCOPE,
    }
    for name in ("HAPI_BIND_ADDRESS", "HAPI_TLS_CERT", "HAPI_TLS_KEY", "HAPI_TLS_CLIENT_CA"):
        env[name] = ""  # whatever the caller's shell has: this server shows the defaults
    with hapi_server(tmp_path_factory.mktemp("secured-hapi"), env) as base_url:
        yield Secured(base_url, idp.key)


def _patient(value: str) -> dict[str, Any]:
    return {"resourceType": "Patient", "identifier": [{"system": TEST_SYSTEM, "value": value}]}


def _count(secured: Secured, resource_type: str, identifier: str) -> int:
    found = requests.get(
        f"{secured.base_url}/{resource_type}",
        params={"identifier": identifier, "_summary": "count"},
        headers=secured.headers(),
        timeout=30,
    )
    assert found.status_code == 200, found.text
    return int(found.json()["total"])


def _assert_refused(response: requests.Response) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["WWW-Authenticate"].startswith('Bearer realm="sip-fhir"')
    body = response.json()
    assert body["resourceType"] == "OperationOutcome"  # and nothing else: no patient data


# --- the listening socket -------------------------------------------------------------------------


def test_default_server_listens_on_loopback_only(secured: Secured) -> None:
    port = urlsplit(secured.base_url).port
    assert port is not None
    addresses = listening_addresses(port)
    assert addresses, f"no listening socket on port {port}"
    assert all(is_loopback(a) for a in addresses), addresses  # not 0.0.0.0 / ::


# --- anonymous callers ----------------------------------------------------------------------------


def test_anonymous_search_the_review_ran_is_refused(secured: Secured) -> None:
    value = f"anon-{uuid.uuid4().hex}"
    made = requests.post(
        f"{secured.base_url}/Patient",
        json=_patient(value),
        headers={**secured.headers(), "Content-Type": "application/fhir+json"},
        timeout=30,
    )
    assert made.status_code == 201, made.text

    _assert_refused(requests.get(f"{secured.base_url}/Patient?_count=1", timeout=30))
    patient_url = made.headers["Location"].split("/_history")[0]
    _assert_refused(requests.get(patient_url, timeout=30))
    _assert_refused(
        requests.post(f"{secured.base_url}/Patient/_search", data={"identifier": value}, timeout=30)
    )


def test_anonymous_writes_are_refused_and_store_nothing(secured: Secured) -> None:
    value = f"anon-write-{uuid.uuid4().hex}"
    _assert_refused(
        requests.post(
            f"{secured.base_url}/Patient",
            json=_patient(value),
            headers={"Content-Type": "application/fhir+json"},
            timeout=30,
        )
    )
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "resource": _patient(value),
                "request": {"method": "PUT", "url": f"Patient?identifier={TEST_SYSTEM}|{value}"},
            }
        ],
    }
    _assert_refused(
        requests.post(
            secured.base_url,
            json=bundle,
            headers={"Content-Type": "application/fhir+json"},
            timeout=30,
        )
    )
    assert _count(secured, "Patient", f"{TEST_SYSTEM}|{value}") == 0


def test_a_paging_link_needs_a_token_too(secured: Secured) -> None:
    for _ in range(3):
        requests.post(
            f"{secured.base_url}/Patient",
            json=_patient(f"page-{uuid.uuid4().hex}"),
            headers={**secured.headers(), "Content-Type": "application/fhir+json"},
            timeout=30,
        ).raise_for_status()
    first = requests.get(
        f"{secured.base_url}/Patient", params={"_count": 1}, headers=secured.headers(), timeout=30
    )
    (next_url,) = [link["url"] for link in first.json()["link"] if link["relation"] == "next"]
    _assert_refused(requests.get(next_url, timeout=30))
    assert requests.get(next_url, headers=secured.headers(), timeout=30).status_code == 200


def test_metadata_stays_anonymous(secured: Secured) -> None:
    """Decision (deploy/hapi/README.md): the capability statement holds no patient data, and
    FHIR/SMART clients read it before they authenticate."""
    statement = requests.get(f"{secured.base_url}/metadata", timeout=30)
    assert statement.status_code == 200
    assert statement.json()["resourceType"] == "CapabilityStatement"
    # Only the exact path: a look-alike gets no free pass.
    _assert_refused(requests.get(f"{secured.base_url}/metadata/../Patient", timeout=30))


FHIR_PATHS = ["", "/", "/Patient", "/$meta", "/_history", "/Patient/_history", "/$export", "/Task"]
OTHER_PATHS = ["/", "/v3/api-docs", "/swagger-ui.html", "/actuator", "/actuator/env", "/fhir-ui"]


def test_no_other_door_on_the_port(secured: Secured) -> None:
    """Every FHIR path but /metadata wants a token; the rest of the port serves nothing."""
    for path in FHIR_PATHS:
        _assert_refused(requests.get(f"{secured.base_url}{path}", timeout=30))
    root = secured.base_url.removesuffix("/fhir")
    for path in OTHER_PATHS:
        response = requests.get(f"{root}{path}", timeout=30)
        assert response.status_code == 404, (path, response.status_code, response.text[:200])


# --- callers with bad credentials -----------------------------------------------------------------


def _hs256_with_public_key(key: SigningKey) -> str:
    """Key confusion: HMAC "signed" with the server's public key as the shared secret."""

    def part(value: dict[str, Any] | bytes) -> str:
        raw = value if isinstance(value, bytes) else json.dumps(value).encode()
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    now = int(time.time())
    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": "x", "exp": now + 300, "iat": now}
    signing_input = f"{part({'alg': 'HS256', 'kid': key.kid})}.{part(claims)}"
    secret = json.dumps(key.jwks()).encode()
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{part(signature)}"


BAD_TOKENS = {
    "another-key-same-kid": lambda s: SigningKey(kid=s.key.kid).mint(),
    "another-key-unknown-kid": lambda s: SigningKey().mint(),
    "expired": lambda s: s.key.mint(lifetime=-300),
    "wrong-audience": lambda s: s.key.mint(audience="some-other-api"),
    "wrong-issuer": lambda s: s.key.mint(issuer="https://evil.example/idp"),
    "alg-none": lambda s: unsigned_token(
        {"iss": ISSUER, "aud": AUDIENCE, "sub": "x", "exp": int(time.time()) + 300}
    ),
    "hs256-with-public-key": lambda s: _hs256_with_public_key(s.key),
    "not-a-jwt": lambda s: "opensesame",
}


@pytest.mark.parametrize("flaw", sorted(BAD_TOKENS))
def test_a_bad_token_is_refused(secured: Secured, flaw: str) -> None:
    token = BAD_TOKENS[flaw](secured)
    response = requests.get(
        f"{secured.base_url}/Patient?_count=1", headers=secured.headers(token), timeout=30
    )
    _assert_refused(response)
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]


def test_a_valid_token_without_the_scope_is_forbidden(secured: Secured) -> None:
    for scope in (None, "patient/*.read", "openid profile"):
        response = requests.get(
            f"{secured.base_url}/Patient?_count=1",
            headers=secured.headers(secured.key.mint(scope=scope)),
            timeout=30,
        )
        assert response.status_code == 403, (scope, response.text)  # RFC 6750 insufficient_scope
        assert 'error="insufficient_scope"' in response.headers["WWW-Authenticate"]
        assert "entry" not in response.json()


def test_basic_auth_is_not_a_bearer_token(secured: Secured) -> None:
    response = requests.get(
        f"{secured.base_url}/Patient?_count=1", auth=("admin", "admin"), timeout=30
    )
    _assert_refused(response)


def test_a_valid_token_is_let_in(secured: Secured) -> None:
    response = requests.get(
        f"{secured.base_url}/Patient?_count=1", headers=secured.headers(), timeout=30
    )
    assert response.status_code == 200, response.text
    assert response.json()["resourceType"] == "Bundle"


# --- the adapter's own commands -------------------------------------------------------------------


def _patients_with(secured: Secured, pnr: str) -> int:
    return patients_with(secured.base_url, pnr, headers=secured.headers())


def test_import_without_credentials_is_refused(secured: Secured, tmp_path: Path) -> None:
    events, pnr = write_events(tmp_path / "events.csv")
    result = sip_fhir(tmp_path / "data", secured.base_url, "import", str(events))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Unauthorized" in result.stdout + result.stderr
    assert "väntar i utkorgen" in result.stdout  # kept for `sync`, not lost
    assert _patients_with(secured, pnr) == 0


def test_bearer_mode_imports_and_checks(secured: Secured, tmp_path: Path) -> None:
    events, pnr = write_events(tmp_path / "events.csv")
    auth = {"SIP_FHIR_AUTH": "bearer", "SIP_FHIR_TOKEN": secured.key.mint()}
    check = sip_fhir(tmp_path / "data", secured.base_url, "server", "check", **auth)
    assert check.returncode == 0, check.stdout + check.stderr
    result = sip_fhir(tmp_path / "data", secured.base_url, "import", str(events), **auth)
    assert result.returncode == 0, result.stdout + result.stderr
    assert _patients_with(secured, pnr) == 1

    expired = {**auth, "SIP_FHIR_TOKEN": secured.key.mint(lifetime=-300)}
    again, pnr2 = write_events(tmp_path / "events2.csv")
    refused = sip_fhir(tmp_path / "data2", secured.base_url, "import", str(again), **expired)
    assert refused.returncode == 1 and "Expired JWT" in refused.stdout + refused.stderr
    assert _patients_with(secured, pnr2) == 0


def test_oauth2_mode_fetches_a_token_and_imports(
    secured: Secured, idp: TokenEndpoint, tmp_path: Path
) -> None:
    auth = {
        "SIP_FHIR_AUTH": "oauth2",
        "SIP_FHIR_OAUTH2_TOKEN_URL": idp.url,
        "SIP_FHIR_OAUTH2_CLIENT_ID": CLIENT_ID,
        "SIP_FHIR_OAUTH2_CLIENT_SECRET": CLIENT_SECRET,
        "SIP_FHIR_OAUTH2_SCOPE": SCOPE,
    }
    issued = idp.issued
    events, pnr = write_events(tmp_path / "events.csv")
    result = sip_fhir(tmp_path / "data", secured.base_url, "import", str(events), **auth)
    assert result.returncode == 0, result.stdout + result.stderr
    assert idp.issued > issued
    assert _patients_with(secured, pnr) == 1

    wrong = {**auth, "SIP_FHIR_OAUTH2_CLIENT_SECRET": "guessed"}
    again, pnr2 = write_events(tmp_path / "events2.csv")
    refused = sip_fhir(tmp_path / "data2", secured.base_url, "import", str(again), **wrong)
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "invalid_client" in refused.stdout + refused.stderr
    assert _patients_with(secured, pnr2) == 0


# --- HAPI's own work ------------------------------------------------------------------------------


@pytest.fixture
def listener() -> Iterator[tuple[str, list[str]]]:
    received: list[str] = []

    class Hook(BaseHTTPRequestHandler):
        def do_PUT(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            received.append(self.rfile.read(length).decode())
            self.send_response(200)
            self.end_headers()

        do_POST = do_PUT

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook", received
    finally:
        server.shutdown()
        server.server_close()


def test_rest_hook_delivery_still_works(secured: Secured, listener: tuple[str, list[str]]) -> None:
    url, received = listener
    value = f"hook-{uuid.uuid4().hex}"
    headers = {**secured.headers(), "Content-Type": "application/fhir+json"}
    subscription = {
        "resourceType": "Subscription",
        "status": "requested",
        "reason": "security test",
        "criteria": f"Task?identifier={TEST_SYSTEM}|{value}",
        "channel": {"type": "rest-hook", "endpoint": url, "payload": "application/fhir+json"},
    }
    made = requests.post(
        f"{secured.base_url}/Subscription", json=subscription, headers=headers, timeout=30
    )
    assert made.status_code == 201, made.text
    sub_url = made.headers["Location"].split("/_history")[0]
    deadline = time.monotonic() + 60
    while requests.get(sub_url, headers=secured.headers(), timeout=30).json()["status"] != "active":
        assert time.monotonic() < deadline, "subscription never became active"
        time.sleep(1)
    task = {
        "resourceType": "Task",
        "identifier": [{"system": TEST_SYSTEM, "value": value}],
        "status": "requested",
        "intent": "order",
    }
    requests.post(
        f"{secured.base_url}/Task", json=task, headers=headers, timeout=30
    ).raise_for_status()
    deadline = time.monotonic() + 90
    while not any(value in body for body in received):
        assert time.monotonic() < deadline, "no rest-hook delivery within 90 s"
        time.sleep(1)
    requests.delete(sub_url, headers=secured.headers(), timeout=30)


# --- a mistake in the settings --------------------------------------------------------------------


SETTING_MISTAKES = {
    "misspelt-mode": (
        {"HAPI_AUTH": "jtw"},
        "HAPI_AUTH must be 'none' or 'jwt', not 'jtw'",
    ),
    "no-keys": (
        {"HAPI_AUTH": "jwt", "HAPI_JWT_ISSUER": ISSUER, "HAPI_JWT_AUDIENCE": AUDIENCE},
        "HAPI_AUTH=jwt needs HAPI_JWT_JWKS_FILE or HAPI_JWT_JWKS_URL",
    ),
    "no-audience": (
        {
            "HAPI_AUTH": "jwt",
            "HAPI_JWT_JWKS_URL": "https://idp.example/jwks",
            "HAPI_JWT_ISSUER": ISSUER,
        },
        "HAPI_AUTH=jwt needs HAPI_JWT_AUDIENCE",
    ),
}


@pytest.mark.parametrize("mistake", sorted(SETTING_MISTAKES))
def test_a_settings_mistake_stops_the_start_instead_of_running_open(
    mistake: str, tmp_path: Path
) -> None:
    settings, message = SETTING_MISTAKES[mistake]
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("HAPI_")},
        **settings,
        "HAPI_PORT": str(free_port()),
        "HAPI_DATA_DIR": str(tmp_path / "data"),
    }
    try:
        started = run_hapi("start", env, HAPI_START_TIMEOUT)
        assert started.returncode != 0, started.stdout
        assert message in started.stderr
        assert listening_addresses(int(env["HAPI_PORT"])) == []
    finally:
        run_hapi("stop", env, 120)
