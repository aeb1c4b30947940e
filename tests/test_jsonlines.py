"""The JSON-lines protocol's client and adapter, with small scripted programs (the whole suite
also runs through the adapter on Synapse: see test_broken_connectors.py)."""

from __future__ import annotations

import io
import json
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mosaic_conformance.connectors.jsonlines import (
    CLOSE_TIMEOUT_S,
    CommandConnector,
    ProtocolError,
    Server,
    config_from_json,
    config_to_json,
)
from mosaic_conformance.connectors.types import (
    ConnectorConfig,
    ConnectorHealth,
    DiscordConfig,
    InboundMessage,
    MatrixConfig,
    OutboundMessage,
    SendResult,
    TmuxConfig,
)
from mosaic_conformance.wait import wait_for

CONFIG = ConnectorConfig(
    kind="matrix", matrix=MatrixConfig("http://hs.test", "@mos:hs.test", "!r:hs.test", ("@op:x",))
)
SECRET = "syt_do_not_print_me"

# A connector program in a few lines: echoes sends as delivered, and on subscribe sends one
# operator message after its response; "boom" makes it fail, "die" makes it exit, "wire" answers
# with the message as it came, "hold" is never answered. On unsubscribe it writes one event
# before its answer and one after (the second is a defect the suite must see). It says its
# token on stderr as it starts, and ends at the end of its input.
PROGRAM = textwrap.dedent(
    """
    import json, os, sys
    config = json.loads(os.environ["MOSAIC_CONNECTOR_CONFIG"])
    print("starting with " + os.environ["MATRIX_ACCESS_TOKEN"], file=sys.stderr, flush=True)
    def write(data):
        sys.stdout.write(json.dumps(data) + "\\n"); sys.stdout.flush()
    def event(text):
        write({"event": "message", "subscription": "a", "message": {
            "id": "$" + text, "text": text, "sender": "@op:x",
            "ts": "2026-01-01T00:00:00Z", "thread_id": None}})
    for line in sys.stdin:
        request = json.loads(line)
        op, rid = request["op"], request["id"]
        if op == "send":
            text = request["message"]["text"]
            if text == "boom":
                write({"id": rid, "error": "RuntimeError: boom"})
            elif text == "die":
                print("dying with token " + os.environ["MATRIX_ACCESS_TOKEN"], file=sys.stderr)
                sys.exit(3)
            elif text == "wire":
                message_id = json.dumps(request["message"])
                write({"id": rid, "result": {"delivered": True, "message_id": message_id}})
            elif text != "hold":
                write({"id": rid, "result": {"delivered": True, "message_id": "$" + text}})
        elif op == "subscribe":
            write({"id": rid, "result": {"subscription": "a"}})
            event(config["matrix"]["room_id"])
        elif op == "unsubscribe":
            event("before the unsubscribe answer")
            write({"id": rid, "result": {}})
            event("after the unsubscribe answer")
        elif op == "health":
            write({"id": rid, "result": {"reachable": True, "authenticated": False,
                                         "last_seen": None, "detail": "bad token"}})
    """
)


@pytest.fixture
def program(tmp_path: Path) -> Iterator[CommandConnector]:
    script = tmp_path / "connector.py"
    script.write_text(PROGRAM)
    made = CommandConnector([sys.executable, str(script)], CONFIG, {"MATRIX_ACCESS_TOKEN": SECRET})
    yield made
    made.close()


def test_the_config_block_round_trips_through_json() -> None:
    full = ConnectorConfig(
        kind="discord",
        matrix=CONFIG.matrix,
        discord=DiscordConfig("123", ("u1",), "http://127.0.0.1:9/api/v10"),
        tmux=TmuxConfig("sock", "sess"),
    )
    assert config_from_json(config_to_json(full)) == full
    assert config_from_json('{"kind": "matrix"}') == ConnectorConfig(kind="matrix")
    with pytest.raises(ValueError, match="unknown connector kind"):
        config_from_json('{"kind": "irc"}')


def test_a_program_sends_subscribes_and_reports_health(program: CommandConnector) -> None:
    assert program.kind == "matrix"
    result = program.send(OutboundMessage("hello"))
    assert result.delivered
    assert result.message_id == "$hello"
    got: list[InboundMessage] = []
    arrived = threading.Event()
    unsubscribe = program.subscribe(lambda m: (got.append(m), arrived.set()))
    assert arrived.wait(10)
    assert got[0].text == "!r:hs.test"  # the config reached the program
    unsubscribe()
    health = program.health()
    assert health.reachable
    assert not health.authenticated
    assert health.detail == "bad token"


def test_an_error_response_raises(program: CommandConnector) -> None:
    with pytest.raises(ProtocolError, match="boom"):
        program.send(OutboundMessage("boom"))


def test_a_dead_program_raises_with_its_stderr_and_no_token(program: CommandConnector) -> None:
    with pytest.raises(ProtocolError) as raised:
        program.send(OutboundMessage("die"))
    message = str(raised.value)
    assert "exited with 3" in message or "closed its stdout" in message
    assert SECRET not in message


