"""CONN.9: threads, both ways."""

from __future__ import annotations

import pytest

from mosaic_conformance.connectors.types import OutboundMessage
from mosaic_conformance.harness.chat.target import (
    Capability,
    ConnectorTarget,
    OperatorSide,
    Scenario,
)

from .conftest import CALL_BOUND_S, Inbox, require, unique, wait_seen, within


@pytest.fixture(autouse=True)
def _needs_threads(connector_target: ConnectorTarget) -> None:
    require(connector_target, Capability.THREADS)


@pytest.mark.requirement("CONN.9")
def test_a_send_with_a_thread_id_lands_in_that_thread(
    scenario: Scenario, operator: OperatorSide
) -> None:
    connector = scenario.connect()
    thread = operator.open_thread(unique("CONN.9 a thread"))
    text = unique("CONN.9 reply in the thread")
    message = OutboundMessage(text, thread_id=thread)
    result = within(CALL_BOUND_S, lambda: connector.send(message), "send")
    assert result.delivered, f"send was not delivered: {result.error}"
    seen = wait_seen(operator, text)[0]
    assert seen.thread_id == thread, (
        f"the message landed in thread {seen.thread_id!r}, not in {thread!r}"
    )


@pytest.mark.requirement("CONN.9")
def test_an_operator_reply_in_a_thread_arrives_with_its_thread_id(
    scenario: Scenario, operator: OperatorSide
) -> None:
    connector = scenario.connect()
    inbox = Inbox()
    within(CALL_BOUND_S, lambda: connector.subscribe(inbox), "subscribe")
    thread = operator.open_thread(unique("CONN.9 the operator's thread"))
    text = unique("CONN.9 the operator replies in it")
    operator.post(text, thread_id=thread)
    received = inbox.wait_for(text)
    assert received.thread_id == thread, (
        f"the reply arrived with thread id {received.thread_id!r}, not {thread!r}"
    )
