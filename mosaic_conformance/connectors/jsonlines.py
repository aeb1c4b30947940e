"""Connectors in any language: a small JSON-lines protocol on stdin/stdout.

A connector program is started once per connector, with the roster's ``connector`` block as
JSON in ``MOSAIC_CONNECTOR_CONFIG`` and its token in ``MATRIX_ACCESS_TOKEN`` /
``DISCORD_BOT_TOKEN``. It reads one request per line on stdin and writes one response per
request, and ``message`` events for its subscriptions, on stdout (see
``docs/validating-a-connector.md``). End of stdin means close.

- :class:`CommandConnector` makes such a program look like an ``OrchestratorConnector``
  (``--conformance-connector-cmd``); an error response, or a program that died, raises
  :class:`ProtocolError`, so the suite sees the defect rather than a polite result;
- ``python -m mosaic_conformance.connectors.jsonlines serve --kind matrix`` serves a Python
  connector of the default registry over the protocol.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import dataclasses
import json
import os
import queue
import shlex
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
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

CONFIG_ENV = CONNECTOR_CONFIG_ENV
ANSWER_TIMEOUT_S = 120.0  # a program that answers nothing this long is taken as gone
CLOSE_TIMEOUT_S = 5.0
STDERR_LINES = 20  # kept to explain a program's death


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


class CommandConnector:
    """An ``OrchestratorConnector`` backed by a program that speaks the protocol."""

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
        self._pending: dict[int, Future[dict[str, Any]]] = {}
        self._handlers: dict[str, Handler] = {}
        # handlers of subscribe requests still in flight, by request id: the reader thread
        # registers each one as it reads the answer, before it reads the events after it
        self._subscribing: dict[int, Handler] = {}
        self._stderr: collections.deque[str] = collections.deque(maxlen=STDERR_LINES)
        self._events: queue.Queue[tuple[str, InboundMessage] | None] = queue.Queue()
        self._threads = [
            threading.Thread(target=self._read_stdout, name="connector-stdout", daemon=True),
            threading.Thread(target=self._read_stderr, name="connector-stderr", daemon=True),
            threading.Thread(target=self._dispatch, name="connector-events", daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def __repr__(self) -> str:
        return f"CommandConnector(kind={self._kind!r}, pid={self._process.pid})"

    @property
    def kind(self) -> ConnectorKind:
        return self._kind

    def send(self, message: OutboundMessage) -> SendResult:
        wire: dict[str, Any] = {"text": message.text, "thread_id": message.thread_id}
        if message.attachments:
            wire["attachments"] = list(message.attachments)
        result = self._request("send", message=wire)  # a failed request raises: a defect
        return SendResult(
            bool(result.get("delivered")), result.get("message_id"), result.get("error")
        )

    def subscribe(self, handler: Handler) -> Unsubscribe:
        subscription = str(self._request("subscribe", handler=handler)["subscription"])

        def unsubscribe() -> None:
            with self._lock:
                self._handlers.pop(subscription, None)
            with contextlib.suppress(ProtocolError):
                self._request("unsubscribe", subscription=subscription)

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
        with contextlib.suppress(OSError, ValueError):
            if self._process.stdin:
                self._process.stdin.close()  # end of stdin: the program closes
        try:
            self._process.wait(timeout=CLOSE_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait(timeout=CLOSE_TIMEOUT_S)
        self._events.put(None)
        for thread in self._threads:
            thread.join(timeout=CLOSE_TIMEOUT_S)

    def _request(self, op: str, handler: Handler | None = None, **fields: Any) -> dict[str, Any]:
        future: Future[dict[str, Any]] = Future()
        with self._lock:
            self._next_id += 1
            request_id = self._next_id
            self._pending[request_id] = future
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
        if "error" in answer:
            raise ProtocolError(redact(f"the connector program failed {op}: {answer['error']}"))
        result: dict[str, Any] = answer.get("result") or {}
        return result

    def _read_stdout(self) -> None:
        assert self._process.stdout is not None
        for line in self._process.stdout:
            try:
                data = json.loads(line)
            except ValueError:
                self._stderr.append(f"(not JSON on stdout) {line.rstrip()[:200]}")
                continue
            if data.get("event") == "message":
                self._events.put((str(data.get("subscription")), _message_from(data["message"])))
            elif "id" in data:
                with self._lock:
                    future = self._pending.pop(int(data["id"]), None)
                    handler = self._subscribing.pop(int(data["id"]), None)
                    result = data.get("result")
                    if handler is not None and isinstance(result, dict):
                        self._handlers[str(result.get("subscription"))] = handler
                if future is not None:
                    future.set_result(data)
        gone = ProtocolError(self._why_gone("the connector program closed its stdout"))
        with self._lock:
            pending, self._pending = list(self._pending.values()), {}
        for future in pending:
            future.set_exception(gone)

    def _read_stderr(self) -> None:
        assert self._process.stderr is not None
        for line in self._process.stderr:
            self._stderr.append(line.rstrip())

    def _dispatch(self) -> None:
        while (item := self._events.get()) is not None:
            subscription, message = item
            with self._lock:
                handler = self._handlers.get(subscription)
            if handler is not None:
                handler(message)

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
    """Serves one connector on a pair of text streams until end of input."""

    def __init__(self, connector: OrchestratorConnector, out: IO[str]) -> None:
        self._connector = connector
        self._out = out
        self._write_lock = threading.Lock()
        self._subscriptions: dict[str, Unsubscribe] = {}
        self._ready: dict[str, threading.Event] = {}
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
        for worker in workers:
            worker.join(timeout=ANSWER_TIMEOUT_S)
        for unsubscribe in list(self._subscriptions.values()):
            unsubscribe()
        self._connector.close()

    def _write(self, data: Mapping[str, Any]) -> None:
        with self._write_lock:
            self._out.write(json.dumps(data) + "\n")
            self._out.flush()

    def _handle(self, line: str) -> None:
        request_id: object = None
        try:
            request = json.loads(line)
            request_id = request.get("id")
            result = self._dispatch(request)
        except Exception as exc:  # every failure becomes an error response
            self._write({"id": request_id, "error": redact(f"{type(exc).__name__}: {exc}")})
            return
        self._write({"id": request_id, "result": result})
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
                attachments=tuple(wire.get("attachments", ())),
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
        if op == "unsubscribe":
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
    sys.exit(main())
