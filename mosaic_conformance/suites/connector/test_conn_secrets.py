"""CONN.14: the token never appears in anything the connector returns, raises or writes.

The connector is driven through all it does (health, sends plain and in a thread, a
subscription that delivers, unsubscribe, close) with a valid token, a token the server does
not know, and no server at all. Everything it hands back is looked at raw, as it comes, by
the suite's recorder (:mod:`mosaic_conformance.harness.chat.subject`): send results, health
answers, delivered messages, exceptions, its repr, log records, and a program's stdout and
stderr. The check runs before any masking: the plugin masks known tokens in failure texts,
which would hide a leak; the failure says where it leaked, masked.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from mosaic_conformance.connectors.types import OutboundMessage
from mosaic_conformance.harness.chat.subject import CALL_BOUND_S, Recorder
from mosaic_conformance.harness.chat.target import (
    Capability,
    ConnectorTarget,
    OperatorSide,
    Scenario,
    Variant,
)
from mosaic_conformance.harness.outcomes import HarnessError

from .conftest import MESSAGE_WAIT_S, Inbox, require, unique

VARIANTS = [Variant.HEALTHY, Variant.BAD_TOKEN, Variant.SERVER_DOWN]


def _attempt(call: Callable[[], object]) -> tuple[bool, object]:
    """``call()``, bounded, whatever it does: whether it answered, and its value. A call that
    raises or hangs is judged by the requirement it breaks; here only what it says counts
    (the recorder saw it)."""
    box: dict[str, object] = {}

    def run() -> None:
        try:
            box["value"] = call()
        except Exception as exc:  # recorded as it passed the recorder
            box["error"] = exc

    worker = threading.Thread(target=run, name="CONN.14 call", daemon=True)
    worker.start()
    worker.join(CALL_BOUND_S)
    return "value" in box, box.get("value")


@pytest.mark.requirement("CONN.14")
@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: v.value)
def test_the_token_never_appears_in_what_the_connector_returns_raises_or_writes(
    connector_target: ConnectorTarget,
    scenario: Scenario,
    operator: OperatorSide,
    recorder: Recorder,
    variant: Variant,
    record_figure: Callable[[str, object], None],
) -> None:
    require(connector_target, Capability.TOKENS)
    if variant is Variant.BAD_TOKEN:
        require(connector_target, Capability.BAD_TOKEN)
    connector = scenario.connect(variant)
    if not recorder.tokens:
        raise HarnessError(f"the {variant.value} connector was made without a token to look for")
    repr(connector)
    answers = [_attempt(connector.health)[0]]
    plain = OutboundMessage(unique("CONN.14 a plain send"))
    answers.append(_attempt(lambda: connector.send(plain))[0])
    if variant is Variant.HEALTHY and Capability.THREADS not in connector_target.unsupported:
        thread = operator.open_thread(unique("CONN.14 a thread"))
        reply = OutboundMessage(unique("CONN.14 a send in a thread"), thread_id=thread)
        answers.append(_attempt(lambda: connector.send(reply))[0])
    inbox = Inbox()
    subscribed, unsubscribe = _attempt(lambda: connector.subscribe(inbox))
    if variant is Variant.HEALTHY and subscribed:
        text = unique("CONN.14 the operator writes")
        operator.post(text)
        inbox.wait_for_all([text], MESSAGE_WAIT_S)  # its delivery is CONN.7's to judge
    if callable(unsubscribe):
        _attempt(unsubscribe)
    answers.append(_attempt(connector.health)[0])
    _attempt(connector.close)  # a program's last words are read by now
    record_figure("values_looked_at", recorder.values)
    leaks = recorder.leaks
    assert not leaks, f"with {variant.value}: the token appears in " + "; ".join(map(str, leaks))
    if not any(answers):
        # Silence keeps no token, but proves nothing: CONN.4 and CONN.10 fail such a connector.
        pytest.skip(
            f"not judged with {variant.value}: the connector answered none of its health and "
            "send calls (each raised or hung), so nothing it says could be looked at"
        )
