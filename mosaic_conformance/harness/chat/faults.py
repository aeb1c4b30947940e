"""The one fault injector of the connector suite: an HTTP reverse proxy on loopback in front of
any chat server (a Matrix homeserver, the Discord stand-in).

It injects the faults a real network has, and counts each one where it lands, so that a test
can prove its faults fired:

- an answer lost after the request took effect (a send's, for CONN.6; the next answer that
  brings messages, so that a dropped connection lands where it costs something, for CONN.11);
- open connections cut, mid-request or idle;
- 5xx answers after the request took effect, 429 answers before (in the server's own words:
  a :class:`Dialect` per kind of server);
- a half-open link: connections stay open and accepted, but every byte is swallowed and
  nothing is closed, as after a NAT or Wi-Fi change; only a client's own read timeout ends it;
- an outage: the server stays up (the operator goes on posting), but the connectors reach
  nothing, every connection refused, until it ends;
- reads held on their way to the server (a :class:`~.target.ReadHold`, which counts them),
  for as long as the suite says.

Requests are forwarded one by one, bodies buffered.
"""

from __future__ import annotations

import collections
import contextlib
import json
import re
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

from ...wait import NotReady, wait_for
from .target import ReadHold

UPSTREAM_TIMEOUT_S = 120.0  # longer than any long-poll a connector may hold
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}
RETRY_AFTER_S = 0.2  # what a 429 from the proxy asks a connector to wait
# A half-open link or an outage lasts until it has caught a connector at least once, or this
# long: a connector that polls without keeping its connections open meets it too.
LANDING_WAIT_S = 15.0

# What the proxy counts, each where it happens.
ANSWER_LOST = "answer_lost"  # a send's answer dropped after the server stored it
MESSAGES_CUT = "messages_cut"  # an answer bringing messages cut off, the connection with it
CONNECTION_CUT = "connection_cut"  # an open connection cut
ANSWER_REPLACED = "answer_replaced"  # a 5xx or 429 given in the server's place
SWALLOWED = "swallowed"  # a request or an answer swallowed by a half-open connection
REFUSED = "refused"  # a connection refused (or cut) during an outage


@dataclass(frozen=True, slots=True)
class Dialect:
    """What the proxy needs to know of the server behind it."""

    name: str
    rate_limited: Callable[[float], tuple[bytes, dict[str, str]]]  # retry after -> body, headers
    # Whether an answer (method, path, body) brings messages a connector must not miss.
    brings_messages: Callable[[str, str, bytes], bool]


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return None


def _matrix_rate_limited(retry_after: float) -> tuple[bytes, dict[str, str]]:
    body = {
        "errcode": "M_LIMIT_EXCEEDED",
        "error": "Too many requests (from the suite's proxy)",
        "retry_after_ms": int(retry_after * 1000),
    }
    return json.dumps(body).encode(), {"Retry-After": "1"}


def _matrix_brings_messages(method: str, path: str, body: bytes) -> bool:
    if method != "GET" or not path.endswith("/sync"):
        return False
    rooms = (_json(body) or {}).get("rooms", {}).get("join", {})
    return any(room.get("timeline", {}).get("events") for room in rooms.values())


def _discord_rate_limited(retry_after: float) -> tuple[bytes, dict[str, str]]:
    body = {"message": "You are being rate limited.", "retry_after": retry_after, "global": False}
    return json.dumps(body).encode(), {"Retry-After": "1", "X-RateLimit-Scope": "user"}


def _discord_brings_messages(method: str, path: str, body: bytes) -> bool:
    listed = _json(body)
    is_read = method == "GET" and re.search(r"/channels/\d+/messages$", path) is not None
    return is_read and isinstance(listed, list) and bool(listed)


MATRIX = Dialect("matrix", _matrix_rate_limited, _matrix_brings_messages)
DISCORD = Dialect("discord", _discord_rate_limited, _discord_brings_messages)


@dataclass(frozen=True, slots=True)
class _Fault:
    """One answer the proxy gives in the server's place, to the first request that matches."""

    status: int  # 0: no answer at all (the connection is closed)
    method: str | None  # None: any method
    path: re.Pattern[str] | None  # None: any path
    lose: bool = False  # no answer at all: the connection is closed
    retry_after: float = RETRY_AFTER_S  # a 429's

    def matches(self, method: str, path: str) -> bool:
        return (self.method is None or self.method == method) and (
            self.path is None or self.path.search(path) is not None
        )


