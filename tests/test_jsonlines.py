"""The JSON-lines protocol's client and adapter, with small scripted programs (the whole suite
also runs through the adapter on Synapse: see test_broken_connectors.py)."""

from __future__ import annotations

import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from mosaic_conformance.connectors.jsonlines import (
    CommandConnector,
    ProtocolError,
    config_from_json,
    config_to_json,
)
from mosaic_conformance.connectors.types import (
    ConnectorConfig,
    DiscordConfig,
    InboundMessage,
    MatrixConfig,
    OutboundMessage,
    TmuxConfig,
)

CONFIG = ConnectorConfig(
    kind="matrix", matrix=MatrixConfig("http://hs.test", "@mos:hs.test", "!r:hs.test", ("@op:x",))
)
SECRET = "syt_do_not_print_me"

# A connector program in a few lines: echoes sends as delivered, and on subscribe sends one
# operator message after its response; "boom" makes it fail, "die" makes it exit.
PROGRAM = textwrap.dedent(
    """
    import json, os, sys
    config = json.loads(os.environ["MOSAIC_CONNECTOR_CONFIG"])
    def write(data):
        sys.stdout.write(json.dumps(data) + "\\n"); sys.stdout.flush()
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
            else:
                write({"id": rid, "result": {"delivered": True, "message_id": "$" + text}})
        elif op == "subscribe":
            write({"id": rid, "result": {"subscription": "a"}})
            write({"event": "message", "subscription": "a", "message": {
                "id": "$1", "text": config["matrix"]["room_id"], "sender": "@op:x",
                "ts": "2026-01-01T00:00:00Z", "thread_id": None}})
        elif op == "unsubscribe":
            write({"id": rid, "result": {}})
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
