"""Helpers of the connector suite: waiting for messages (probes, never sleeps) and bounding
every connector call. The fixtures (``connector_target``, ``scenario``, ``operator``, ...) are
the plugin's (``harness/plugin/fixtures.py``)."""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable, Sequence
from typing import TypeVar

import pytest

from mosaic_conformance.connectors.types import InboundMessage
from mosaic_conformance.harness.chat.target import (
    Capability,
    ConnectorTarget,
    OperatorSide,
    SeenMessage,
)
from mosaic_conformance.harness.outcomes import unsupported

T = TypeVar("T")

CALL_BOUND_S = 60.0  # any connector call returns within this, or the test fails
HEALTH_BOUND_S = 15.0  # CONN.10: "not reachable within a bounded time"
MESSAGE_WAIT_S = 30.0  # a message reaches the other side within this
POLL_S = 0.1


def require(target: ConnectorTarget, capability: Capability) -> None:
    """Skip, with the kind's reason, a test that needs what this kind lacks."""
    reason = target.unsupported.get(capability)
    if reason:
        unsupported(f"{capability.value}: {reason}")


def unique(label: str) -> str:
    """A message text no other test (or run on a shared server) posts."""
    return f"{label} {secrets.token_hex(4)}"


def within(seconds: float, call: Callable[[], T], what: str) -> T:
    """``call()``, failing the test if it does not return within ``seconds``.

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
        pytest.fail(f"{what} did not return within {seconds:g} s", pytrace=False)
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box["value"]  # type: ignore[return-value]


class Inbox:
    """A subscriber's handler that keeps what it receives, and waits for it."""

    def __init__(self) -> None:
        self._messages: list[InboundMessage] = []
        self._changed = threading.Condition()

    def __call__(self, message: InboundMessage) -> None:
        with self._changed:
            self._messages.append(message)
            self._changed.notify_all()

    @property
    def messages(self) -> list[InboundMessage]:
        with self._changed:
            return list(self._messages)

    def texts(self) -> list[str]:
        return [m.text for m in self.messages]

    def wait_for_all(self, texts: Sequence[str], timeout: float) -> bool:
        """Wait until a message of each text has arrived; False if not all did in time."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                if set(texts) <= {m.text for m in self._messages}:
                    return True
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._changed.wait(left)

    def wait_for(self, text: str, timeout: float = MESSAGE_WAIT_S) -> InboundMessage:
        """The first message with ``text``; fail the test if none arrives in time."""
        __tracebackhide__ = True
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                found = [m for m in self._messages if m.text == text]
                if found:
                    return found[0]
                left = deadline - time.monotonic()
                if left <= 0:
                    got = [m.text for m in self._messages]
                    pytest.fail(
                        f"the operator's message {text!r} did not reach the subscriber within "
                        f"{timeout:g} s; it received {got!r}",
                        pytrace=False,
                    )
                self._changed.wait(left)


def wait_seen(
    operator: OperatorSide, text: str, timeout: float = MESSAGE_WAIT_S
) -> Sequence[SeenMessage]:
    """Every message with ``text`` the operator sees, once there is at least one."""
    __tracebackhide__ = True
    deadline = time.monotonic() + timeout
    while True:
        seen = operator.seen()
        found = [m for m in seen if m.text == text]
        if found:
            return found
        if time.monotonic() >= deadline:
            shown = [m.text for m in seen][-10:]
            pytest.fail(
                f"the operator did not see {text!r} within {timeout:g} s; the conversation "
                f"ends with {shown!r}",
                pytrace=False,
            )
        time.sleep(POLL_S)
