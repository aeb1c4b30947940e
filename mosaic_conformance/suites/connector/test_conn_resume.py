"""CONN.11: while the operator keeps writing, the server or the link fails in each way the suite
can make it fail; no operator message is lost, doubled or reordered, and no send is doubled.

Each test runs its fault's rounds: the operator posts a burst, the fault strikes and the
operator posts another burst while it lasts, the fault strikes the connector's send (where it
can be aimed), and the connector sends; what the operator sees of that send is checked as soon
as it returns (a tmux pane shows nothing from before a restart). A fence message closes the
stream: messages arrive in order, so once the fence is in, whatever is missing, doubled or out
of place is a defect.

Every fault is counted where it lands (the proxy, the stand-in, the homeserver's restarts, the
chat pane) and the test checks that it landed as often as planned: a fault that never fired
judged nothing, and says so as an error. A dropped connection is aimed at an answer that
brings messages (a connector that forgets its place after a transport error is caught every
time); a long outage piles up more messages than a server's default sync timeline holds (10),
so a connector must back-fill; a half-open link swallows everything and closes nothing, so
only the connector's own read timeout gets it out.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass

import pytest

from mosaic_conformance.connectors.types import OrchestratorConnector, OutboundMessage, SendResult
from mosaic_conformance.harness.chat.target import (
    Capability,
    ConnectorTarget,
    OperatorSide,
    Scenario,
)
from mosaic_conformance.harness.outcomes import HarnessError
from mosaic_conformance.harness.plugin.settings import ConnectorSettings

from .conftest import CALL_BOUND_S, Inbox, require, unique, wait_seen, within

ROUNDS = 3
BURST = 2  # operator messages before and while each strike lasts
FAILED_ANSWERS = 2  # 5xx or 429 answers per strike: fewer than any sane number of retries
SERVER_TIMELINE_LIMIT = 10  # events a server's /sync carries by default (Synapse, Conduit)
BACKLOG = SERVER_TIMELINE_LIMIT + 5  # posted during the long outage

Strike = Callable[[Scenario], AbstractContextManager[object]]


def _nothing(scenario: Scenario) -> None:
    pass


def at_once(act: Callable[[Scenario], None]) -> Strike:
    """A fault that strikes and is over (a cut, a restart, armed answers)."""

    @contextlib.contextmanager
    def strike(scenario: Scenario) -> Iterator[None]:
        act(scenario)
        yield

    return strike


@dataclass(frozen=True)
class Fault:
    """One way the server or the link fails, struck mid-stream (the operator posts ``burst``
    messages while it lasts) and again just before a send."""

    capability: Capability
    strike: Strike
    strike_send: Callable[[Scenario], None]
    landed_per_round: int  # how often it must land each round, counted where it lands
    rounds: int = ROUNDS
    burst: int = BURST


FAULTS = {
    "dropped-connections": Fault(
        Capability.DROP_CONNECTIONS,
        at_once(lambda s: s.drop_connections()),
        lambda s: s.drop_connections(),
        2,
    ),
    "server-restart": Fault(
        Capability.RESTART_SERVER, at_once(lambda s: s.restart_server()), _nothing, 1
    ),
    "server-killed": Fault(
        Capability.CRASH_SERVER, at_once(lambda s: s.crash_server()), _nothing, 1
    ),
    "5xx-answers": Fault(
        Capability.SERVER_ERRORS,
        at_once(lambda s: s.fail_requests(503, FAILED_ANSWERS)),
        lambda s: s.fail_requests(502, FAILED_ANSWERS, sends_only=True),
        2 * FAILED_ANSWERS,
    ),
    "429-answers": Fault(
        Capability.SERVER_ERRORS,
        at_once(lambda s: s.fail_requests(429, FAILED_ANSWERS)),
        lambda s: s.fail_requests(429, FAILED_ANSWERS, sends_only=True),
        2 * FAILED_ANSWERS,
    ),
    # One round each: getting out of a half-open link takes a connector's read timeout.
    "half-open-link": Fault(Capability.HALF_OPEN, lambda s: s.half_open(), _nothing, 1, rounds=1),
    "long-outage": Fault(
        Capability.OUTAGE, lambda s: s.outage(), _nothing, 1, rounds=1, burst=BACKLOG
    ),
}


def _post_burst(operator: OperatorSide, label: str, size: int = BURST) -> list[str]:
    texts = [unique(f"{label} {n}") for n in range(size)]
    for text in texts:
        operator.post(text)
    return texts


def _send(connector: OrchestratorConnector, text: str) -> SendResult:
    return within(CALL_BOUND_S, lambda: connector.send(OutboundMessage(text)), "a send amid faults")


def stream_problems(posted: list[str], received: list[str]) -> list[str]:
    """How the operator's messages as received differ from the stream as posted."""
    problems = []
    lost = [t for t in posted if t not in received]
    doubled = sorted({t for t in received if received.count(t) > 1})
    if lost:
        problems.append(f"lost {len(lost)} of {len(posted)}: {lost!r}")
    if doubled:
        problems.append(f"delivered more than once: {doubled!r}")
    in_order = [t for t in posted if t in received]
    arrival = list(dict.fromkeys(received))  # first arrivals, in order
    if not problems and arrival != in_order:
        problems.append(f"out of order: posted {in_order!r}, received {arrival!r}")
    return problems


