"""CONN.13: a connector that restarts (a new instance or process, the same state folder)
delivers every operator message posted while it was down exactly once, in order, and none of
those it delivered before the restart again.

The suite gives each connector a state folder of its own (``MOSAIC_CONNECTOR_STATE_DIR``) and
restarts it in two ways (:mod:`mosaic_conformance.harness.chat.restarts`):

- **closed**: ``close()`` (a program: the end of its standard input), then a new connector;
- **crashed**: stopped as a crash right after its last write to the state folder would stop
  it (a program: SIGKILL; a Python connector: started on the state folder as that write's
  start left it, so a cursor written in place is found torn). The operator's last message
  comes alone, after the connector went idle (its earlier ones saved): it may come again (a
  crash can land between a delivery and the save of the cursor after it); nothing older may.

While it is down the operator posts, also a reply in a thread opened before (where the kind
has threads: a connector that keeps a cursor per thread must keep all of them; the thread id
it comes with is CONN.9's to judge). Fewer messages than a server's default sync timeline
holds: the back-fill of a longer backlog is judged under CONN.11's long outage.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from mosaic_conformance.harness.chat.target import (
    Capability,
    ConnectorTarget,
    OperatorSide,
    Scenario,
)

from .conftest import CALL_BOUND_S, MESSAGE_WAIT_S, Inbox, unique, within

BEFORE = 3  # delivered before the restart
WHILE_DOWN = 5  # posted while no connector runs
AFTER = 2  # posted once the new connector has subscribed


def _post(operator: OperatorSide, label: str, count: int) -> list[str]:
    texts = [unique(f"CONN.13 {label} {n}") for n in range(count)]
    for text in texts:
        operator.post(text)
    return texts


def _deliveries(inbox: Inbox, wanted: set[str]) -> list[str]:
    return [text for text in inbox.texts() if text in wanted]


@pytest.mark.requirement("CONN.13")
@pytest.mark.parametrize("crash", [False, True], ids=["closed", "crashed"])
def test_a_restarted_connector_delivers_what_was_posted_while_it_was_down(
    connector_target: ConnectorTarget,
    scenario: Scenario,
    operator: OperatorSide,
    crash: bool,
    record_figure: Callable[[str, object], None],
) -> None:
    threads = Capability.THREADS not in connector_target.unsupported
    first = scenario.connect()
    before_inbox = Inbox()
    within(CALL_BOUND_S, lambda: first.subscribe(before_inbox), "subscribe")
    before = _post(operator, "before the restart", BEFORE)
    thread_root = unique("CONN.13 a thread opened before the restart")
    thread_id = operator.open_thread(thread_root) if threads else None
    before += [thread_root] if threads else []
    before_inbox.wait_for_all(before, MESSAGE_WAIT_S)
    scenario.wait_idle(first)  # saved: a crash now can repeat only what comes next
    last = unique("CONN.13 the last message before the restart")
    operator.post(last)
    before.append(last)
    before_inbox.wait_for(last)  # in order: all of them are in

    stopped = within(
        CALL_BOUND_S, lambda: scenario.stop_connector(first, crash=crash), "stopping the connector"
    )
    while_down = _post(operator, "while the connector is down", WHILE_DOWN)
    if thread_id is not None:
        reply = unique("CONN.13 a thread reply while the connector is down")
        operator.post(reply, thread_id=thread_id)
        while_down.append(reply)

    second = within(CALL_BOUND_S, stopped.start, "starting the connector again")
    inbox = Inbox()
    within(CALL_BOUND_S, lambda: second.subscribe(inbox), "subscribe after the restart")
    after = _post(operator, "after the restart", AFTER)
    inbox.wait_for_all(after, MESSAGE_WAIT_S)  # in order: once these are in, all are

    expected = while_down + after
    received = _deliveries(inbox, set(before) | set(expected))
    # A crash may land between the last delivery and the save of the cursor after it.
    may_repeat = {last} if crash else set()
    again = [t for t in received if t in set(before) - may_repeat]
    repeated_once = [t for t in received if t in may_repeat]
    fresh = [t for t in received if t in set(expected)]
    lost = [t for t in expected if t not in fresh]
    doubled = sorted({t for t in fresh if fresh.count(t) > 1})
    record_figure("restart", stopped.how)
    record_figure("posted_while_down", len(while_down))
    record_figure("delivered", len(set(fresh) & set(while_down)))
    record_figure("duplicated", len(doubled) + len(again))
    record_figure("lost", len([t for t in lost if t in while_down]))

    problems = []
    if lost:
        problems.append(f"lost {len(lost)} of {len(expected)}: {lost!r}")
    if doubled:
        problems.append(f"delivered more than once after the restart: {doubled!r}")
    if again:
        problems.append(f"delivered again, though delivered before the restart: {again!r}")
    if len(repeated_once) > 1:
        problems.append(f"the last message before the crash came {len(repeated_once)} times")
    arrival = list(dict.fromkeys(fresh))
    if not problems and arrival != expected:
        problems.append(f"out of order: posted {expected!r}, received {arrival!r}")
    how = "crashed" if crash else "closed"
    assert not problems, f"across a restart of the connector ({how}): " + "; ".join(problems)
