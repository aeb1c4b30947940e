"""An HTTP reverse proxy on loopback that can lose a response, cut its connections, or answer
in the server's place.

The suite puts it between a connector and its Matrix server to inject the faults a real
network has: a request that reached the server but whose answer was lost (CONN.6), connections
dropped under a long-poll, and 5xx and 429 answers mid-stream (CONN.11). Requests are
forwarded one by one, bodies buffered.
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx

from .target import ReadHold

UPSTREAM_TIMEOUT_S = 120.0  # longer than any long-poll a connector may hold
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}
RETRY_AFTER_MS = 200  # what a 429 from the proxy asks a connector to wait


@dataclass(frozen=True, slots=True)
class _Fault:
    """One answer the proxy gives in the server's place, to the first request that matches."""

    status: int
    method: str | None  # None: any method
    path: re.Pattern[str] | None  # None: any path
    lose: bool = False  # no answer at all: the connection is closed

    def matches(self, method: str, path: str) -> bool:
        return (self.method is None or self.method == method) and (
            self.path is None or self.path.search(path) is not None
        )


class FaultyProxy:
    """Forwards ``http://127.0.0.1:PORT/...`` to ``upstream()`` (read at each request, so the
    server may move, e.g. after a restart)."""

    def __init__(self, upstream: Callable[[], str]) -> None:
        self._upstream = upstream
        self._lock = threading.Lock()
        self._faults: list[_Fault] = []  # armed, each used once, in order
        self._open: set[socket.socket] = set()
        self.faults_injected = 0  # answers given in the server's place, and cuts
        self.responses_lost = 0  # answers dropped after the server handled the request
        self._holds: list[tuple[ReadHold, str, re.Pattern[str]]] = []
        self._http = httpx.Client(timeout=UPSTREAM_TIMEOUT_S, trust_env=False)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="faulty-proxy", daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        port: int = self._server.server_address[1]
        return f"http://127.0.0.1:{port}"

    def lose_next_response(self, method: str, path_pattern: str, count: int = 1) -> None:
        """The next ``count`` ``method`` requests whose path matches reach the server; their
        answers are dropped and their connections closed (counted in ``responses_lost``)."""
        fault = _Fault(0, method.upper(), re.compile(path_pattern), lose=True)
        with self._lock:
            self._faults.extend([fault] * count)

    def hold(self, hold: ReadHold, method: str, path_pattern: str) -> None:
        """Pass each matching request through ``hold`` before it is forwarded."""
        with self._lock:
            self._holds.append((hold, method.upper(), re.compile(path_pattern)))

    def fail_next(
        self, status: int, count: int, method: str | None = None, path_pattern: str | None = None
    ) -> None:
        """Answer the next ``count`` matching requests with ``status``: a 5xx once the server
        has handled the request (its own answer is thrown away), a 429 without forwarding."""
        if not (status == 429 or 500 <= status <= 599):
            raise ValueError(f"the proxy answers 429 or a 5xx, not {status}")
        pattern = re.compile(path_pattern) if path_pattern else None
        fault = _Fault(status, method.upper() if method else None, pattern)
        with self._lock:
            self._faults.extend([fault] * count)

    def clear_faults(self) -> None:
        """Disarm every fault not used yet."""
        with self._lock:
            self._faults.clear()
            holds, self._holds = self._holds, []
        for hold, _, _ in holds:
            hold.release()

    def drop_connections(self) -> None:
        """Cut every connection open now, mid-request or idle."""
        with self._lock:
            victims, self._open = self._open, set()
            self.faults_injected += len(victims)
        for conn in victims:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self.drop_connections()
        self._thread.join(timeout=5)
        self._http.close()

    def _take_fault(self, method: str, path: str) -> _Fault | None:
        """The first armed fault this request matches, used up."""
        with self._lock:
            for index, fault in enumerate(self._faults):
                if fault.matches(method, path):
                    del self._faults[index]
                    self.faults_injected += 1
                    return fault
        return None

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                with proxy._lock:
                    proxy._open.add(self.connection)

            def finish(self) -> None:
                with proxy._lock:
                    proxy._open.discard(self.connection)
                with contextlib.suppress(OSError):
                    super().finish()

            def log_message(self, format: str, *args: object) -> None:
                pass  # quiet: the suite reports what matters

            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
                path = self.path.split("?", 1)[0]
                with proxy._lock:
                    holds = [h for h, m, p in proxy._holds if m == self.command and p.search(path)]
                for hold in holds:
                    hold.pass_through()
                fault = proxy._take_fault(self.command, path)
                if fault is not None and fault.status == 429:
                    limited = {"Content-Type": "application/json", "Retry-After": "1"}
                    self._answer(429, _rate_limited(), limited)
                    return  # refused: the server never saw it
                try:
                    answer = proxy._http.request(
                        self.command, proxy._upstream() + self.path, headers=headers, content=body
                    )
                except httpx.HTTPError:
                    self.close_connection = True
                    with contextlib.suppress(OSError):
                        self.send_error(502, "the upstream server did not answer")
                    return
                if fault is not None and fault.lose:
                    self.close_connection = True  # the request took effect; its answer is lost
                    with proxy._lock:
                        proxy.responses_lost += 1
                    with contextlib.suppress(OSError):
                        self.connection.shutdown(socket.SHUT_RDWR)
                    return
                if fault is not None:  # a 5xx: the request took effect; its answer is lost
                    text = f"{fault.status} from the proxy: the server's answer was lost\n"
                    self._answer(fault.status, text.encode(), {"Content-Type": "text/plain"})
                    return
                headers = {
                    key: value
                    for key, value in answer.headers.items()
                    if key.lower() not in HOP_BY_HOP | {"content-encoding"}
                }
                self._answer(answer.status_code, answer.content, headers)

            def _answer(self, status: int, body: bytes, headers: dict[str, str]) -> None:
                try:
                    self.send_response(status)
                    for key, value in headers.items():
                        self.send_header(key, value)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:
                    self.close_connection = True  # the connection was dropped meanwhile

            do_GET = do_PUT = do_POST = do_DELETE = _forward

        return Handler

    def __enter__(self) -> FaultyProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _rate_limited() -> bytes:
    """A Matrix 429 body (``M_LIMIT_EXCEEDED`` with ``retry_after_ms``)."""
    body = {
        "errcode": "M_LIMIT_EXCEEDED",
        "error": "Too many requests (from the suite's proxy)",
        "retry_after_ms": RETRY_AFTER_MS,
    }
    return json.dumps(body).encode()
