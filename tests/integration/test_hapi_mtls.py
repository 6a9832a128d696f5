"""Our HAPI server with mutual TLS (HAPI_TLS_CERT/_KEY/_CLIENT_CA) plus a bearer JWT checked against
a JWKS file (certificate and token, as SITHS deployments combine them), attacked and used for real.

Without a client certificate from the trusted CA there is no TLS session, so no HTTP answer at all,
whatever token is sent; the adapter connects with SIP_FHIR_CLIENT_CERT/_KEY, checks the server with
SIP_FHIR_CA_BUNDLE and sends SIP_FHIR_AUTH=bearer. Certificates are made by the test (its own CA).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from tests.support.secured_hapi import (
    AUDIENCE,
    ISSUER,
    SCOPE,
    Pki,
    SigningKey,
    hapi_server,
    make_pki,
    patients_with,
    sip_fhir,
    write_events,
)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


KEY = SigningKey()


@pytest.fixture(scope="module")
def mtls_url(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    directory = tmp_path_factory.mktemp("mtls-hapi")
    jwks = directory / "jwks.json"
    jwks.write_text(json.dumps(KEY.jwks()), "utf-8")
    env = {
        "HAPI_AUTH": "jwt",
        "HAPI_JWT_JWKS_FILE": str(jwks),
        "HAPI_JWT_JWKS_URL": "",
        "HAPI_JWT_ISSUER": ISSUER,
        "HAPI_JWT_AUDIENCE": AUDIENCE,
        "HAPI_JWT_REQUIRED_SCOPE": SCOPE,
        "HAPI_BIND_ADDRESS": "",
        "HAPI_TLS_CERT": str(pki.server_cert),
        "HAPI_TLS_KEY": str(pki.server_key),
        "HAPI_TLS_CLIENT_CA": str(pki.ca),
        "HAPI_PROBE_CERT": str(pki.client_cert),
        "HAPI_PROBE_KEY": str(pki.client_key),
    }
    with hapi_server(directory / "data", env) as base_url:
        yield base_url


def _client(pki: Pki) -> dict[str, Any]:
    """Certificate, CA and a valid token: everything a legitimate client has."""
    return {
        "cert": (str(pki.client_cert), str(pki.client_key)),
        "verify": str(pki.ca),
        "headers": {"Authorization": f"Bearer {KEY.mint()}"},
    }


def _token() -> dict[str, str]:
    return {"Authorization": f"Bearer {KEY.mint()}"}


def test_without_a_client_certificate_there_is_no_answer(mtls_url: str, pki: Pki) -> None:
    with pytest.raises(requests.exceptions.ConnectionError):  # SSLError or reset in the handshake
        requests.get(
            f"{mtls_url}/Patient?_count=1", verify=str(pki.ca), headers=_token(), timeout=30
        )


def test_a_self_made_certificate_with_the_right_name_is_refused(mtls_url: str, pki: Pki) -> None:
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(
            f"{mtls_url}/Patient?_count=1",
            cert=(str(pki.rogue_cert), str(pki.rogue_key)),
            verify=str(pki.ca),
            headers=_token(),
            timeout=30,
        )


def test_plain_http_on_the_port_gets_no_data(mtls_url: str) -> None:
    parts = urlsplit(mtls_url)
    response = requests.get(
        f"http://{parts.netloc}{parts.path}/Patient?_count=1", headers=_token(), timeout=30
    )
    assert response.status_code == 400  # Tomcat: "This combination of host and port requires TLS."
    assert "resourceType" not in response.text


def test_metadata_needs_the_certificate_too(mtls_url: str, pki: Pki) -> None:
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(f"{mtls_url}/metadata", verify=str(pki.ca), timeout=30)
    statement = requests.get(f"{mtls_url}/metadata", timeout=30, **_client(pki))
    assert statement.status_code == 200
    assert statement.json()["resourceType"] == "CapabilityStatement"


def test_adapter_with_its_certificate_checks_and_imports(
    mtls_url: str, pki: Pki, tmp_path: Path
) -> None:
    tls = {
        "SIP_FHIR_AUTH": "bearer",
        "SIP_FHIR_TOKEN": KEY.mint(),
        "SIP_FHIR_CLIENT_CERT": str(pki.client_cert),
        "SIP_FHIR_CLIENT_KEY": str(pki.client_key),
        "SIP_FHIR_CA_BUNDLE": str(pki.ca),
    }
    check = sip_fhir(tmp_path / "data", mtls_url, "server", "check", **tls)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "4.0.1" in check.stdout

    events, pnr = write_events(tmp_path / "events.csv")
    result = sip_fhir(tmp_path / "data", mtls_url, "import", str(events), **tls)
    assert result.returncode == 0, result.stdout + result.stderr
    assert patients_with(mtls_url, pnr, **_client(pki)) == 1


def test_adapter_without_a_certificate_writes_nothing(
    mtls_url: str, pki: Pki, tmp_path: Path
) -> None:
    events, pnr = write_events(tmp_path / "events.csv")
    result = sip_fhir(
        tmp_path / "data",
        mtls_url,
        "import",
        str(events),
        SIP_FHIR_CA_BUNDLE=str(pki.ca),
        SIP_FHIR_AUTH="bearer",
        SIP_FHIR_TOKEN=KEY.mint(),  # a valid token does not replace the certificate
        SIP_FHIR_MAX_ATTEMPTS="2",
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "TLS-fel" in result.stdout + result.stderr
    assert patients_with(mtls_url, pnr, **_client(pki)) == 0


def test_adapter_refuses_a_server_it_cannot_verify(mtls_url: str, pki: Pki, tmp_path: Path) -> None:
    """The other direction: without the CA bundle the adapter does not trust the server."""
    result = sip_fhir(
        tmp_path / "data",
        mtls_url,
        "server",
        "check",
        SIP_FHIR_CLIENT_CERT=str(pki.client_cert),
        SIP_FHIR_CLIENT_KEY=str(pki.client_key),
        SIP_FHIR_MAX_ATTEMPTS="1",
    )
    assert result.returncode != 0
    assert "CERTIFICATE_VERIFY_FAILED" in result.stdout + result.stderr
    assert "HAPI FHIR Server" not in result.stdout


def test_the_certificate_does_not_replace_the_token(mtls_url: str, pki: Pki) -> None:
    anonymous = requests.get(
        f"{mtls_url}/Patient?_count=1",
        cert=(str(pki.client_cert), str(pki.client_key)),
        verify=str(pki.ca),
        timeout=30,
    )
    assert anonymous.status_code == 401, anonymous.text
    assert anonymous.headers["WWW-Authenticate"].startswith("Bearer")
    assert requests.get(f"{mtls_url}/Patient?_count=1", timeout=30, **_client(pki)).ok
