"""A recording stand-in for the two Matrix endpoints a connector's health asks.

The fleet suite judges CONN.3 through the fleet under test: it writes a roster whose
``connector`` block names this server, the fleet makes its connector and asks its health,
and the stand-in records what reached it. Written from the client-server API spec, for tests:
a threaded HTTP server on 127.0.0.1 (port 0, read back), listening before :meth:`start`
returns (so no wait is needed).

- ``GET /_matrix/client/versions``: the spec versions, with or without a token;
- ``GET /_matrix/client/{v3,r0}/account/whoami``: the user a known access token belongs to;
  401 ``M_MISSING_TOKEN`` without one, 401 ``M_UNKNOWN_TOKEN`` for another;
- anything else: 404 ``M_UNRECOGNIZED`` (recorded like the rest).

The access token of a request is recorded only as which known user it names (or none), never
as text: what the stand-in records can go into a failure message.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

SPEC_VERSIONS = ("v1.1", "v1.2", "v1.3", "v1.4", "v1.5", "v1.6", "v1.11")
WHOAMI_PATHS = ("/_matrix/client/v3/account/whoami", "/_matrix/client/r0/account/whoami")
VERSIONS_PATH = "/_matrix/client/versions"
NO_TOKEN, UNKNOWN_TOKEN = "(no token)", "(an unknown token)"


@dataclass(frozen=True, slots=True)
class Seen:
    """One request, as the stand-in received it."""

    method: str
    path: str  # without the query
    token_of: str  # the user id its bearer token belongs to, NO_TOKEN or UNKNOWN_TOKEN

    def __str__(self) -> str:
        return f"{self.method} {self.path} (token: {self.token_of})"


class MatrixStandIn:
    """The server and what it saw; a context manager that starts and stops it."""

    def __init__(self, users: Mapping[str, str]) -> None:
        """``users``: access token -> the user id it belongs to."""
        self._users = dict(users)
        self._lock = threading.Lock()
        self._seen: list[Seen] = []
        handler = type("Handler", (_Handler,), {"standin": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)  # bound and listening
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def seen(self) -> list[Seen]:
        with self._lock:
            return list(self._seen)

    def start(self) -> MatrixStandIn:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> MatrixStandIn:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def answer(self, method: str, target: str, authorization: str | None) -> tuple[int, Any]:
        """The status and JSON body for one request, recorded."""
        path = urlsplit(target).path
        token = (authorization or "").removeprefix("Bearer ").strip()
        owner = self._users.get(token) if token else None
        token_of = owner or (UNKNOWN_TOKEN if token else NO_TOKEN)
        with self._lock:
            self._seen.append(Seen(method, path, token_of))
        if method == "GET" and path == VERSIONS_PATH:
            return HTTPStatus.OK, {"versions": list(SPEC_VERSIONS), "unstable_features": {}}
        if method == "GET" and path in WHOAMI_PATHS:
            if owner is not None:
                return HTTPStatus.OK, {"user_id": owner, "device_id": "STANDIN", "is_guest": False}
            if not token:
                return HTTPStatus.UNAUTHORIZED, _error("M_MISSING_TOKEN", "Missing access token")
            return HTTPStatus.UNAUTHORIZED, {
                **_error("M_UNKNOWN_TOKEN", "Unknown access token"),
                "soft_logout": False,
            }
        return HTTPStatus.NOT_FOUND, _error("M_UNRECOGNIZED", "Unrecognized request")


def _error(errcode: str, error: str) -> dict[str, str]:
    return {"errcode": errcode, "error": error}


class _Handler(BaseHTTPRequestHandler):
    standin: MatrixStandIn
    protocol_version = "HTTP/1.1"
    timeout = 30  # an idle kept-alive connection is closed after this

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet: the tests read ``seen``

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_PUT(self) -> None:
        self._serve("PUT")

    def _serve(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        status, body = self.standin.answer(method, self.path, self.headers.get("Authorization"))
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
