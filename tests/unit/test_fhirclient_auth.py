"""Credentials: static bearer, OAuth2 client credentials (fetch, reuse, renew), mutual TLS."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest
import requests
import responses

from adapter.fhirclient import AuthError, FatalError, FhirClient, TemporaryError
from adapter.fhirclient.auth import ClientCredentials, build_auth
from adapter.settings import EndpointSettings
from tests.support.clock import FakeTime

BASE = "https://fhir.test/fhir"
TOKEN_URL = "https://idp.test/oauth2/token"
OAUTH2 = {
    "auth": "oauth2",
    "oauth2_token_url": TOKEN_URL,
    "oauth2_client_id": "sip-fhir",
    "oauth2_client_secret": "s3cret",
    "oauth2_scope": "system/*.write",
}


def make_client(fake_time: FakeTime, **settings: Any) -> FhirClient:
    endpoint = EndpointSettings(base_url=BASE, **settings)
    return FhirClient(endpoint, sleep=fake_time.sleep, clock=fake_time.clock)


def token_response(access_token: str, expires_in: int | None = 300) -> dict[str, Any]:
    body: dict[str, Any] = {"access_token": access_token, "token_type": "Bearer"}
    if expires_in is not None:
        body["expires_in"] = expires_in
    return body


def bearer_of(call: Any) -> str:
    return str(call.request.headers["Authorization"])


def fhir_calls() -> list[Any]:
    return [c for c in responses.calls if c.request.url.startswith(BASE)]


def token_calls() -> list[Any]:
    return [c for c in responses.calls if c.request.url == TOKEN_URL]


@responses.activate
def test_static_bearer_token_is_sent(fake_time: FakeTime) -> None:
    responses.get(f"{BASE}/Patient/1", json={"resourceType": "Patient", "id": "1"})

    make_client(fake_time, auth="bearer", token="abc123").read("Patient", "1")
    assert bearer_of(responses.calls[0]) == "Bearer abc123"


@responses.activate
def test_oauth2_token_is_fetched_once_and_reused(fake_time: FakeTime) -> None:
    responses.post(TOKEN_URL, json=token_response("tok-1"))
    responses.get(f"{BASE}/Patient/1", json={"resourceType": "Patient", "id": "1"})

    client = make_client(fake_time, **OAUTH2)
    client.read("Patient", "1")
    client.read("Patient", "1")
    assert [bearer_of(c) for c in fhir_calls()] == ["Bearer tok-1", "Bearer tok-1"]
    assert len(token_calls()) == 1
    sent = token_calls()[0].request
    assert parse_qs(sent.body) == {
        "grant_type": ["client_credentials"],
        "scope": ["system/*.write"],
    }
    basic = base64.b64decode(sent.headers["Authorization"].removeprefix("Basic ")).decode()
    assert basic == "sip-fhir:s3cret"


@responses.activate
def test_oauth2_token_is_renewed_shortly_before_expiry(fake_time: FakeTime) -> None:
    responses.post(TOKEN_URL, json=token_response("tok-1", expires_in=300))
    responses.post(TOKEN_URL, json=token_response("tok-2", expires_in=300))
    responses.get(f"{BASE}/Patient/1", json={"resourceType": "Patient", "id": "1"})
    client = make_client(fake_time, **OAUTH2)

    client.read("Patient", "1")
    fake_time.now += 239  # 61 s left: still outside the 60 s leeway
    client.read("Patient", "1")
    fake_time.now += 2  # 59 s left: renew before sending
    client.read("Patient", "1")
    assert [bearer_of(c) for c in fhir_calls()] == [
        "Bearer tok-1",
        "Bearer tok-1",
        "Bearer tok-2",
    ]


@responses.activate
def test_oauth2_token_is_renewed_once_after_a_401(fake_time: FakeTime) -> None:
    responses.post(TOKEN_URL, json=token_response("revoked"))
    responses.post(TOKEN_URL, json=token_response("fresh"))
    responses.get(f"{BASE}/Patient/1", status=401)
    responses.get(f"{BASE}/Patient/1", json={"resourceType": "Patient", "id": "1"})

    assert make_client(fake_time, **OAUTH2).read("Patient", "1")["id"] == "1"
    assert [bearer_of(c) for c in fhir_calls()] == ["Bearer revoked", "Bearer fresh"]
    assert fake_time.sleeps == []  # a renewal, not a retry


@responses.activate
def test_a_second_401_is_an_auth_error(fake_time: FakeTime) -> None:
    responses.post(TOKEN_URL, json=token_response("tok"))
    responses.get(f"{BASE}/Patient/1", status=401, json={"error_description": "Fel audience"})

    with pytest.raises(AuthError, match="Fel audience"):
        make_client(fake_time, **OAUTH2).read("Patient", "1")
    assert len(fhir_calls()) == 2
    assert len(token_calls()) == 2


@responses.activate
def test_token_service_refusal_is_an_auth_error_with_its_reason(fake_time: FakeTime) -> None:
    responses.post(
        TOKEN_URL,
        status=401,
        json={"error": "invalid_client", "error_description": "Okänd klient"},
    )

    with pytest.raises(AuthError, match="Okänd klient") as caught:
        make_client(fake_time, **OAUTH2).read("Patient", "1")
    assert "s3cret" not in str(caught.value)
    assert fhir_calls() == []


@responses.activate
def test_token_service_outage_is_retried(fake_time: FakeTime) -> None:
    responses.post(TOKEN_URL, status=503, body="<html>down</html>")
    responses.post(TOKEN_URL, json=token_response("tok"))
    responses.get(f"{BASE}/Patient/1", json={"resourceType": "Patient", "id": "1"})

    make_client(fake_time, **OAUTH2).read("Patient", "1")
    assert len(token_calls()) == 2
    assert len(fake_time.sleeps) == 1


@responses.activate
def test_token_http_error_without_a_response_is_a_clear_error(fake_time: FakeTime) -> None:
    # requests.HTTPError.response may be None; it used to crash with an AttributeError.
    responses.post(TOKEN_URL, body=requests.HTTPError("proxy nekade"))

    with pytest.raises(FatalError, match="Token-begäran misslyckades: proxy nekade") as caught:
        make_client(fake_time, **OAUTH2).read("Patient", "1")
    assert caught.value.request == "POST token"
    assert fhir_calls() == []


@responses.activate
def test_token_without_lifetime_is_kept_until_a_401(fake_time: FakeTime) -> None:
    responses.post(TOKEN_URL, json=token_response("tok", expires_in=None))
    responses.get(f"{BASE}/Patient/1", json={"resourceType": "Patient", "id": "1"})
    client = make_client(fake_time, **OAUTH2)

    client.read("Patient", "1")
    fake_time.now += 10 * 24 * 3600
    client.read("Patient", "1")
    assert len(token_calls()) == 1


def test_secrets_do_not_show_in_settings_or_auth() -> None:
    endpoint = EndpointSettings(base_url=BASE, **OAUTH2)
    auth = build_auth(endpoint)
    assert isinstance(auth, ClientCredentials)
    assert "s3cret" not in repr(endpoint) and "s3cret" not in str(endpoint.model_dump())


@pytest.mark.parametrize(
    ("settings", "missing"),
    [
        ({"auth": "bearer"}, "SIP_FHIR_TOKEN"),
        ({"auth": "oauth2", "oauth2_client_id": "x"}, "SIP_FHIR_OAUTH2_TOKEN_URL"),
        ({**OAUTH2, "oauth2_client_secret": None}, "SIP_FHIR_OAUTH2_CLIENT_SECRET"),
    ],
)
def test_missing_auth_settings_are_named(settings: dict[str, Any], missing: str) -> None:
    with pytest.raises(ValueError, match=missing):
        FhirClient(EndpointSettings(base_url=BASE, **settings))


# --- mutual TLS ---


@pytest.fixture
def pki(tmp_path: Path) -> dict[str, Path]:
    """Placeholder PEM files: the client only passes their paths on to requests."""
    files = {name: tmp_path / f"{name}.pem" for name in ("client_cert", "client_key", "ca_bundle")}
    for path in files.values():
        path.write_text("-----BEGIN PLACEHOLDER-----\n")
    return files


@responses.activate
def test_mtls_certificate_and_ca_reach_every_request(
    fake_time: FakeTime, pki: dict[str, Path]
) -> None:
    responses.post(TOKEN_URL, json=token_response("tok"))
    responses.get(f"{BASE}/Patient/1", json={"resourceType": "Patient", "id": "1"})

    client = make_client(fake_time, **OAUTH2, **pki)
    assert client.session.cert == (str(pki["client_cert"]), str(pki["client_key"]))
    assert client.session.verify == str(pki["ca_bundle"])
    client.read("Patient", "1")
    for call in responses.calls:  # the token endpoint too: same certificate, same CA
        assert call.request.req_kwargs["cert"] == (str(pki["client_cert"]), str(pki["client_key"]))
        assert call.request.req_kwargs["verify"] == str(pki["ca_bundle"])
    assert len(token_calls()) == 1


def test_mtls_with_one_pem_holding_certificate_and_key(pki: dict[str, Path]) -> None:
    client = FhirClient(EndpointSettings(base_url=BASE, client_cert=pki["client_cert"]))
    assert client.session.cert == str(pki["client_cert"])
    assert client.session.verify is True


def test_missing_certificate_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="SIP_FHIR_CLIENT_CERT"):
        FhirClient(EndpointSettings(base_url=BASE, client_cert=tmp_path / "saknas.pem"))


def test_temporary_error_is_the_word_for_an_unreachable_token_service(fake_time: FakeTime) -> None:
    with responses.RequestsMock() as mocked:  # nothing registered: every connection is refused
        client = make_client(fake_time, **OAUTH2, max_attempts=2)
        with pytest.raises(TemporaryError):
            client.read("Patient", "1")
        assert len(mocked.calls) == 2
