"""CONN.11: no operator message lost or doubled across a dropped connection or a restart."""

from __future__ import annotations

import pytest

from mosaic_conformance.connectors.testing import (
    Capability,
    ConnectorTarget,
    OperatorSide,
    Scenario,
)

from .conftest import CALL_BOUND_S, RECOVERY_WAIT_S, Inbox, require, unique, within


def _exactly_once(inbox: Inbox, texts: list[str]) -> None:
    __tracebackhide__ = True
    for text in texts:
        inbox.wait_for(text, RECOVERY_WAIT_S)
    received = inbox.texts()
    doubled = [t for t in texts if received.count(t) != 1]
    assert not doubled, f"delivered more than once: {doubled!r}"


@pytest.mark.requirement("CONN.11")
def test_no_message_is_lost_or_doubled_across_a_dropped_connection(
    connector_target: ConnectorTarget, scenario: Scenario, operator: OperatorSide
) -> None:
    require(connector_target, Capability.DROP_CONNECTIONS)
    connector = scenario.connect()
    inbox = Inbox()
    within(CALL_BOUND_S, lambda: connector.subscribe(inbox), "subscribe")
    before = unique("CONN.11 before the drop")
    operator.post(before)
    inbox.wait_for(before)
    scenario.drop_connections()
    during = [unique(f"CONN.11 after the drop {n}") for n in range(3)]
    for text in during:
        operator.post(text)
    scenario.drop_connections()  # once more, while it catches up
    _exactly_once(inbox, [before, *during])


@pytest.mark.requirement("CONN.11")
def test_no_message_is_lost_or_doubled_across_a_server_restart(
    connector_target: ConnectorTarget, scenario: Scenario, operator: OperatorSide
) -> None:
    require(connector_target, Capability.RESTART_SERVER)
    connector = scenario.connect()
    inbox = Inbox()
    within(CALL_BOUND_S, lambda: connector.subscribe(inbox), "subscribe")
    before = unique("CONN.11 before the restart")
    operator.post(before)
    inbox.wait_for(before)
    scenario.restart_server()
    after = [unique(f"CONN.11 after the restart {n}") for n in range(3)]
    for text in after:
        operator.post(text)
    _exactly_once(inbox, [before, *after])
