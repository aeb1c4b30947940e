"""Checks of a connector through a harness scenario, for the tmux and Discord tests.

Each check drives one :class:`~mosaic_conformance.connectors.testing.Scenario` and raises
``AssertionError`` when the connector misbehaves. The tests run each check on the shipped
connector (it passes) and on a deliberately broken one (it must fail).

"Nothing more arrived" is shown without sleeping: after the messages under test, the
operator posts a fence; messages arrive in order, so once the fence is in, everything before
it has been delivered, and what is missing or doubled then is a defect.
"""

from __future__ import annotations

import datetime as dt
import secrets
import threading
import time
from collections.abc import Callable

from mosaic_conformance.connectors.testing import Scenario, Variant
from mosaic_conformance.connectors.types import InboundMessage, OutboundMessage

WAIT = 20.0  # generous: a busy 2-core machine
HEALTH_BOUND = 30.0  # what "within a bounded time" means here


class Inbox:
    """A handler that keeps what it was given, and waits for what it expects."""

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

    def wait_for_text(self, text: str, timeout: float = WAIT) -> InboundMessage:
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for message in self._messages:
                    if message.text == text:
                        return message
                remaining = deadline - time.monotonic()
                assert remaining > 0, f"{text!r} never arrived; got {self.texts()!r}"
                self._changed.wait(remaining)


def unique(label: str) -> str:
    return f"{label} {secrets.token_hex(3)}"


def is_iso8601(value: str) -> bool:
    try:
        dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


