"""Connectors in any language: a small JSON-lines protocol on stdin/stdout.

A connector program is started once per connector, with the roster's ``connector`` block as
JSON in ``MOSAIC_CONNECTOR_CONFIG`` and its token in ``MATRIX_ACCESS_TOKEN`` /
``DISCORD_BOT_TOKEN``. It reads one request per line on stdin and writes one response per
request, and ``message`` events for its subscriptions, on stdout (see
``docs/validating-a-connector.md``). A ``send`` carries the message's ``key`` (its stable
idempotency key) and ``attachments``. End of stdin means close: the program answers what it
read and exits within ``CLOSE_TIMEOUT_S``.

- :class:`CommandConnector` makes such a program look like an ``OrchestratorConnector``
  (``--conformance-connector-cmd``); an error response, or a program that died, raises
  :class:`ProtocolError`, so the suite sees the defect rather than a polite result. It hands
  on every event the program writes for a subscription (after its ``unsubscribe`` too), and
  :meth:`CommandConnector.tap` shows a check every raw line of the program's output;
- ``python -m mosaic_conformance.connectors.jsonlines serve --kind matrix`` serves a Python
  connector of the default registry over the protocol.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import dataclasses
import json
import logging
import os
import queue
import shlex
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import IO, Any

from ..contract import CONNECTOR_CONFIG_ENV, CONNECTOR_KINDS
from ..secrets import redact
from .config import connector_block, connector_config
from .types import (
    ConnectorConfig,
    ConnectorHealth,
    ConnectorKind,
    Handler,
    InboundMessage,
    OrchestratorConnector,
    OutboundMessage,
    SendResult,
    Unsubscribe,
)

_log = logging.getLogger(__name__)

CONFIG_ENV = CONNECTOR_CONFIG_ENV
ANSWER_TIMEOUT_S = 120.0  # a program that answers nothing this long is taken as gone
CLOSE_TIMEOUT_S = 5.0  # from the end of its input to its exit
DRAIN_S = 3.0  # the adapter: how long requests in flight at the end of input may still take
STDERR_LINES = 20  # kept to explain a program's death
EARLY_LINES = 1000  # lines kept for the first tap


class ProtocolError(RuntimeError):
    """The program broke the protocol or died; the message says how."""


# --- the roster block as JSON -----------------------------------------------------------


def config_to_json(config: ConnectorConfig) -> str:
    return json.dumps(connector_block(config))


def config_from_json(text: str) -> ConnectorConfig:
    data = json.loads(text)
    if not isinstance(data, dict):
        raise ValueError(f"{CONFIG_ENV} must hold a JSON object, not {type(data).__name__}")
    config = connector_config(data)
    assert config is not None
    return config


def _message_from(data: Mapping[str, Any]) -> InboundMessage:
    return InboundMessage(
        id=str(data["id"]),
        text=str(data["text"]),
        sender=str(data["sender"]),
        ts=str(data["ts"]),
        thread_id=data.get("thread_id"),
    )


# --- the client: a program as an OrchestratorConnector -----------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class _Answer:
    data: dict[str, Any]
    events_before: int  # events the program wrote before this answer


class CommandConnector:
    """An ``OrchestratorConnector`` backed by a program that speaks the protocol.

    It hands on what the program says as it says it: every event of a subscription reaches
    that subscription's handler, also one the program writes after answering its
    ``unsubscribe`` (the suite judges that, CONN.8); the events written before that answer
    have reached the handler by the time ``unsubscribe()`` returns.
    """

    def __init__(
        self, argv: Sequence[str], config: ConnectorConfig, env: Mapping[str, str]
    ) -> None:
        self._kind: ConnectorKind = config.kind
        self._secrets = [v for v in env.values() if v]  # redacted from what we report
        environ = {**os.environ, **env, CONFIG_ENV: config_to_json(config)}
        self._process = subprocess.Popen(
            list(argv),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=environ,
            text=True,
            bufsize=1,
        )
        self._lock = threading.Lock()
        self._next_id = 0
        self._pending: dict[int, tuple[str, Future[_Answer]]] = {}  # request id -> (op, answer)
        self._handlers: dict[str, Handler] = {}
        # handlers of subscribe requests still in flight, by request id: the reader thread
        # registers each one as it reads the answer, before it reads the events after it
        self._subscribing: dict[int, Handler] = {}
        self._stderr: collections.deque[str] = collections.deque(maxlen=STDERR_LINES)
        self._events: queue.Queue[tuple[int, str, InboundMessage] | None] = queue.Queue()
        self._events_read = 0
        self._events_done = 0  # handed to their handler (or dropped); infinite once closed
        self._events_done_changed = threading.Condition()
        self._listeners: list[Callable[[str, str], None]] = []
        self._early: list[tuple[str, str]] = []  # lines heard before the first tap
        self._unanswered_at_exit: list[str] = []
        self.exit_problem: str | None = None  # set by close(): how the program failed to end
        self._dispatcher = threading.Thread(
            target=self._dispatch, name="connector-events", daemon=True
        )
        self._threads = [
            threading.Thread(target=self._read_stdout, name="connector-stdout", daemon=True),
            threading.Thread(target=self._read_stderr, name="connector-stderr", daemon=True),
            self._dispatcher,
        ]
        for thread in self._threads:
            thread.start()

    def __repr__(self) -> str:
        return f"CommandConnector(kind={self._kind!r}, pid={self._process.pid})"

    @property
    def kind(self) -> ConnectorKind:
        return self._kind

    @property
    def in_flight(self) -> int:
        """Requests written to the program and not answered yet."""
        with self._lock:
            return len(self._pending)

    def tap(self, listener: Callable[[str, str], None]) -> None:
        """Call ``listener(stream, line)`` with every line the program writes on ``stdout``
        and ``stderr``, raw (nothing masked): first with those it wrote before the first tap
        (up to ``EARLY_LINES``), then as they come. For a check that must see the program's
        own words."""
        with self._lock:
            early, self._early = self._early, []
            self._listeners.append(listener)
            for stream, line in early:
                listener(stream, line)

    def _heard(self, stream: str, line: str) -> None:
        with self._lock:
            if not self._listeners:
                if len(self._early) < EARLY_LINES:
                    self._early.append((stream, line))
                return
            for listener in self._listeners:
                listener(stream, line)

    def send(self, message: OutboundMessage) -> SendResult:
        wire: dict[str, Any] = {
            "text": message.text,
            "thread_id": message.thread_id,
            "attachments": list(message.attachments),
            "key": message.key,
        }
        result = self._request("send", message=wire)  # a failed request raises: a defect
        return SendResult(
            bool(result.get("delivered")), result.get("message_id"), result.get("error")
        )

    def subscribe(self, handler: Handler) -> Unsubscribe:
        subscription = str(self._request("subscribe", handler=handler)["subscription"])

        def unsubscribe() -> None:
            answer = self._answer("unsubscribe", subscription=subscription)
            if threading.current_thread() is self._dispatcher:
                return  # called from a handler: the events before it were handed on already
            with self._events_done_changed:
                self._events_done_changed.wait_for(
                    lambda: self._events_done >= answer.events_before, timeout=ANSWER_TIMEOUT_S
                )

        return unsubscribe

    def health(self) -> ConnectorHealth:
        result = self._request("health")
        return ConnectorHealth(
            bool(result.get("reachable")),
            bool(result.get("authenticated")),
            result.get("last_seen"),
            result.get("detail"),
        )

    def kill(self) -> None:
        """Kill the program without warning (SIGKILL), as a crash would; ``close`` still
        cleans up after it."""
        self._process.kill()
        self._process.wait(timeout=CLOSE_TIMEOUT_S)

    def close(self) -> None:
        """End of input: the program answers what it was asked and exits within
        ``CLOSE_TIMEOUT_S``, or is killed. ``exit_problem`` says afterwards if it did not."""
        with contextlib.suppress(OSError, ValueError):
            if self._process.stdin:
                self._process.stdin.close()  # end of stdin: the program closes
        problems = []
        try:
            self._process.wait(timeout=CLOSE_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait(timeout=CLOSE_TIMEOUT_S)
            problems.append(
                f"it did not exit within {CLOSE_TIMEOUT_S:g} s of the end of its input, and "
                "was killed"
            )
        for thread in self._threads[:2]:  # its last lines, and the requests left unanswered
            thread.join(timeout=CLOSE_TIMEOUT_S)
        self._events.put(None)
        self._dispatcher.join(timeout=CLOSE_TIMEOUT_S)
        code = self._process.returncode
        if not problems and code != 0:
            problems.append(f"it exited with status {code}")
        if self._unanswered_at_exit:
            problems.append(
                "it ended without answering " + ", ".join(sorted(self._unanswered_at_exit))
            )
        if problems and self.exit_problem is None:
            self.exit_problem = "; ".join(problems)

    def _request(self, op: str, handler: Handler | None = None, **fields: Any) -> dict[str, Any]:
        answer = self._answer(op, handler, **fields)
        result: dict[str, Any] = answer.data.get("result") or {}
        return result

    def _answer(self, op: str, handler: Handler | None = None, **fields: Any) -> _Answer:
        future: Future[_Answer] = Future()
        with self._lock:
            self._next_id += 1
            request_id = self._next_id
            self._pending[request_id] = (op, future)
            if handler is not None:
                self._subscribing[request_id] = handler
        line = json.dumps({"id": request_id, "op": op, **fields})
        try:
            assert self._process.stdin is not None
            self._process.stdin.write(line + "\n")
            self._process.stdin.flush()
        except (OSError, ValueError) as exc:
            with self._lock:
                self._pending.pop(request_id, None)
                self._subscribing.pop(request_id, None)
            raise ProtocolError(self._why_gone(f"could not write the {op} request: {exc}")) from exc
        try:
            answer = future.result(timeout=ANSWER_TIMEOUT_S)
        except FutureTimeout:
            with self._lock:
                self._pending.pop(request_id, None)
                self._subscribing.pop(request_id, None)
            raise ProtocolError(f"the connector program did not answer {op} in time") from None
        if "error" in answer.data:
            error = answer.data["error"]
            raise ProtocolError(redact(f"the connector program failed {op}: {error}"))
        return answer

    def _read_stdout(self) -> None:
        assert self._process.stdout is not None
        for line in self._process.stdout:
            self._heard("stdout", line.rstrip("\n"))
            try:
                data = json.loads(line)
            except ValueError:
                self._stderr.append(f"(not JSON on stdout) {line.rstrip()[:200]}")
                continue
            if not isinstance(data, dict):
                self._stderr.append(f"(not a JSON object on stdout) {line.rstrip()[:200]}")
            elif data.get("event") == "message":
                self._read_event(data)
            elif "id" in data:
                self._read_answer(data)
        gone = ProtocolError(self._why_gone("the connector program closed its stdout"))
        with self._lock:
            pending, self._pending = list(self._pending.values()), {}
            self._unanswered_at_exit = [op for op, _ in pending]
        for _, future in pending:
            future.set_exception(gone)

    def _read_event(self, data: Mapping[str, Any]) -> None:
        try:
            message = _message_from(data["message"])
        except (KeyError, TypeError) as exc:
            self._stderr.append(f"(an event without a whole message: {exc!r})")
            return
        with self._lock:
            self._events_read += 1
            self._events.put((self._events_read, str(data.get("subscription")), message))

    def _read_answer(self, data: dict[str, Any]) -> None:
        try:
            request_id = int(data["id"])
        except (TypeError, ValueError):
            self._stderr.append(f"(an answer to no request: id {data.get('id')!r})")
            return
        with self._lock:
            _, future = self._pending.pop(request_id, ("", None))
            handler = self._subscribing.pop(request_id, None)
            result = data.get("result")
            if handler is not None and isinstance(result, dict):
                self._handlers[str(result.get("subscription"))] = handler
            events_before = self._events_read
        if future is not None:
            future.set_result(_Answer(data, events_before))

    def _read_stderr(self) -> None:
        assert self._process.stderr is not None
        for line in self._process.stderr:
            self._heard("stderr", line.rstrip("\n"))
            self._stderr.append(line.rstrip())

    def _dispatch(self) -> None:
        while (item := self._events.get()) is not None:
            number, subscription, message = item
            with self._lock:
                handler = self._handlers.get(subscription)
            if handler is None:
                self._stderr.append(f"(an event of no subscription: {subscription!r})")
            else:
                try:
                    handler(message)
                except Exception:  # one failing handler must not stop the others
                    _log.exception("a handler of the connector program's events failed")
            with self._events_done_changed:
                self._events_done = number
                self._events_done_changed.notify_all()
        with self._events_done_changed:
            self._events_done = sys.maxsize  # closed: nobody waits for events any more
            self._events_done_changed.notify_all()

    def _why_gone(self, what: str) -> str:
        code = self._process.poll()
        status = "still running" if code is None else f"exited with {code}"
        tail = "\n".join(self._stderr)
        return redact(f"{what} ({status}); its last stderr lines:\n{tail}", self._secrets)


def command_maker(cmd: str) -> Any:
    """A ``ConnectorMaker`` for ``--conformance-connector-cmd CMD``."""
    argv = shlex.split(cmd)
    if not argv:
        raise ValueError(
            "--conformance-connector-cmd is empty: give the program that speaks the protocol"
        )

    def make(config: ConnectorConfig, env: Mapping[str, str]) -> OrchestratorConnector:
        return CommandConnector(argv, config, env)

    return make


# --- the server: a Python connector over the protocol -----------------------------------


class Server:
    """Serves one connector on a pair of text streams until end of input.

    At end of input it gives the requests still running ``DRAIN_S`` to finish, answers
    those that did not as they would end on a failure (a send as not delivered), and
    closes the connector without waiting long for it: the program exits well within
    ``CLOSE_TIMEOUT_S``.
    """

    def __init__(self, connector: OrchestratorConnector, out: IO[str]) -> None:
        self._connector = connector
        self._out = out
        self._write_lock = threading.Lock()
        self._subscriptions: dict[str, Unsubscribe] = {}
        self._ready: dict[str, threading.Event] = {}
        self._unanswered: dict[str, tuple[object, object]] = {}  # json id -> (id, op)
        self._count = 0

    def serve(self, lines: IO[str]) -> None:
        workers = []
        for line in lines:
            if not line.strip():
                continue
            # Each request in its own thread: a slow send must not hold up a health.
            worker = threading.Thread(target=self._handle, args=(line,), daemon=True)
            worker.start()
            workers.append(worker)
        deadline = time.monotonic() + DRAIN_S
        for worker in workers:
            worker.join(timeout=max(0.0, deadline - time.monotonic()))
        with self._write_lock:
            left = list(self._unanswered.values())
        for request_id, op in left:
            why = "the connector program's input ended before this finished"
            if op == "send":
                self._answer(request_id, result={"delivered": False, "error": why})
            else:
                self._answer(request_id, error=why)
        closing = threading.Thread(target=self._close_connector, daemon=True)
        closing.start()
        closing.join(timeout=max(0.0, CLOSE_TIMEOUT_S - DRAIN_S - 1.0))

    def _close_connector(self) -> None:
        for unsubscribe in list(self._subscriptions.values()):
            unsubscribe()
        self._connector.close()

    def _write(self, data: Mapping[str, Any]) -> None:
        with self._write_lock:
            self._out.write(json.dumps(data) + "\n")
            self._out.flush()

    def _answer(
        self, request_id: object, result: Mapping[str, Any] | None = None, error: str = ""
    ) -> bool:
        """Write the one answer to ``request_id``; False if it was answered already."""
        data = {"id": request_id, "error": error} if error else {"id": request_id, "result": result}
        with self._write_lock:
            if self._unanswered.pop(json.dumps(request_id), None) is None:
                return False
            self._out.write(json.dumps(data) + "\n")
            self._out.flush()
        return True

    def _handle(self, line: str) -> None:
        request_id: object = None
        try:
            request = json.loads(line)
            request_id = request.get("id")
            with self._write_lock:
                self._unanswered[json.dumps(request_id)] = (request_id, request.get("op"))
            result = self._dispatch(request)
        except Exception as exc:  # every failure becomes an error response
            with self._write_lock:
                self._unanswered.setdefault(json.dumps(request_id), (request_id, None))
            self._answer(request_id, error=redact(f"{type(exc).__name__}: {exc}"))
            return
        if not self._answer(request_id, result=result):
            return
        ready = self._ready.pop(str(result.get("subscription")), None)
        if ready is not None:
            ready.set()  # its events may follow now that the client knows its name

    def _dispatch(self, request: Mapping[str, Any]) -> dict[str, Any]:
        op = request.get("op")
        if op == "send":
            wire = request["message"]
            message = OutboundMessage(
                text=str(wire["text"]),
                thread_id=wire.get("thread_id"),
                attachments=tuple(wire.get("attachments") or ()),
                **({"key": str(wire["key"])} if wire.get("key") else {}),
            )
            return dataclasses.asdict(self._connector.send(message))
        if op == "subscribe":
            with self._write_lock:
                self._count += 1
                name = f"s{self._count}"
            ready = self._ready[name] = threading.Event()

            def forward(message: InboundMessage) -> None:
                ready.wait(ANSWER_TIMEOUT_S)
                event = {"event": "message", "subscription": name}
                self._write({**event, "message": dataclasses.asdict(message)})

            self._subscriptions[name] = self._connector.subscribe(forward)
            return {"subscription": name}
        if op == "unsubscribe":  # of a name it does not know (any more), too: {}
            unsubscribe = self._subscriptions.pop(str(request.get("subscription")), None)
            if unsubscribe is not None:
                unsubscribe()
            return {}
        if op == "health":
            return dataclasses.asdict(self._connector.health())
        raise ValueError(f"unknown op {op!r}: expected send, subscribe, unsubscribe or health")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m mosaic_conformance.connectors.jsonlines",
        description="Serve a shipped connector over the JSON-lines connector protocol.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve one connector on stdin/stdout")
    serve.add_argument("--kind", choices=CONNECTOR_KINDS, required=True)
    serve.add_argument(
        "--factory", metavar="MODULE:CALLABLE", help="serve this factory's connector instead"
    )
    args = parser.parse_args(argv)

    from . import default_registry, load_factory

    text = os.environ.get(CONFIG_ENV)
    config = config_from_json(text) if text else ConnectorConfig(kind=args.kind)
    if config.kind != args.kind:
        parser.error(f"{CONFIG_ENV} names kind {config.kind!r}, but --kind is {args.kind!r}")
    if args.factory:
        connector = load_factory(args.factory)(config)
    else:
        connector = default_registry().create(config)
    Server(connector, sys.stdout).serve(sys.stdin)
    return 0


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # the connector's threads may still wait on a server: they end with us
