"""A small fault-injecting HTTP proxy on loopback, for testing the sync under a bad network.

    with FaultProxy(upstream="http://localhost:8080", faults=[Fault.OK, Fault.RESET]) as proxy:
        client = FhirClient(EndpointSettings(base_url=f"{proxy.url}/fhir"))

The n-th request gets `faults[n % len(faults)]` (a fixed schedule, so every kind of fault surely
happens in a test, however few requests it makes):
- OK: forwarded, the answer passed back.
- TOO_MANY: answered 429 with `Retry-After`, not forwarded.
- UNAVAILABLE: answered 503, not forwarded.
- RESET: the connection is reset before anything is forwarded.
- FORWARD_RESET: forwarded (the server acts on it), then the connection is reset instead of
  the answer: the client cannot know whether its transaction landed.
- STALL: nothing is forwarded and nothing answered for `stall_seconds`, then the connection is
  closed: longer than the client's read timeout, it times out.
- FORWARD_STALL: forwarded, then the answer is held back for `stall_seconds` and dropped.
- MANY_HEADERS: forwarded, the answer passed back with 120 `X-Cache` headers more, as HAPI's
  cached batch searches sent them (issue 12.1): too many for an HTTP client to accept.

One thread per connection (ThreadingHTTPServer); `counts` says how often each fault happened,
`requests` which requests came (request lines, as the server's access log would keep them).
"""

from __future__ import annotations

import http.client
import json
import socket
import struct
import threading
import time
from collections import Counter
from collections.abc import Sequence
from enum import StrEnum
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from urllib.parse import urlsplit

# Hop-by-hop headers (RFC 9110 §7.6.1) are the proxy's own business, not forwarded.
_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)


class Fault(StrEnum):
    OK = "ok"
    TOO_MANY = "429"
    UNAVAILABLE = "503"
    RESET = "reset"
    FORWARD_RESET = "forward-reset"
    STALL = "stall"
    FORWARD_STALL = "forward-stall"
    MANY_HEADERS = "many-headers"


def _outcome(text: str) -> bytes:
    issue = {"severity": "error", "code": "transient", "diagnostics": text}
    return json.dumps({"resourceType": "OperationOutcome", "issue": [issue]}).encode()


class FaultProxy:
    def __init__(
        self,
        upstream: str,
        faults: Sequence[Fault] = (Fault.OK,),
        *,
        stall_seconds: float = 3.0,
        retry_after: int = 1,
    ) -> None:
        parts = urlsplit(upstream)
        self.upstream_host = parts.hostname or "localhost"
        self.upstream_port = parts.port or 80
        self.faults = list(faults) or [Fault.OK]
        self.stall_seconds = stall_seconds
        self.retry_after = retry_after
        self.counts: Counter[Fault] = Counter()
        self.requests: list[str] = []  # "METHOD /path?query" of every request, in order
        self._lock = threading.Lock()
        self._served = 0
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> FaultProxy:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def set_faults(self, faults: Sequence[Fault]) -> None:
        with self._lock:
            self.faults = list(faults) or [Fault.OK]
            self._served = 0

    def _next_fault(self) -> Fault:
        with self._lock:
            fault = self.faults[self._served % len(self.faults)]
            self._served += 1
            self.counts[fault] += 1
            return fault

    def _forward(
        self, method: str, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        upstream = http.client.HTTPConnection(self.upstream_host, self.upstream_port, timeout=300)
        try:
            upstream.request(method, path, body=body or None, headers=headers)
            response = upstream.getresponse()
            return response.status, response.getheaders(), response.read()
        finally:
            upstream.close()

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                return  # quiet: pytest shows stderr of failing tests

            def _proxy(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
                with proxy._lock:
                    proxy.requests.append(f"{self.command} {self.path}")
                fault = proxy._next_fault()
                if fault is Fault.TOO_MANY:
                    self._answer(429, _outcome("för många anrop"), [("Retry-After", "1")])
                elif fault is Fault.UNAVAILABLE:
                    self._answer(503, _outcome("tillfälligt otillgänglig"))
                elif fault in (Fault.RESET, Fault.STALL):
                    self._reset(stall=fault is Fault.STALL)
                else:
                    status, upstream_headers, content = proxy._forward(
                        self.command, self.path, headers, body
                    )
                    if fault in (Fault.FORWARD_RESET, Fault.FORWARD_STALL):
                        self._reset(stall=fault is Fault.FORWARD_STALL)
                    else:
                        kept = [(k, v) for k, v in upstream_headers if k.lower() not in _HOP_BY_HOP]
                        if fault is Fault.MANY_HEADERS:
                            kept += [("X-Cache", f"HIT {n}") for n in range(120)]
                        self._answer(status, content, kept)

            do_GET = do_POST = do_PUT = do_DELETE = _proxy

            def _answer(
                self,
                status: int,
                content: bytes,
                headers: Sequence[tuple[str, str]] = (),
            ) -> None:
                self.send_response(status)
                for key, value in headers:
                    if key.lower() != "content-length":
                        self.send_header(key, value)
                if not any(k.lower() == "content-type" for k, _ in headers):
                    self.send_header("Content-Type", "application/fhir+json")
                self.send_header("Content-Length", str(len(content)))
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(content)
                self.close_connection = True

            def _reset(self, *, stall: bool = False) -> None:
                """Close with RST (linger 0), not FIN: the client sees 'connection reset'; with
                `stall`, only after `stall_seconds` of silence."""
                if stall:
                    time.sleep(proxy.stall_seconds)
                self.connection.setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                )
                self.connection.close()
                self.close_connection = True

        return Handler
