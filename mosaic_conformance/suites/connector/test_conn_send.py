"""CONN.4-6: sending to the operator."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from mosaic_conformance.connectors.jsonlines import CLOSE_TIMEOUT_S, CommandConnector
from mosaic_conformance.connectors.types import OrchestratorConnector, OutboundMessage, SendResult
from mosaic_conformance.harness.chat.subject import unwrapped
from mosaic_conformance.harness.chat.target import (
    Capability,
    ConnectorTarget,
    OperatorSide,
    Scenario,
    Variant,
)
from mosaic_conformance.harness.outcomes import HarnessError, unsupported
from mosaic_conformance.wait import NotReady, wait_for

from .conftest import CALL_BOUND_S, MESSAGE_WAIT_S, require, unique, wait_seen, within

LOST_ANSWERS = 2  # consecutive: more than an HTTP client's own single retry hides
CALLER_TRIES = 3  # the caller sends the same message again while it is not delivered


@pytest.mark.requirement("CONN.4")
def test_send_is_delivered_with_an_id_and_the_operator_sees_it(
    scenario: Scenario, operator: OperatorSide
) -> None:
    connector = scenario.connect()
    text = unique("CONN.4 hello operator")
    result = within(CALL_BOUND_S, lambda: connector.send(OutboundMessage(text)), "send")
    assert result.delivered, f"send was not delivered: {result.error}"
    assert result.message_id, "a delivered send carries the message id"
    seen = wait_seen(operator, text)
    if seen[0].id is not None:
        assert seen[0].id == result.message_id, (
            f"send returned the message id {result.message_id!r}, but the operator's chat "
            f"knows the message as {seen[0].id!r}"
        )


@pytest.mark.requirement("CONN.4")
def test_a_send_with_attachments_is_delivered_and_seen(
    scenario: Scenario, operator: OperatorSide
) -> None:
    """``attachments`` hold local paths or URLs; a connector shows them as it can (a line
    naming each, an upload under the file's name, a link), and the message itself arrives:
    the operator sees each attachment's file name or URL."""
    connector = scenario.connect()
    text = unique("CONN.4 with attachments")
    # each attachment, and what of it the operator must see: a file's name, a URL whole
    attachments = {
        "build/report.txt": "report.txt",
        "https://ci.test/run/42": "https://ci.test/run/42",
    }
    message = OutboundMessage(text, attachments=tuple(attachments))
    result = within(CALL_BOUND_S, lambda: connector.send(message), "send with attachments")
    assert result.delivered, f"a send with attachments was not delivered: {result.error}"

    def missing() -> list[str]:
        """What the operator does not see yet: the text, and each attachment (an upload may
        come as a message of its own)."""
        seen = [m.text for m in operator.seen()]
        shown = "\n".join(seen)
        unseen = [a for a, shown_as in attachments.items() if shown_as not in shown]
        if not any(t.startswith(text) for t in seen):
            unseen.insert(0, text)
        return unseen

    try:
        wait_for(
            lambda: not missing(), what=f"the operator seeing {text!r}", timeout=MESSAGE_WAIT_S
        )
    except NotReady:
        pytest.fail(
            f"the operator never saw the message sent with attachments, or not each "
            f"attachment's file name or URL: {missing()!r} not seen"
        )


@pytest.mark.requirement("CONN.5")
@pytest.mark.parametrize("variant", [Variant.SERVER_DOWN, Variant.BAD_TOKEN], ids=lambda v: v.value)
def test_send_that_cannot_deliver_returns_not_delivered_without_raising(
    connector_target: ConnectorTarget, scenario: Scenario, variant: Variant
) -> None:
    if variant is Variant.BAD_TOKEN:
        require(connector_target, Capability.BAD_TOKEN)
    connector = scenario.connect(variant)

    def send() -> SendResult | BaseException:
        try:
            return connector.send(OutboundMessage(unique("CONN.5 undeliverable")))
        except Exception as exc:  # the defect under test
            return exc

    result = within(CALL_BOUND_S, send, f"send with {variant.value}")
    assert isinstance(result, SendResult), (
        f"send raised {type(result).__name__}: {result} (with {variant.value}); it must return "
        "a not-delivered result instead"
    )
    assert not result.delivered, f"send claims delivery with {variant.value}"
    assert result.error, "a not-delivered result says why"


def _program(connector: OrchestratorConnector) -> CommandConnector:
    inner = unwrapped(connector)
    if not isinstance(inner, CommandConnector):
        unsupported("only a program (--conformance-connector-cmd) has an input to close")
    return inner


@pytest.mark.requirement("CONN.5")
def test_a_program_answers_a_send_in_flight_when_its_input_ends(
    connector_target: ConnectorTarget, scenario: Scenario
) -> None:
    """The protocol: at the end of its input a program answers every request it read (a
    send it cannot finish, as not delivered), then exits within CLOSE_TIMEOUT_S."""
    require(connector_target, Capability.SILENT_SERVER)
    connector = scenario.connect(Variant.SILENT_SERVER)  # a send there does not end soon
    program = _program(connector)
    outcome: dict[str, object] = {}

    def send() -> None:
        try:
            outcome["result"] = connector.send(OutboundMessage(unique("CONN.5 in flight")))
        except Exception as exc:
            outcome["error"] = exc

    sender = threading.Thread(target=send, name="send in flight", daemon=True)
    sender.start()
    try:
        wait_for(lambda: program.in_flight > 0, what="the send request written", timeout=10)
    except NotReady as exc:
        raise HarnessError(f"the suite could not put a send in flight: {exc}") from exc
    started = time.monotonic()
    within(CALL_BOUND_S, connector.close, "closing the program's input")
    sender.join(CLOSE_TIMEOUT_S)
    took = time.monotonic() - started
    error = outcome.get("error")
    assert "result" in outcome, (
        f"a send in flight when the program's input ended got no answer "
        f"({type(error).__name__ if error else 'still waiting'}: {error}); it must end as "
        "delivered or not"
    )
    assert program.exit_problem is None, (
        f"after the end of its input ({took:.1f} s): {program.exit_problem}"
    )


def _resend_until_delivered(send: Callable[[], SendResult], tries: int) -> tuple[SendResult, int]:
    result, sent = send(), 1
    while not result.delivered and sent < tries:  # the caller retries the same message
        result, sent = send(), sent + 1
    return result, sent


@pytest.mark.requirement("CONN.6")
def test_a_retried_send_is_delivered_once(
    connector_target: ConnectorTarget,
    scenario: Scenario,
    operator: OperatorSide,
    record_figure: Callable[[str, object], None],
) -> None:
    """The answers of two attempts in a row are lost (each reached the server): whoever
    retries, the connector or its caller with the same message (the same key), the
    operator sees the message once."""
    require(connector_target, Capability.LOST_RESPONSE)
    connector = scenario.connect()
    message = OutboundMessage(unique("CONN.6 exactly once"))
    scenario.lose_send_responses(LOST_ANSWERS)
    result, sent = _resend_until_delivered(
        lambda: within(CALL_BOUND_S, lambda: connector.send(message), "send"), CALLER_TRIES
    )
    lost = scenario.send_responses_lost()
    record_figure("answers_lost", lost)
    record_figure("caller_sends", sent)
    if lost < LOST_ANSWERS:
        raise HarnessError(
            f"the fault did not fire: {lost} of {LOST_ANSWERS} send answers were lost, so the "
            "retry was not judged"
        )
    assert result.delivered, f"the retried send was not delivered: {result.error}"
    copies = wait_seen(operator, message.text)
    assert len(copies) == 1, f"the operator sees the message {len(copies)} times, not once"