def wait_until(condition: Callable[[], bool], what: str, timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def post_fence(scenario: Scenario, inbox: Inbox) -> None:
    text = unique("fence")
    scenario.operator.post(text)
    inbox.wait_for_text(text)


# The checks


def check_send_is_seen(scenario: Scenario) -> None:
    """CONN.4: delivered with an id, and the operator sees the text, exactly as sent."""
    connector = scenario.connect()
    text = unique('Build "green" ✓ — naïve 日本 $HOME `x` \\ ;') + "\nsecond line"
    result = connector.send(OutboundMessage(text))
    assert result.delivered, f"send failed: {result.error}"
    assert result.message_id, "a delivered send carries a message id"
    wait_until(lambda: any(m.text == text for m in scenario.operator.seen()), "the text")
    seen = [m for m in scenario.operator.seen() if m.text == text]
    assert len(seen) == 1, f"the operator sees the message {len(seen)} times"
    if seen[0].id is not None:
        assert seen[0].id == result.message_id


def check_send_fails_softly(scenario: Scenario, variant: Variant) -> None:
    """CONN.5: a send that cannot be delivered returns not-delivered with an error."""
    connector = scenario.connect(variant)
    try:
        result = connector.send(OutboundMessage(unique("into the void")))
    except Exception as exc:
        raise AssertionError(f"send raised instead of returning not-delivered: {exc!r}") from exc
    assert not result.delivered, "a send to a broken server claims delivery"
    assert result.error, "a failed send says why"


def check_retry_delivers_once(scenario: Scenario) -> None:
    """CONN.6: the first answer is lost, the retry must not make a second message."""
    connector = scenario.connect()
    text = unique("exactly once")
    scenario.lose_next_send_response()
    result = connector.send(OutboundMessage(text))
    assert result.delivered, f"a send whose first answer was lost failed: {result.error}"
    wait_until(lambda: any(m.text == text for m in scenario.operator.seen()), "the text")
    count = sum(m.text == text for m in scenario.operator.seen())
    assert count == 1, f"the operator sees a retried message {count} times"


def check_subscribe_once_without_echo(scenario: Scenario) -> None:
    """CONN.7: each operator message once, with sender and ISO-8601 time; no echo."""
    connector = scenario.connect()
    inbox = Inbox()
    connector.subscribe(inbox)
    own = unique("from the orchestrator")
    assert connector.send(OutboundMessage(own)).delivered
    text = unique("from the operator")
    message_id = scenario.operator.post(text)
    post_fence(scenario, inbox)
    got = [m for m in inbox.messages if m.text == text]
    assert len(got) == 1, f"the operator's message arrived {len(got)} times"
    assert got[0].sender == scenario.operator.sender_id, f"sender is {got[0].sender!r}"
    assert is_iso8601(got[0].ts), f"timestamp {got[0].ts!r} is not ISO-8601"
    assert got[0].id == message_id, f"message id {got[0].id!r}, the chat says {message_id!r}"
    assert own not in inbox.texts(), "the connector's own message came back as the operator's"


def check_unsubscribe_stops(scenario: Scenario) -> None:
    """CONN.8: after unsubscribe, nothing more reaches that handler."""
    connector = scenario.connect()
    gone, staying = Inbox(), Inbox()
    unsubscribe = connector.subscribe(gone)
    connector.subscribe(staying)
    first = unique("before")
    scenario.operator.post(first)
    gone.wait_for_text(first)
    unsubscribe()
    kept = len(gone.messages)
    scenario.operator.post(unique("after"))
    post_fence(scenario, staying)
    assert len(gone.messages) == kept, f"after unsubscribe: {gone.texts()[kept:]!r}"


def check_others_filtered(scenario: Scenario, *, strangers: bool, other_room: bool) -> None:
    """CONN.12: strangers and other rooms are not delivered."""
    connector = scenario.connect()
    inbox = Inbox()
    connector.subscribe(inbox)
    unwanted = []
    if strangers:
        unwanted.append(unique("a stranger"))
        scenario.operator.post_as_stranger(unwanted[-1])
    if other_room:
        unwanted.append(unique("another room"))
        scenario.operator.post_in_other_room(unwanted[-1])
    post_fence(scenario, inbox)
    leaked = [t for t in unwanted if t in inbox.texts()]
    assert not leaked, f"delivered what is not the operator's in this room: {leaked!r}"


def check_threads(scenario: Scenario) -> None:
    """CONN.9: a send lands in its thread; a reply in a thread comes with its thread id."""
    connector = scenario.connect()
    inbox = Inbox()
    connector.subscribe(inbox)
    thread_id = scenario.operator.open_thread(unique("a thread"))
    text = unique("in the thread")
    assert connector.send(OutboundMessage(text, thread_id=thread_id)).delivered
    wait_until(lambda: any(m.text == text for m in scenario.operator.seen()), "the text")
    landed = [m for m in scenario.operator.seen() if m.text == text]
    assert landed[0].thread_id == thread_id, f"landed in thread {landed[0].thread_id!r}"
    reply = unique("a reply")
    scenario.operator.post(reply, thread_id=thread_id)
    got = inbox.wait_for_text(reply)
    assert got.thread_id == thread_id, f"a reply in a thread arrived with {got.thread_id!r}"


def check_health(
    scenario: Scenario,
    variant: Variant,
    expected: tuple[bool, bool],
    bound: float = HEALTH_BOUND,
) -> None:
    """CONN.10: (reachable, authenticated) as expected, within ``bound`` seconds."""
    connector = scenario.connect(variant)
    answers: list[tuple[bool, bool]] = []

    def ask() -> None:
        health = connector.health()
        answers.append((health.reachable, health.authenticated))

    asker = threading.Thread(target=ask, daemon=True)
    asker.start()
    asker.join(bound)
    assert answers, f"health did not answer within {bound:g}s ({variant.value})"
    assert answers[0] == expected, f"health on {variant.value} is {answers[0]}, not {expected}"


def check_survives(scenario: Scenario, fault: str) -> None:
    """CONN.11: across a server restart or cut connections, nothing lost or doubled."""
    disrupt = {"restart": scenario.restart_server, "drop": scenario.drop_connections}[fault]
    connector = scenario.connect()
    inbox = Inbox()
    connector.subscribe(inbox)
    before = unique(f"before the {fault}")
    scenario.operator.post(before)
    inbox.wait_for_text(before)
    disrupt()
    after = unique(f"after the {fault}")
    scenario.operator.post(after)
    post_fence(scenario, inbox)
    for text in (before, after):
        count = inbox.texts().count(text)
        assert count == 1, f"{text!r} arrived {count} times across the {fault}"
    assert connector.send(OutboundMessage(unique(f"send after the {fault}"))).delivered
