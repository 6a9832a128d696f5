"""Does the server deliver rest-hooks? (issue 12.2)

On the HAPI JPA starter rest-hook delivery is off by default: the server stores the adapter's
Subscriptions as `requested` and never activates them, and `subscriptions register` used to exit 0
as if all was well. Now it waits for `active` and otherwise warns, naming the server setting, and
`server check` finds out with a throwaway Subscription. Both modes of our server are tested:
"sip-fhir" delivers, "starter" does not (SIP_FHIR_TEST_HAPI_MODE).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from typer.testing import CliRunner

from adapter.canonical import TAG_ADAPTER
from adapter.cli import app
from adapter.fhirclient import FhirClient
from adapter.followup import subscriptions
from tests.support.followups import run_cli

pytestmark = pytest.mark.integration

# Past HAPI's 60 s sync for our server (register returns as soon as they are active); the
# starter never activates them.
WAIT = {"sip-fhir": "90", "starter": "8"}


class _Accept(BaseHTTPRequestHandler):
    """Takes every delivery with 200: a refused one, HAPI retries for a long time, blocking the
    server's subscription channels (seen: no Subscription activated any more)."""

    def _ok(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_PUT = do_POST = _ok

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        return


@pytest.fixture
def listener() -> Iterator[str]:
    """A loopback endpoint for the Subscriptions the test registers: all writes on the server
    (other tests' too) are delivered there while they are active."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Accept)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def probes_left(client: FhirClient) -> list[dict]:
    tag = f"{TAG_ADAPTER}|{subscriptions.PROBE_TAG}"
    return list(client.search("Subscription", {"_tag": tag}))


@pytest.fixture
def registered(fhir_client: FhirClient, listener: str, own_subscriptions: str) -> Iterator[str]:
    """The endpoint to register; the Subscriptions removed before the listener stops."""
    yield listener
    subscriptions.remove(fhir_client)


def test_server_check_reports_whether_rest_hooks_are_delivered(
    hapi_base_url: str, hapi_mode: str, fhir_client: FhirClient
) -> None:
    args = ["server", "check", "--base-url", hapi_base_url, "--hook-wait", WAIT[hapi_mode]]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output  # the server works; rest-hook is extra
    output = " ".join(result.output.split())  # rich wraps long lines
    if hapi_mode == "starter":
        assert "Rest-hook │ nej (status requested" in output
        assert subscriptions.RESTHOOK_SETTING in output
        assert "schemalagda genomgångarna" in output
    else:
        assert "Rest-hook │ ja" in output
        assert "Varning" not in output
    assert probes_left(fhir_client) == []  # the throwaway Subscription is gone


def test_register_waits_for_active_or_says_why_not(
    hapi_base_url: str,
    hapi_mode: str,
    registered: str,
    monkeypatch: pytest.MonkeyPatch,
    fhir_client: FhirClient,
) -> None:
    monkeypatch.setenv("SIP_FHIR_HOOK_SECRET", "test-hook-secret-0123456789")
    args = ("subscriptions", "register", "--endpoint", registered, "--wait", WAIT[hapi_mode])
    result = run_cli(monkeypatch, hapi_base_url, *args)
    output = " ".join(result.output.split())
    held = {s.get("status") for s in subscriptions.registered(fhir_client)}
    if hapi_mode == "starter":
        assert result.exit_code == 2, result.output
        assert held == {"requested"}
        assert f"{subscriptions.RESTHOOK_SETTING}=true" in output
        assert "gör de schemalagda genomgångarna jobbet" in output
        assert "inte aktiverat prenumerationerna inom 8 s (status: requested)" in output
    else:
        assert result.exit_code == 0, result.output
        assert held == {"active"}
        assert output.count("│ active") == len(subscriptions.CRITERIA)
        assert "Varning" not in output