class FaultyProxy:
    """Forwards ``http://127.0.0.1:PORT/...`` to ``upstream()`` (read at each request, so the
    server may move, e.g. after a restart)."""

    def __init__(self, upstream: Callable[[], str], dialect: Dialect) -> None:
        self._upstream = upstream
        self.dialect = dialect
        self._lock = threading.Lock()
        self._faults: list[_Fault] = []  # armed, each used once, in order
        self._cut_message_answers = 0  # armed: cut the next answers that bring messages
        self._whole_since_cut = True  # an answer bringing messages passed whole since the cut
        self._open: set[socket.socket] = set()
        self._dead: set[socket.socket] = set()  # half-open: swallow whatever passes
        self._half_open = False  # new connections are dead too
        self._refusing = False  # an outage
        self._release = threading.Event()  # ends the hold of the dead connections
        self._holds: list[tuple[ReadHold, str, re.Pattern[str]]] = []  # (hold, method, path)
        self._counts: collections.Counter[str] = collections.Counter()
        self._http = httpx.Client(timeout=UPSTREAM_TIMEOUT_S, trust_env=False)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="faulty-proxy",
            daemon=True,
        )
        self._thread.start()

    @property
    def url(self) -> str:
        port: int = self._server.server_address[1]
        return f"http://127.0.0.1:{port}"

    def counts(self) -> dict[str, int]:
        """How often each fault has landed so far (the names above)."""
        with self._lock:
            return dict(self._counts)

    def _count(self, what: str, n: int = 1) -> None:
        with self._lock:
            self._counts[what] += n

    # --- arming faults ----------------------------------------------------------------------

    def lose_next_response(self, method: str, path_pattern: str, count: int = 1) -> None:
        """The next ``count`` ``method`` requests whose path matches reach the server; their
        answers are dropped and their connections closed."""
        fault = _Fault(0, method.upper(), re.compile(path_pattern), lose=True)
        with self._lock:
            self._faults.extend([fault] * count)

    def fail_next(
        self,
        status: int,
        count: int,
        method: str | None = None,
        path_pattern: str | None = None,
        *,
        retry_after: float = RETRY_AFTER_S,
    ) -> None:
        """Answer the next ``count`` matching requests with ``status``: a 5xx once the server
        has handled the request (its own answer is thrown away), a 429 without forwarding."""
        if not (status == 429 or 500 <= status <= 599):
            raise ValueError(f"the proxy answers 429 or a 5xx, not {status}")
        pattern = re.compile(path_pattern) if path_pattern else None
        fault = _Fault(status, method.upper() if method else None, pattern, retry_after=retry_after)
        with self._lock:
            self._faults.extend([fault] * count)

    def cut_next_message_answer(self) -> None:
        """Cut the next answer that brings messages (the server has handed them out; the
        connector never gets them), and its connection with it.

        Armed once the cut armed before has landed and the connector got messages whole
        again (or ``LANDING_WAIT_S`` passed): cuts that piled up would land back to back on a
        connector's retries, judging its backoff after many failures in a row instead of its
        recovery from each, and a connector that starts over after a cut (forgetting its
        ``since``) might then by chance ask for just what it had not delivered yet."""
        with contextlib.suppress(NotReady):  # the test says if it did not land, with its count
            wait_for(
                self._recovered_from_cuts,
                what="the cut armed before to land, and messages to pass whole after it",
                timeout=LANDING_WAIT_S,
            )
        with self._lock:
            self._cut_message_answers += 1

    def _recovered_from_cuts(self) -> bool:
        with self._lock:
            return self._cut_message_answers == 0 and self._whole_since_cut

    def hold(self, hold: ReadHold, method: str, path_pattern: str) -> None:
        """Pass each ``method`` request whose path matches through ``hold`` before it is
        forwarded (released by :meth:`clear_faults`)."""
        with self._lock:
            self._holds.append((hold, method.upper(), re.compile(path_pattern)))

    def drop_connections(self) -> int:
        """Cut every connection open now, mid-request or idle; how many there were."""
        with self._lock:
            victims, self._open = self._open, set()
        for conn in victims:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        self._count(CONNECTION_CUT, len(victims))
        return len(victims)

    @contextlib.contextmanager
    def half_open(self) -> Iterator[None]:
        """While the context lasts, the link is half-open: every connection open now, and
        every one accepted meanwhile, stays open and swallows whatever passes (requests and
        answers), and is never closed by the proxy. Connections made later work."""
        before = self.counts().get(SWALLOWED, 0)
        with self._lock:
            self._dead |= self._open
            self._half_open = True
        try:
            yield
            self._wait_for_landing(SWALLOWED, before)
        finally:
            with self._lock:
                self._half_open = False

    @contextlib.contextmanager
    def outage(self) -> Iterator[None]:
        """While the context lasts, the server cannot be reached: open connections are cut,
        and every new one is closed at once."""
        before = self.counts().get(REFUSED, 0)
        with self._lock:
            self._refusing = True
        self._count(REFUSED, self.drop_connections())
        try:
            yield
            self._wait_for_landing(REFUSED, before)
        finally:
            with self._lock:
                self._refusing = False

    def _wait_for_landing(self, what: str, before: int) -> None:
        with contextlib.suppress(NotReady):  # the test says it did not land, with its count
            wait_for(
                lambda: self.counts().get(what, 0) > before,
                what=f"the {what} fault to land",
                timeout=LANDING_WAIT_S,
            )

    def clear_faults(self) -> None:
        """Disarm every fault not used yet, and let the half-open connections and the held
        reads go."""
        with self._lock:
            self._faults.clear()
            self._cut_message_answers = 0
            self._whole_since_cut = True
            self._half_open = self._refusing = False
            held, self._dead = self._dead, set()
            release, self._release = self._release, threading.Event()
            holds, self._holds = self._holds, []
        release.set()
        for read_hold, _, _ in holds:
            read_hold.release()
        for conn in held:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self.clear_faults()
        self._server.shutdown()
        self._server.server_close()
        self.drop_connections()
        self._thread.join(timeout=5)
        self._http.close()

    # --- serving ----------------------------------------------------------------------------

    def _take_fault(self, method: str, path: str) -> _Fault | None:
        """The first armed fault this request matches, used up."""
        with self._lock:
            for index, fault in enumerate(self._faults):
                if fault.matches(method, path):
                    del self._faults[index]
                    return fault
        return None

    def _take_message_cut(self, method: str, path: str, body: bytes) -> bool:
        """Whether to cut this answer; also notes an answer bringing messages passing whole
        after a cut (only then is an answer read for messages, when none is armed)."""
        with self._lock:
            if not self._cut_message_answers and self._whole_since_cut:
                return False
        if not self.dialect.brings_messages(method, path, body):
            return False
        with self._lock:
            if not self._cut_message_answers:
                self._whole_since_cut = True
                return False
            self._cut_message_answers -= 1
            self._whole_since_cut = False
            return True

    def _pass_holds(self, method: str, path: str) -> None:
        with self._lock:
            holds = [h for h, m, p in self._holds if m == method and p.search(path)]
        for read_hold in holds:
            read_hold.pass_through()

    def _is_dead(self, conn: socket.socket) -> bool:
        with self._lock:
            return conn in self._dead

    def _hold(self) -> None:
        """Swallowed: keep the connection open, saying nothing, until the scenario ends."""
        self._count(SWALLOWED)
        with self._lock:
            release = self._release
        release.wait()

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                # Headers and body go out in two writes: without this, Nagle's algorithm and
                # the client's delayed ACK add ~40 ms to every answer.
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                with proxy._lock:
                    proxy._open.add(self.connection)
                    if proxy._half_open:
                        proxy._dead.add(self.connection)

            def handle(self) -> None:
                with proxy._lock:
                    refused = proxy._refusing
                if refused:
                    proxy._count(REFUSED)
                    with contextlib.suppress(OSError):
                        self.connection.shutdown(socket.SHUT_RDWR)
                    return
                super().handle()

            def finish(self) -> None:
                with proxy._lock:
                    proxy._open.discard(self.connection)
                    proxy._dead.discard(self.connection)
                with contextlib.suppress(OSError):
                    super().finish()

            def log_message(self, format: str, *args: object) -> None:
                pass  # quiet: the suite reports what matters

            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                if proxy._is_dead(self.connection):
                    self.close_connection = True
                    proxy._hold()  # the request never reaches the server
                    return
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
                path = self.path.split("?", 1)[0]
                proxy._pass_holds(self.command, path)
                fault = proxy._take_fault(self.command, path)
                if fault is not None and fault.status == 429:
                    proxy._count(ANSWER_REPLACED)
                    limited, limited_headers = proxy.dialect.rate_limited(fault.retry_after)
                    limited_headers = {"Content-Type": "application/json", **limited_headers}
                    self._answer(429, limited, limited_headers)
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
                if proxy._is_dead(self.connection):
                    self.close_connection = True
                    proxy._hold()  # the answer never reaches the connector
                    return
                if fault is not None and fault.lose:
                    proxy._count(ANSWER_LOST)
                    self._cut()  # the request took effect; its answer is lost
                    return
                if fault is not None:  # a 5xx: the request took effect; its answer is lost
                    proxy._count(ANSWER_REPLACED)
                    text = f"{fault.status} from the proxy: the server's answer was lost\n"
                    self._answer(fault.status, text.encode(), {"Content-Type": "text/plain"})
                    return
                if proxy._take_message_cut(self.command, path, answer.content):
                    proxy._count(MESSAGES_CUT)
                    self._cut()
                    return
                headers = {
                    key: value
                    for key, value in answer.headers.items()
                    if key.lower() not in HOP_BY_HOP | {"content-encoding"}
                }
                self._answer(answer.status_code, answer.content, headers)

            def _cut(self) -> None:
                self.close_connection = True
                with contextlib.suppress(OSError):
                    self.connection.shutdown(socket.SHUT_RDWR)

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
