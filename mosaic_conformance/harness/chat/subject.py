"""The connector under test as the connector suite sees it: every call bounded, and everything
it returns, raises and writes recorded raw, before any masking.

- :func:`within` runs one call of the subject with a time bound: a hang or an exception of
  the subject fails the test as the *subject's* failure; the harness's own errors and
  pytest's outcomes pass through as they are.
- :class:`SubjectMaker` wraps the maker of the connector under test (the shipped factory, a
  ``--conformance-connector-factory`` or a ``--conformance-connector-cmd`` program): the
  factory runs within a bound too, and each connector it makes is a
  :class:`RecordingConnector`.
- A :class:`Recorder` (one per test) looks at each raw value as it comes (send results,
  health answers, delivered messages, exceptions, reprs, log records, a program's stdout
  and stderr lines) for the tokens the connector was given, and keeps where it found one
  (CONN.14). The plugin masks tokens in failure texts, which would hide such a leak from
  this check if it looked later; it says where a leak was, masked.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TypeVar

import pytest

from ...connectors.jsonlines import CommandConnector
from ...connectors.types import (
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
from ...contract import TOKEN_ENVS
from ...secrets import redact
from ..outcomes import HarnessError, fail_subject
from .target import ConnectorMaker

T = TypeVar("T")

CALL_BOUND_S = 60.0  # any connector call returns within this, or the test fails
EXCERPT = 40  # characters shown either side of a leaked token
MIN_TOKEN = 4  # a shorter "token" would be found everywhere
# Loggers of the toolkit's own judging side: what they log is not the connector's words.
HARNESS_LOGGERS = ("mosaic_conformance.harness",)
# Exceptions that are not the subject's to answer for: they end the test as they are.
PASSED_THROUGH = (HarnessError, pytest.skip.Exception, pytest.fail.Exception)


def within(seconds: float, call: Callable[[], T], what: str) -> T:
    """``call()``, failing the test as the subject's failure if it raises or does not return
    within ``seconds``.

    It runs in a daemon thread: a connector that hangs costs that thread, not the run.
    """
    __tracebackhide__ = True
    box: dict[str, object] = {}

    def run() -> None:
        try:
            box["value"] = call()
        except BaseException as exc:
            box["error"] = exc

    worker = threading.Thread(target=run, name=f"bounded {what}", daemon=True)
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        fail_subject(f"{what} did not return within {seconds:g} s")
    error = box.get("error")
    if isinstance(error, PASSED_THROUGH):
        raise error
    if isinstance(error, BaseException):
        fail_subject(f"{what} raised {type(error).__name__}: {error}")
    return box["value"]  # type: ignore[return-value]


@dataclass(frozen=True, slots=True)
class Leak:
    """A token found where the connector returned, raised or wrote something."""

    where: str  # "health().detail", "the program's stderr", ...
    excerpt: str  # the text around it, the token masked

    def __str__(self) -> str:
        return f"{self.where}: {self.excerpt!r}"


def _excerpt(text: str, token: str, tokens: Iterable[str]) -> str:
    at = text.index(token)
    start, end = max(0, at - EXCERPT), min(len(text), at + len(token) + EXCERPT)
    shown = redact(text[start:end], extra=tokens)
    return ("..." if start else "") + shown + ("..." if end < len(text) else "")


class Recorder:
    """What the connectors of one test returned, raised and wrote, looked at raw as it came."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tokens: set[str] = set()
        self._leaks: list[Leak] = []
        self.values = 0  # how many values were looked at

    @property
    def tokens(self) -> frozenset[str]:
        """Every token a connector of this test was given."""
        with self._lock:
            return frozenset(self._tokens)

    @property
    def leaks(self) -> list[Leak]:
        with self._lock:
            return list(self._leaks)

    def given(self, tokens: Iterable[str]) -> None:
        with self._lock:
            self._tokens.update(t for t in tokens if len(t) >= MIN_TOKEN)

    def note(self, where: str, text: str, tokens: Iterable[str] | None = None) -> None:
        """Look at ``text`` (raw) for ``tokens`` (default: every token of this test)."""
        with self._lock:
            self.values += 1
            needles = [t for t in (self._tokens if tokens is None else tokens) if t in text]
            for token in needles:
                leak = Leak(where, _excerpt(text, token, self._tokens))
                if leak not in self._leaks:
                    self._leaks.append(leak)

    @contextlib.contextmanager
    def watching_logs(self) -> Iterator[None]:
        """Look at every log record made meanwhile (but the harness's own), at every level."""
        handler = _RecordingHandler(self)
        root = logging.getLogger()
        level = root.level
        root.addHandler(handler)
        root.setLevel(logging.DEBUG)  # a token logged at DEBUG is a leak all the same
        try:
            yield
        finally:
            root.removeHandler(handler)
            root.setLevel(level)


