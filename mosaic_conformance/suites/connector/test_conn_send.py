"""CONN.4-6: sending to the operator."""

from __future__ import annotations

import pytest

from mosaic_conformance.connectors.types import OutboundMessage, SendResult
from mosaic_conformance.harness.chat.target import (
    Capability,
    ConnectorTarget,
    OperatorSide,
    Scenario,
    Variant,
)

from .conftest import CALL_BOUND_S, require, unique, wait_seen, within


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
        assert seen[0].id == result.message_id, "the id is the one the operator's chat shows"


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


@pytest.mark.requirement("CONN.6")
def test_a_retried_send_is_delivered_once(
    connector_target: ConnectorTarget, scenario: Scenario, operator: OperatorSide
) -> None:
    require(connector_target, Capability.LOST_RESPONSE)
    connector = scenario.connect()
    message = OutboundMessage(unique("CONN.6 exactly once"))
    scenario.lose_next_send_response()  # it reaches the server; its answer does not return
    result = within(CALL_BOUND_S, lambda: connector.send(message), "send")
    if not result.delivered:  # the caller retries the same message
        result = within(CALL_BOUND_S, lambda: connector.send(message), "the retried send")
    assert result.delivered, f"the retried send was not delivered: {result.error}"
    copies = wait_seen(operator, message.text)
    assert len(copies) == 1, f"the operator sees the message {len(copies)} times, not once"