def send_problems(text: str, result: SendResult, operator: OperatorSide) -> list[str]:
    """How one send made amid faults falls short, as the operator sees it once it returned:
    a delivered send is seen exactly once, one not delivered at most once (a retry must
    not store it again)."""
    copies = len(wait_seen(operator, text)) if result.delivered else _count(operator, text)
    if copies > 1:
        return [f"the operator sees the send {text!r} {copies} times"]
    return []


def _count(operator: OperatorSide, text: str) -> int:
    return sum(1 for m in operator.seen() if m.text == text)


@pytest.mark.requirement("CONN.11")
@pytest.mark.parametrize("fault_name", list(FAULTS))
def test_an_operator_writing_through_faults_loses_nothing(
    connector_target: ConnectorTarget,
    connector_settings: ConnectorSettings,
    scenario: Scenario,
    operator: OperatorSide,
    fault_name: str,
    record_figure: Callable[[str, object], None],
) -> None:
    fault = FAULTS[fault_name]
    require(connector_target, fault.capability)
    connector = scenario.connect()
    inbox = Inbox()
    within(CALL_BOUND_S, lambda: connector.subscribe(inbox), "subscribe")
    posted: list[str] = []
    sends = 0
    send_failures: list[str] = []
    for round_ in range(fault.rounds):
        label = f"CONN.11 {fault_name} round {round_}"
        posted += _post_burst(operator, f"{label} before the fault")
        with fault.strike(scenario):
            posted += _post_burst(operator, f"{label} during the fault", fault.burst)
        fault.strike_send(scenario)
        text = unique(f"{label} the orchestrator sends")
        send_failures += send_problems(text, _send(connector, text), operator)
        sends += 1
    fence = unique("CONN.11 the last operator message")
    operator.post(fence)
    posted.append(fence)

    inbox.wait_for_all(posted, connector_settings.recovery_wait_s)
    landed = scenario.strikes().get(fault.capability, 0)
    planned = fault.landed_per_round * fault.rounds
    record_figure("operator_messages", len(posted))
    record_figure("connector_sends", sends)
    record_figure("faults_planned", planned)
    record_figure("faults_injected", landed)  # as counted where they landed
    wanted = set(posted)
    received = [t for t in inbox.texts() if t in wanted]
    problems = stream_problems(posted, received)
    record_figure("messages_lost", len(wanted - set(received)))
    record_figure("messages_doubled", len(received) - len(set(received)))
    assert not problems, f"across {fault_name}: " + "; ".join(problems)
    assert not send_failures, f"across {fault_name}: " + "; ".join(send_failures)
    if landed < planned:
        raise HarnessError(
            f"the fault {fault_name} landed {landed} times, not the {planned} planned: the "
            "connector was not judged under it"
        )