class _RecordingHandler(logging.Handler):
    def __init__(self, recorder: Recorder) -> None:
        super().__init__(logging.DEBUG)
        self._recorder = recorder
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.startswith(HARNESS_LOGGERS) or not self._recorder.tokens:
            return
        with contextlib.suppress(Exception):  # a record that cannot be formatted is no leak
            self._recorder.note(f"a log record of {record.name!r}", self.format(record))


def _fields(value: object) -> Mapping[str, object]:
    return {name: getattr(value, name) for name in getattr(value, "__slots__", ())}


class RecordingConnector:
    """The connector under test, every call handed through, everything it hands back noted."""

    def __init__(
        self, inner: OrchestratorConnector, recorder: Recorder, tokens: Iterable[str]
    ) -> None:
        self._inner = inner
        self._recorder = recorder
        self._tokens = tuple(tokens)
        self._closed = False
        if isinstance(inner, CommandConnector):
            inner.tap(lambda stream, line: self._note(f"the program's {stream}", line))

    @property
    def inner(self) -> OrchestratorConnector:
        """The connector as its maker made it."""
        return self._inner

    def __repr__(self) -> str:
        shown = repr(self._inner)
        self._note("repr(connector)", shown)
        return shown

    def _note(self, where: str, value: object) -> None:
        if isinstance(value, BaseException):
            self._recorder.note(where, f"{type(value).__name__}: {value} {value!r}", self._tokens)
            return
        fields = _fields(value)
        for name, field_value in fields.items():
            if isinstance(field_value, str):
                self._recorder.note(f"{where}.{name}", field_value, self._tokens)
        if not fields:
            shown = value if isinstance(value, str) else repr(value)
            self._recorder.note(where, shown, self._tokens)

    def _call(self, where: str, call: Callable[[], T]) -> T:
        try:
            value = call()
        except BaseException as exc:
            self._note(f"an exception of {where}", exc)
            raise
        self._note(where, value)
        return value

    @property
    def kind(self) -> ConnectorKind:
        return self._inner.kind

    def send(self, message: OutboundMessage) -> SendResult:
        return self._call("send()", lambda: self._inner.send(message))

    def subscribe(self, handler: Handler) -> Unsubscribe:
        def recorded(message: InboundMessage) -> None:
            self._note("a delivered message", message)
            handler(message)

        unsubscribe = self._call("subscribe()", lambda: self._inner.subscribe(recorded))
        return lambda: self._call("unsubscribe()", unsubscribe)

    def health(self) -> ConnectorHealth:
        return self._call("health()", self._inner.health)

    def close(self) -> None:
        """Close the connector once (the suite may close it, then its scenario)."""
        if not self._closed:
            self._closed = True
            self._call("close()", self._inner.close)


def unwrapped(connector: OrchestratorConnector) -> OrchestratorConnector:
    """The connector as its maker made it, recorded or not."""
    return connector.inner if isinstance(connector, RecordingConnector) else connector


class SubjectMaker:
    """The maker of the connector under test, with every connector it makes recorded into
    the current test's :class:`Recorder`."""

    def __init__(self, maker: ConnectorMaker) -> None:
        self._maker = maker
        self.recorder = Recorder()

    @contextlib.contextmanager
    def recording(self) -> Iterator[Recorder]:
        """A fresh recorder for one test, watching the logs while it lasts."""
        self.recorder = recorder = Recorder()
        with recorder.watching_logs():
            yield recorder

    def __call__(self, config: ConnectorConfig, env: Mapping[str, str]) -> OrchestratorConnector:
        __tracebackhide__ = True
        tokens = [env[name] for name in TOKEN_ENVS if len(env.get(name) or "") >= MIN_TOKEN]
        recorder = self.recorder
        recorder.given(tokens)

        def make() -> OrchestratorConnector:
            try:
                return self._maker(config, env)
            except BaseException as exc:
                recorder.note("an exception of the factory", f"{exc} {exc!r}", tokens)
                raise

        made = within(CALL_BOUND_S, make, f"making the {config.kind} connector")
        return RecordingConnector(made, recorder, tokens)