def test_the_message_goes_on_the_wire_with_its_key_and_attachments(
    program: CommandConnector,
) -> None:
    message = OutboundMessage("wire", attachments=("a.txt", "https://ci.test/1"))
    wire = json.loads(program.send(message).message_id or "{}")
    assert wire == {
        "text": "wire",
        "thread_id": None,
        "attachments": ["a.txt", "https://ci.test/1"],
        "key": message.key,
    }
    again = json.loads(program.send(message).message_id or "{}")
    assert again["key"] == message.key, "a message sent again keeps its key"
    assert OutboundMessage("wire").key != message.key, "a new message has a key of its own"


def test_events_before_the_unsubscribe_answer_arrive_before_it_returns_and_later_ones_too(
    program: CommandConnector,
) -> None:
    got: list[str] = []
    late = threading.Event()

    def slow_handler(message: InboundMessage) -> None:
        time.sleep(0.2)  # a handler that takes its time: unsubscribe must wait for it
        got.append(message.text)
        if message.text == "after the unsubscribe answer":
            late.set()

    unsubscribe = program.subscribe(slow_handler)
    unsubscribe()
    assert "before the unsubscribe answer" in got, "unsubscribe returned before its events"
    # what the program wrote after answering reaches the handler: the suite judges it (CONN.8)
    assert late.wait(10), "an event written after the unsubscribe answer was dropped"


def test_a_tap_hears_every_raw_line_also_those_before_it(program: CommandConnector) -> None:
    heard: list[tuple[str, str]] = []
    program.send(OutboundMessage("hello"))
    program.tap(lambda stream, line: heard.append((stream, line)))
    program.health()
    assert ("stderr", f"starting with {SECRET}") in heard, "the tap missed the early stderr"
    answers = [json.loads(line) for stream, line in heard if stream == "stdout"]
    assert [a["id"] for a in answers] == [1, 2], "the tap missed stdout lines"


def test_a_program_that_ends_without_answering_is_told_at_close(
    program: CommandConnector,
) -> None:
    outcome: list[object] = []
    sender = threading.Thread(
        target=lambda: outcome.append(_send_or_error(program, "hold")), daemon=True
    )
    sender.start()
    wait_for(lambda: program.in_flight > 0, what="the send written", timeout=10)
    program.close()
    sender.join(10)
    assert isinstance(outcome[0], ProtocolError)
    assert program.exit_problem == "it ended without answering send"


def _send_or_error(program: CommandConnector, text: str) -> object:
    try:
        return program.send(OutboundMessage(text))
    except ProtocolError as exc:
        return exc


def test_a_program_that_does_not_exit_at_the_end_of_its_input_is_killed(tmp_path: Path) -> None:
    script = tmp_path / "stays.py"
    script.write_text("import sys, time\nsys.stdin.read()\ntime.sleep(600)\n")
    made = CommandConnector([sys.executable, str(script)], CONFIG, {})
    started = time.monotonic()
    made.close()
    assert time.monotonic() - started < CLOSE_TIMEOUT_S + 3
    assert made.exit_problem is not None
    assert "was killed" in made.exit_problem


class _Stuck:
    """A connector whose sends never end, and whose unsubscribe is counted."""

    kind = "matrix"

    def __init__(self) -> None:
        self.unsubscribed = 0
        self.closed = threading.Event()

    def send(self, message: OutboundMessage) -> SendResult:
        self.closed.wait(600)
        return SendResult(True, "$late")

    def subscribe(self, handler: object) -> object:
        def unsubscribe() -> None:
            self.unsubscribed += 1

        return unsubscribe

    def health(self) -> ConnectorHealth:
        return ConnectorHealth(True, True)

    def close(self) -> None:
        self.closed.set()


def test_the_adapter_answers_what_is_in_flight_at_the_end_of_input_and_ends_in_time() -> None:
    stuck = _Stuck()
    out = io.StringIO()
    lines = [
        json.dumps({"id": 1, "op": "send", "message": {"text": "never ends"}}),
        json.dumps({"id": 2, "op": "unsubscribe", "subscription": "never-given"}),
        json.dumps({"id": 3, "op": "subscribe"}),
        json.dumps({"id": 4, "op": "unsubscribe", "subscription": "s1"}),
        json.dumps({"id": 5, "op": "unsubscribe", "subscription": "s1"}),
    ]
    started = time.monotonic()
    Server(stuck, out).serve(io.StringIO("\n".join(lines) + "\n"))  # type: ignore[arg-type]
    assert time.monotonic() - started < CLOSE_TIMEOUT_S
    answers = {a["id"]: a for a in map(json.loads, out.getvalue().splitlines())}
    assert answers[1]["result"]["delivered"] is False, "a send in flight ends as not delivered"
    assert "input ended" in answers[1]["result"]["error"]
    assert answers[2] == {"id": 2, "result": {}}, "an unknown subscription unsubscribes fine"
    assert answers[5] == {"id": 5, "result": {}}, "so does one unsubscribed already"
    assert stuck.unsubscribed == 1
    assert len(out.getvalue().splitlines()) == len(lines), "one answer per request"
