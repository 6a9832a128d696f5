"""A secured HAPI server of our own for the security tests: a signing key and its JWKS, tokens
minted with chosen flaws, a small OAuth2 token endpoint standing in for the region's IdP, test
certificates for mutual TLS, and the listening sockets of a port (read from /proc, no traffic)."""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import itertools
import json
import os
import random
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey

from adapter.canonical import PERSONNUMMER
from adapter.personnummer import luhn_digit
from tests.support.formats import EVENTS_LINE as EVENT_HEADER
from tests.support.hapi import hapi_env, start_hapi, stop_hapi
from tests.support.net import free_port
from tests.support.processes import SIP_FHIR

ISSUER = "https://idp.region.test/realms/sip"
AUDIENCE = "sip-fhir-hapi"
SCOPE = "system/*.*"  # SMART backend services: all resource types, read and write


@dataclass
class SigningKey:
    """An RSA key the IdP signs with; `jwks()` is what the FHIR server trusts."""

    kid: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    key: RSAKey = field(init=False)

    def __post_init__(self) -> None:
        self.key = RSAKey.generate_key(2048, parameters={"kid": self.kid, "use": "sig"})

    def jwks(self) -> dict[str, Any]:
        return KeySet([self.key]).as_dict(private=False)

    def mint(
        self,
        *,
        issuer: str = ISSUER,
        audience: str = AUDIENCE,
        lifetime: int = 300,
        subject: str = "sip-fhir-adapter",
        scope: str | None = SCOPE,
        alg: str = "RS256",
    ) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": issuer,
            "aud": audience,
            "sub": subject,
            "iat": now,
            "exp": now + lifetime,
            "jti": uuid.uuid4().hex,
        }
        if scope is not None:
            claims["scope"] = scope
        return jwt.encode({"alg": alg, "kid": self.kid, "typ": "JWT"}, claims, self.key)


def unsigned_token(claims: Mapping[str, Any]) -> str:
    """alg=none: a token anyone can write."""

    def part(value: Mapping[str, Any]) -> str:
        raw = json.dumps(value).encode()
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


@dataclass
class TokenEndpoint:
    """The IdP's two URLs: `/token`, OAuth2 client credentials (client_secret_basic or _post)
    issuing JWTs signed by `key`, and `/jwks`, the public keys the FHIR server fetches."""

    key: SigningKey
    client_id: str
    client_secret: str
    lifetime: int = 300
    issued: int = 0
    _server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}/token"

    @property
    def jwks_url(self) -> str:
        return self.url.replace("/token", "/jwks")

    def _grant(self, headers: Mapping[str, str], body: str) -> tuple[int, dict[str, Any]]:
        form = {k: v[0] for k, v in parse_qs(body).items()}
        client_id, secret = form.get("client_id"), form.get("client_secret")
        basic = headers.get("Authorization", "")
        if basic.startswith("Basic "):
            client_id, _, secret = base64.b64decode(basic[6:]).decode().partition(":")
        if form.get("grant_type") != "client_credentials":
            return 400, {"error": "unsupported_grant_type"}
        if (client_id, secret) != (self.client_id, self.client_secret):
            return 401, {"error": "invalid_client"}
        scope = form.get("scope", "")
        if set(scope.split()) - {SCOPE}:
            return 400, {"error": "invalid_scope"}
        self.issued += 1
        token = self.key.mint(subject=self.client_id, lifetime=self.lifetime, scope=scope or None)
        return 200, {"access_token": token, "token_type": "Bearer", "expires_in": self.lifetime}

    @contextmanager
    def running(self) -> Iterator[TokenEndpoint]:
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # http.server's name
                found = self.path == "/jwks"
                self._answer(200 if found else 404, endpoint.key.jwks() if found else {})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self._answer(*endpoint._grant(self.headers, self.rfile.read(length).decode()))

            def _answer(self, status: int, payload: dict[str, Any]) -> None:
                raw = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._server.shutdown()
            self._server.server_close()
            thread.join(timeout=10)


@dataclass(frozen=True)
class Pki:
    """A test CA, a server certificate for localhost and two client certificates: one from the
    CA, one self-signed with the same subject (what an attacker can make)."""

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    rogue_cert: Path
    rogue_key: Path


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> Path:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return path


