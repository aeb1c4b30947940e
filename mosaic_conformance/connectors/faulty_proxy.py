"""An HTTP reverse proxy on loopback that can lose a response or cut its connections.

The suite puts it between a connector and its server to inject the faults a real network
has: a request that reached the server but whose answer was lost (CONN.6), and connections
dropped under a long-poll (CONN.11). Requests are forwarded one by one, bodies buffered.
"""

from __future__ import annotations

import contextlib
import re
import socket
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx

UPSTREAM_TIMEOUT_S = 120.0  # longer than any long-poll a connector may hold
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}


class FaultyProxy:
    """Forwards ``http://127.0.0.1:PORT/...`` to ``upstream()`` (read at each request, so the
    server may move, e.g. after a restart)."""

    def __init__(self, upstream: Callable[[], str]) -> None:
        self._upstream = upstream
        self._lock = threading.Lock()
        self._lose: list[tuple[str, re.Pattern[str]]] = []  # (method, path pattern), once each
        self._open: set[socket.socket] = set()
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

    def lose_next_response(self, method: str, path_pattern: str) -> None:
        """The next ``method`` request whose path matches reaches the server; its answer is
        dropped and the connection closed."""
        with self._lock:
            self._lose.append((method.upper(), re.compile(path_pattern)))

    def drop_connections(self) -> None:
        """Cut every connection open now, mid-request or idle."""
        with self._lock:
            victims, self._open = self._open, set()
        for conn in victims:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self.drop_connections()
        self._thread.join(timeout=5)
        self._http.close()

    def _should_lose(self, method: str, path: str) -> bool:
        with self._lock:
            for index, (lose_method, pattern) in enumerate(self._lose):
                if lose_method == method and pattern.search(path):
                    del self._lose[index]
                    return True
        return False

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
                try:
                    answer = proxy._http.request(
                        self.command, proxy._upstream() + self.path, headers=headers, content=body
                    )
                except httpx.HTTPError:
                    self.close_connection = True
                    with contextlib.suppress(OSError):
                        self.send_error(502, "the upstream server did not answer")
                    return
                if proxy._should_lose(self.command, self.path.split("?", 1)[0]):
                    self.close_connection = True  # the request took effect; its answer is lost
                    with contextlib.suppress(OSError):
                        self.connection.shutdown(socket.SHUT_RDWR)
                    return
                try:
                    self.send_response(answer.status_code)
                    for key, value in answer.headers.items():
                        if key.lower() not in HOP_BY_HOP | {"content-encoding"}:
                            self.send_header(key, value)
                    self.send_header("Content-Length", str(len(answer.content)))
                    self.end_headers()
                    self.wfile.write(answer.content)
                except OSError:
                    self.close_connection = True  # the connection was dropped meanwhile

            do_GET = do_PUT = do_POST = do_DELETE = _forward

        return Handler

    def __enter__(self) -> FaultyProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
