"""CONN.7, CONN.8, CONN.12: what reaches a subscriber, and what must not."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from mosaic_conformance.connectors.types import OrchestratorConnector, OutboundMessage, Unsubscribe
from mosaic_conformance.harness.chat.target import (
    Capability,
    ConnectorTarget,
    OperatorSide,
    ReadHold,
    Scenario,
    Variant,
)

from .conftest import (
    CALL_BOUND_S,
    MESSAGE_WAIT_S,
    SERVER_SKEW,
    Inbox,
    fence,
    iso8601_problem,
    moment,
    now,
    require,
    unique,
    within,
)


@pytest.mark.requirement("CONN.7")
def test_each_operator_message_arrives_once_with_text_sender_and_timestamp(
    scenario: Scenario, operator: OperatorSide
) -> None:
    connector = scenario.connect()
    inbox = Inbox()
    within(CALL_BOUND_S, lambda: connector.subscribe(inbox), "subscribe")
    texts = [unique(f"CONN.7 operator message {n}") for n in range(3)]
    posted = now()
    for text in texts:
        operator.post(text)
    for text in texts:
        inbox.wait_for(text)
    last = unique("CONN.7 last")  # everything before it has arrived once it has
    operator.post(last)
    inbox.wait_for(last)
    arrived = now()
    for text in texts:
        received = [m for m in inbox.messages if m.text == text]
        assert len(received) == 1, f"{text!r} arrived {len(received)} times, not once"
        message = received[0]
        assert message.sender == operator.sender_id
        assert message.id, "an inbound message carries its id"
        problem = iso8601_problem(message.ts)
        assert problem is None, f"the timestamp of {text!r}: {problem}"
        # the moment it names, not only its form: a wrong UTC offset is another moment
        assert posted - SERVER_SKEW <= moment(message.ts) <= arrived + SERVER_SKEW, (
            f"the timestamp of {text!r}, {message.ts}, is not when it was posted: between "
            f"{posted.isoformat()} and {arrived.isoformat()} "
            f"({SERVER_SKEW.total_seconds() / 60:g} minutes either side allowed)"
        )


TEXTS_WHOLE = {
    "non-ascii": "CONN.7 café, naïve, Größe, 日本語, emoji 🚀, a tab\there",
    "line-breaks": "CONN.7 a message of\nthree lines,\n  the last indented",
}


@pytest.mark.requirement("CONN.7")
@pytest.mark.parametrize("kind", list(TEXTS_WHOLE))
def test_an_operator_message_arrives_with_its_text_whole(
    connector_target: ConnectorTarget, scenario: Scenario, operator: OperatorSide, kind: str
) -> None:
    """What the operator writes arrives as written: any character, and line breaks within
    one message where the chat has them."""
    if kind == "line-breaks":
        require(connector_target, Capability.MULTILINE)
    connector = scenario.connect()
    inbox = Inbox()
    within(CALL_BOUND_S, lambda: connector.subscribe(inbox), "subscribe")
    text = unique(TEXTS_WHOLE[kind])
    operator.post(text)
    last = unique("CONN.7 after the whole text")  # everything before it has arrived once it has
    operator.post(last)
    inbox.wait_for(last)
    received = [m.text for m in inbox.messages if m.text != last]
    assert text in received, (
        f"the operator's message {text!r} did not arrive as written; arrived: {received!r}"
    )


def _subscribe_held(connector: OrchestratorConnector, inbox: Inbox, hold: ReadHold) -> Unsubscribe:
    with hold.shut_around():  # reads subscribe does not wait on are held from its start
        return connector.subscribe(inbox)


@pytest.mark.requirement("CONN.7")
def test_a_message_posted_right_after_subscribe_returns_arrives(
    connector_target: ConnectorTarget,
    scenario: Scenario,
    operator: OperatorSide,
    record_figure: Callable[[str, object], None],
) -> None:
    """Every read of new messages that ``subscribe`` does not wait on is held until the
    operator has posted (one begun by a poller while subscribe runs too): a connector that
    fixes its place in the stream only then (its subscribe returned before it could see new
    messages) misses the message every time."""
    require(connector_target, Capability.HOLD_READS)
    connector = scenario.connect()
    inbox = Inbox()
    hold = scenario.hold_reads()
    within(CALL_BOUND_S, lambda: _subscribe_held(connector, inbox, hold), "subscribe")
    text = unique("CONN.7 right after subscribe")
    operator.post(text)
    hold.wait_held(MESSAGE_WAIT_S)  # its next read is held: the post came first
    hold.release()
    # The held read answered, the connector reads on: wherever it fixed its place in the
    # stream, it did so before the fence, which its place must not swallow too.
    hold.wait_read_after_release(MESSAGE_WAIT_S)
    record_figure("reads_held", hold.held)
    record_figure("reads_subscribe_waited_on", hold.let_through)
    fence(operator, inbox, "CONN.7 after the held reads")  # posted later, so delivered later
    assert text in inbox.texts(), (
        f"the operator's message {text!r}, posted right after subscribe returned, did not reach "
        f"the subscriber; later ones did: {inbox.texts()!r}"
    )


@pytest.mark.requirement("CONN.7")
def test_subscribe_while_the_server_is_down_returns_a_subscription(scenario: Scenario) -> None:
    """Not an error: the connector keeps trying, and delivers once the server is back."""
    connector = scenario.connect(Variant.SERVER_DOWN)
    unsubscribe = within(
        CALL_BOUND_S, lambda: connector.subscribe(Inbox()), "subscribe while the server is down"
    )
    within(CALL_BOUND_S, unsubscribe, "unsubscribe while the server is down")


@pytest.mark.requirement("CONN.7")
def test_the_connectors_own_messages_are_not_echoed_back(
    scenario: Scenario, operator: OperatorSide
) -> None:
    connector = scenario.connect()
    inbox = Inbox()
    within(CALL_BOUND_S, lambda: connector.subscribe(inbox), "subscribe")
    own = unique("CONN.7 from the orchestrator")
    result = within(CALL_BOUND_S, lambda: connector.send(OutboundMessage(own)), "send")
    assert result.delivered, f"send was not delivered: {result.error}"
    after = unique("CONN.7 operator after it")  # arrives after any echo would have
    operator.post(after)
    inbox.wait_for(after)
    assert own not in inbox.texts(), "the connector delivered its own message to its subscriber"


@pytest.mark.requirement("CONN.8")
def test_no_message_reaches_a_handler_after_unsubscribe(
    scenario: Scenario, operator: OperatorSide
) -> None:
    connector = scenario.connect()
    first, second = Inbox(), Inbox()
    unsubscribe = within(CALL_BOUND_S, lambda: connector.subscribe(first), "subscribe")
    before = unique("CONN.8 before unsubscribe")
    operator.post(before)
    first.wait_for(before)
    within(CALL_BOUND_S, unsubscribe, "unsubscribe")
    within(CALL_BOUND_S, lambda: connector.subscribe(second), "subscribe")
    later = unique("CONN.8 after unsubscribe")
    operator.post(later)
    second.wait_for(later)  # delivered by now, had it been delivered to both
    assert later not in first.texts(), "a handler got a message after its unsubscribe"
    within(CALL_BOUND_S, unsubscribe, "a second unsubscribe of the same handler")


@pytest.mark.requirement("CONN.12")
def test_messages_of_senders_outside_the_operators_are_not_delivered(
    connector_target: ConnectorTarget, scenario: Scenario, operator: OperatorSide
) -> None:
    require(connector_target, Capability.STRANGERS)
    connector = scenario.connect()
    inbox = Inbox()
    within(CALL_BOUND_S, lambda: connector.subscribe(inbox), "subscribe")
    stranger = unique("CONN.12 from a stranger")
    operator.post_as_stranger(stranger)
    after = unique("CONN.12 operator after the stranger")
    operator.post(after)
    inbox.wait_for(after)
    assert stranger not in inbox.texts(), "a stranger's message was delivered"


@pytest.mark.requirement("CONN.12")
def test_messages_from_other_rooms_are_not_delivered(
    connector_target: ConnectorTarget, scenario: Scenario, operator: OperatorSide
) -> None:
    require(connector_target, Capability.OTHER_ROOM)
    connector = scenario.connect()
    inbox = Inbox()
    within(CALL_BOUND_S, lambda: connector.subscribe(inbox), "subscribe")
    elsewhere = unique("CONN.12 in another room")
    operator.post_in_other_room(elsewhere)
    after = unique("CONN.12 operator in the room")
    operator.post(after)
    inbox.wait_for(after)
    assert elsewhere not in inbox.texts(), "a message from another room was delivered"


@pytest.mark.requirement("CONN.12")
def test_replies_in_a_thread_of_another_room_are_not_delivered(
    connector_target: ConnectorTarget, scenario: Scenario, operator: OperatorSide
) -> None:
    require(connector_target, Capability.OTHER_ROOM)
    require(connector_target, Capability.THREADS)
    connector = scenario.connect()
    inbox = Inbox()
    within(CALL_BOUND_S, lambda: connector.subscribe(inbox), "subscribe")
    root = unique("CONN.12 a thread in another room")
    thread = operator.open_thread_in_other_room(root)
    reply = unique("CONN.12 the operator replies in the other room's thread")
    operator.post_in_other_room(reply, thread_id=thread)
    fence(operator, inbox, "CONN.12 the operator in the room")
    leaked = [t for t in (root, reply) if t in inbox.texts()]
    assert not leaked, f"delivered, though in a thread of another room or channel: {leaked!r}"


@pytest.mark.requirement("CONN.12")
def test_a_strangers_reply_in_a_thread_is_not_delivered(
    connector_target: ConnectorTarget, scenario: Scenario, operator: OperatorSide
) -> None:
    require(connector_target, Capability.STRANGERS)
    require(connector_target, Capability.THREADS)
    connector = scenario.connect()
    inbox = Inbox()
    within(CALL_BOUND_S, lambda: connector.subscribe(inbox), "subscribe")
    thread = operator.open_thread(unique("CONN.12 the operator's thread"))
    stranger = unique("CONN.12 a stranger replies in the thread")
    operator.post_as_stranger(stranger, thread_id=thread)
    after = unique("CONN.12 the operator replies after the stranger")
    operator.post(after, thread_id=thread)
    inbox.wait_for(after)
    assert stranger not in inbox.texts(), "a stranger's reply in a thread was delivered"


MIXED_ROUNDS = 4


@pytest.mark.requirement("CONN.12")
def test_in_a_mixed_conversation_only_the_operators_messages_in_the_room_arrive(
    connector_target: ConnectorTarget, scenario: Scenario, operator: OperatorSide
) -> None:
    """Strangers and another room interleaved with the operator: exactly the operator's
    messages in the connector's room arrive, once each and in order."""
    posters: list[Callable[[str], str]] = []
    if Capability.STRANGERS not in connector_target.unsupported:
        posters.append(lambda text: operator.post_as_stranger(text))
    if Capability.OTHER_ROOM not in connector_target.unsupported:
        posters.append(operator.post_in_other_room)
    if not posters:
        pytest.skip("this kind has neither strangers nor other rooms")
    connector = scenario.connect()
    inbox = Inbox()
    within(CALL_BOUND_S, lambda: connector.subscribe(inbox), "subscribe")
    wanted, unwanted = [], []
    for round_ in range(MIXED_ROUNDS):
        for post in posters:
            text = unique(f"CONN.12 round {round_}: not for the connector")
            post(text)
            unwanted.append(text)
        text = unique(f"CONN.12 round {round_}: the operator in the room")
        operator.post(text)
        wanted.append(text)
    inbox.wait_for(wanted[-1])
    received = inbox.texts()
    leaked = [t for t in unwanted if t in received]
    assert not leaked, f"delivered, though from a stranger or another room: {leaked!r}"
    assert [t for t in received if t in wanted] == wanted, (
        f"the operator's messages arrived as {received!r}, not once each in order"
    )