def _certificate(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: x509.Name | None,
    issuer_key: ec.EllipticCurvePrivateKey,
    *,
    ca: bool = False,
    server: bool = False,
) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer or name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        ).add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
    elif not ca:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
        )
    return builder.sign(issuer_key, hashes.SHA256())


def make_pki(directory: Path) -> Pki:
    directory.mkdir(parents=True, exist_ok=True)
    pem = serialization.Encoding.PEM

    def keypair() -> ec.EllipticCurvePrivateKey:
        return ec.generate_private_key(ec.SECP256R1())

    ca_key = keypair()
    ca_cert = _certificate("sip-fhir test CA", ca_key, None, ca_key, ca=True)
    (directory / "ca.pem").write_bytes(ca_cert.public_bytes(pem))
    files: dict[str, Path] = {"ca": directory / "ca.pem"}
    for name, subject, signer, signer_key, server in (
        ("server", "localhost", ca_cert.subject, ca_key, True),
        ("client", "sip-fhir-adapter", ca_cert.subject, ca_key, False),
        ("rogue", "sip-fhir-adapter", None, None, False),
    ):
        key = keypair()
        cert = _certificate(subject, key, signer, signer_key or key, server=server)
        files[f"{name}_cert"] = directory / f"{name}.pem"
        files[f"{name}_cert"].write_bytes(cert.public_bytes(pem))
        files[f"{name}_key"] = _write_key(directory / f"{name}-key.pem", key)
    return Pki(**files)


@contextmanager
def hapi_server(data_dir: Path, env: Mapping[str, str]) -> Iterator[str]:
    """Our HAPI server on a free port with `env` (HAPI_AUTH, HAPI_TLS_*...); yields its base URL."""
    port = free_port()
    full_env = hapi_env(port, data_dir, **env)
    try:
        start_hapi(full_env)
        scheme = "https" if env.get("HAPI_TLS_CERT") else "http"
        yield f"{scheme}://localhost:{port}/fhir"
    finally:
        stop_hapi(full_env)


def listening_addresses(port: int) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    """Local addresses of the sockets in LISTEN state on `port` (from /proc/net/tcp and tcp6)."""
    found: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except FileNotFoundError:
            continue
        for line in lines:
            local, state = line.split()[1], line.split()[3]
            address, _, hex_port = local.partition(":")
            if state != "0A" or int(hex_port, 16) != port:
                continue
            raw = bytes.fromhex(address)
            # The kernel prints each 32-bit word in host (little-endian) order.
            words = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
            found.append(ipaddress.ip_address(words))
    return found


def is_loopback(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


_BIRTHS = itertools.count(random.randrange(10_000))


def write_events(path: Path) -> tuple[Path, str]:
    """One AW010 row for a fictional patient (födelsenummer 980–999, project rule)."""
    n = next(_BIRTHS)
    born = date(1930, 1, 1) + timedelta(days=n // 20)
    nine = f"{born:%y%m%d}{980 + n % 20:03d}"
    pnr = f"{born:%Y%m%d}-{nine[6:]}{luhn_digit(nine)}"
    unit = f"SE2321000057-E{uuid.uuid4().int % 10**11:011d}"
    path.write_text(f"{EVENT_HEADER}\n{pnr};2024-03-01;AW010;{unit};besök;\n", "utf-8")
    return path, pnr


def sip_fhir(
    data_dir: Path, base_url: str, *args: str, **env: str
) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SIP_FHIR_")}
    return subprocess.run(
        [SIP_FHIR, *args],
        env={
            **clean,
            "SIP_FHIR_BASE_URL": base_url,
            "SIP_FHIR_DATA_DIR": str(data_dir),
            "SIP_FHIR_MAX_RETRY_SECONDS": "10",
            **env,
        },
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def patients_with(base_url: str, pnr: str, **request: Any) -> int:
    """How many Patients the server holds with this personnummer (`request`: credentials)."""
    found = requests.post(  # POST: no personnummer in a URL
        f"{base_url}/Patient/_search",
        data={"identifier": f"{PERSONNUMMER}|{pnr.replace('-', '')}", "_summary": "count"},
        timeout=30,
        **request,
    )
    assert found.status_code == 200, found.text
    return int(found.json()["total"])
