"""Helpers of the connector suite: waiting for messages (probes, never sleeps) and bounding
every connector call. The fixtures (``connector_target``, ``scenario``, ``operator``,
``recorder``, ...) are the plugin's (``harness/plugin/fixtures.py``).

How a test ends, said where it is known: the connector under test failing is a failure (an
assertion, or :func:`within` for a call that raised or hung, or a factory that raised); a
target that cannot run here is *unavailable* (with what to install); a step of the harness
that broke is a :class:`~mosaic_conformance.harness.outcomes.HarnessError`; a capability the
kind lacks is *unsupported* (:func:`require`).
"""

from __future__ import annotations

import re
import secrets
import threading
import time
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone

from mosaic_conformance.connectors.types import InboundMessage
from mosaic_conformance.harness.chat.subject import CALL_BOUND_S, within
from mosaic_conformance.harness.chat.target import (
    Capability,
    ConnectorTarget,
    OperatorSide,
    SeenMessage,
)
from mosaic_conformance.harness.outcomes import (
    fail_subject,
    unsupported,
)

__all__ = ["CALL_BOUND_S", "within"]  # the suite's tests take them from here

HEALTH_BOUND_S = 15.0  # CONN.10: "not reachable within a bounded time"
MESSAGE_WAIT_S = 30.0  # a message reaches the other side within this
POLL_S = 0.1
CLOCK_SKEW_S = 5.0  # how far a connector's clock may be off the suite's


def require(target: ConnectorTarget, capability: Capability) -> None:
    """Report as unsupported, with the kind's reason, a test that needs what this kind lacks."""
    __tracebackhide__ = True
    reason = target.unsupported.get(capability)
    if reason:
        unsupported(f"{capability.value}: {reason}")


# ISO-8601's extended form with a time and a UTC offset: what CONN.7 and the protocol accept.
ISO_8601 = re.compile(
    r"(?P<time>\d{4}-\d{2}-\d{2}T\d{2}:\d{2})(?P<seconds>:\d{2})?(\.(?P<fraction>\d+))?"
    r"(?P<offset>Z|[+-]\d{2}:\d{2})",
    re.ASCII,
)


def iso8601_problem(stamp: object) -> str | None:
    """Why ``stamp`` is not an ISO-8601 date and time with a UTC offset; None if it is."""
    if not isinstance(stamp, str):
        return f"{stamp!r} is not a string"
    if not ISO_8601.fullmatch(stamp):
        return (
            f"{stamp!r} is not an ISO-8601 date and time with a UTC offset "
            "(like 2026-01-01T10:00:00Z or 2026-01-01T12:00:00.250+02:00)"
        )
    try:
        moment(stamp)
    except ValueError as exc:
        return f"{stamp!r} is no date and time: {exc}"
    return None


def moment(stamp: str) -> datetime:
    """The time an accepted stamp names (Python 3.10 reads neither "Z" nor every fraction)."""
    parts = ISO_8601.fullmatch(stamp)
    if parts is None:
        raise ValueError(f"{stamp!r} is not an ISO-8601 date and time with a UTC offset")
    fraction = (parts["fraction"] or "0")[:6].ljust(6, "0")
    offset = "+00:00" if parts["offset"] == "Z" else parts["offset"]
    seconds = parts["seconds"] or ":00"
    return datetime.fromisoformat(f"{parts['time']}{seconds}.{fraction}{offset}")


def now() -> datetime:
    return datetime.now(timezone.utc)


SKEW = timedelta(seconds=CLOCK_SKEW_S)
# An inbound message's time is the chat server's: a server elsewhere may keep another clock,
# but a stamp off by a time zone (15 minutes at the least) names another moment.
SERVER_SKEW = timedelta(minutes=5)


def unique(label: str) -> str:
    """A message text no other test (or run on a shared server) posts."""
    return f"{label} {secrets.token_hex(4)}"


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
                    fail_subject(
                        f"the operator's message {text!r} did not reach the subscriber within "
                        f"{timeout:g} s; it received {got!r}"
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
            fail_subject(
                f"the operator did not see {text!r} within {timeout:g} s; the conversation "
                f"ends with {shown!r}"
            )
        time.sleep(POLL_S)


def fence(operator: OperatorSide, inbox: Inbox, label: str) -> None:
    """Post two operator messages one after the other, each once the one before arrived:
    then whatever the connector would deliver of what was posted before has arrived, also
    from a poller that reads the room and its threads one after another in rounds."""
    __tracebackhide__ = True
    for n in range(2):
        text = unique(f"{label}: fence {n}")
        operator.post(text)
        inbox.wait_for(text)
