"""The Matrix connector's wire behaviour, against a stand-in transport (the suite checks it
end to end on Synapse; these pin the details the issue names)."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from mosaic_conformance.connectors import ConnectorConfig, MatrixConfig, default_registry
from mosaic_conformance.connectors.matrix import (
    SYNC_TIMEOUT_S,
    TIMELINE_LIMIT,
    MatrixConnector,
    create_connector,
)
from mosaic_conformance.connectors.types import InboundMessage, OutboundMessage
from mosaic_conformance.harness.chat.target import SilentServer
from mosaic_conformance.suites.connector.conftest import Inbox
from mosaic_conformance.wait import wait_for

TOKEN = "syt_secret_token_value_123"
ROOM = "!abc/def:example.test"
ME = "@mos:example.test"
OPERATOR = "@op:example.test"
CONFIG = MatrixConfig("http://hs.test", ME, ROOM, (OPERATOR,))

Responder = Callable[[httpx.Request], httpx.Response]


def connector(
    respond: Responder, state_dir: Path | None = None, **kwargs: float
) -> MatrixConnector:
    transport = httpx.MockTransport(respond)
    return MatrixConnector(CONFIG, TOKEN, state_dir=state_dir, transport=transport, **kwargs)


def test_send_percent_encodes_the_room_and_reuses_the_txn_id_across_retries() -> None:
    paths: list[str] = []

    def respond(request: httpx.Request) -> httpx.Response:
        paths.append(request.url.raw_path.decode())
        if len(paths) == 1:
            raise httpx.ReadError("the answer was lost", request=request)
        if len(paths) == 2:
            return httpx.Response(429, json={"errcode": "M_LIMIT_EXCEEDED", "retry_after_ms": 1})
        return httpx.Response(200, json={"event_id": "$sent"})

    result = connector(respond).send(OutboundMessage("hi"))
    assert result.delivered
    assert result.message_id == "$sent"
    assert len(paths) == 3, paths
    assert len(set(paths)) == 1, f"the retries changed the txnId: {paths}"
    assert paths[0].startswith(
        "/_matrix/client/v3/rooms/%21abc%2Fdef%3Aexample.test/send/m.room.message/"
    )


def test_each_message_gets_its_own_txn_id() -> None:
    paths: list[str] = []

    def respond(request: httpx.Request) -> httpx.Response:
        paths.append(request.url.path)
        return httpx.Response(200, json={"event_id": f"${len(paths)}"})

    sender = connector(respond)
    sender.send(OutboundMessage("one"))
    sender.send(OutboundMessage("one"))
    assert len(set(paths)) == 2


def test_a_thread_send_carries_an_m_thread_relation() -> None:
    bodies: list[dict[str, object]] = []

    def respond(request: httpx.Request) -> httpx.Response:
        bodies.append(json.loads(request.content))
        return httpx.Response(200, json={"event_id": "$x"})

    connector(respond).send(OutboundMessage("in thread", thread_id="$root"))
    relation = bodies[0]["m.relates_to"]
    assert relation == {
        "rel_type": "m.thread",
        "event_id": "$root",
        "is_falling_back": True,
        "m.in_reply_to": {"event_id": "$root"},
    }


def test_a_refused_send_is_not_delivered_and_names_the_error_without_the_token() -> None:
    def respond(request: httpx.Request) -> httpx.Response:
        return httpx.Response(403, json={"errcode": "M_FORBIDDEN", "error": "not in room"})

    result = connector(respond).send(OutboundMessage("hi"))
    assert not result.delivered
    assert result.error is not None
    assert "M_FORBIDDEN" in result.error
    assert TOKEN not in result.error


def test_health_tells_reachable_from_authenticated() -> None:
    def respond(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/_matrix/client/versions":
            assert "Authorization" not in request.headers
            return httpx.Response(200, json={"versions": ["v1.11"]})
        return httpx.Response(401, json={"errcode": "M_UNKNOWN_TOKEN", "error": "Unknown token"})

    health = connector(respond).health()
    assert health.reachable
    assert not health.authenticated
    assert health.detail is not None
    assert "M_UNKNOWN_TOKEN" in health.detail


def test_health_of_a_server_that_is_not_matrix_is_not_reachable() -> None:
    health = connector(lambda request: httpx.Response(404, text="nginx")).health()
    assert not health.reachable
    assert not health.authenticated


def test_the_sync_read_timeout_exceeds_the_sync_timeout() -> None:
    made = connector(lambda request: httpx.Response(200, json={}))
    assert made._sync_http.timeout.read is not None
    assert made._sync_http.timeout.read > SYNC_TIMEOUT_S


def test_subscribe_filters_syncs_resumes_from_since_and_drops_what_is_not_the_operators() -> None:
    syncs: list[httpx.QueryParams] = []
    delivered = threading.Event()

    def event(sender: str, body: str, **content: object) -> dict[str, object]:
        return {
            "type": "m.room.message",
            "event_id": f"${body}",
            "sender": sender,
            "origin_server_ts": 1_700_000_000_000,
            "content": {"msgtype": "m.text", "body": body, **content},
        }

    def respond(request: httpx.Request) -> httpx.Response:
        syncs.append(request.url.params)
        since = request.url.params.get("since")
        if since is None:
            return httpx.Response(200, json={"next_batch": "s1"})
        if since == "s1":
            thread = {"m.relates_to": {"rel_type": "m.thread", "event_id": "$root"}}
            timeline = [
                event(ME, "mine"),
                event("@stranger:example.test", "strange"),
                event(OPERATOR, "hello"),
                event(OPERATOR, "threaded", **thread),
            ]
            rooms = {
                ROOM: {"timeline": {"events": timeline}},
                "!other:example.test": {"timeline": {"events": [event(OPERATOR, "elsewhere")]}},
            }
            return httpx.Response(200, json={"next_batch": "s2", "rooms": {"join": rooms}})
        delivered.wait(5)
        return httpx.Response(200, json={"next_batch": since})

    received: list[InboundMessage] = []

    def handler(message: InboundMessage) -> None:
        received.append(message)
        if len(received) == 2:
            delivered.set()

    made = connector(respond)
    made.subscribe(handler)
    assert delivered.wait(5)
    made.close()
    assert [m.text for m in received] == ["hello", "threaded"]
    assert received[0].sender == OPERATOR
    assert received[0].ts.startswith("2023-11-14T22:13:20")
    assert received[1].thread_id == "$root"
    assert syncs[1]["since"] == "s1"
    assert syncs[2]["since"] == "s2"
    sync_filter = json.loads(syncs[1]["filter"])
    assert sync_filter["room"]["rooms"] == [ROOM]
    assert sync_filter["room"]["timeline"]["limit"] == TIMELINE_LIMIT


def test_the_token_never_appears_in_a_repr() -> None:
    made = connector(lambda request: httpx.Response(200, json={}))
    assert TOKEN not in repr(made)


def test_the_factory_takes_the_token_from_the_environment_only(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("MATRIX_ACCESS_TOKEN", raising=False)
    config = ConnectorConfig(kind="matrix", matrix=CONFIG)
    with pytest.raises(ValueError, match="MATRIX_ACCESS_TOKEN is not set"):
        create_connector(config)
    monkeypatch.setenv("MATRIX_ACCESS_TOKEN", TOKEN)
    made = default_registry().create(config)
    assert isinstance(made, MatrixConnector)
    assert made.kind == "matrix"
    made.close()


def test_a_caller_retrying_the_same_message_reuses_its_txn_id() -> None:
    paths: list[str] = []

    def respond(request: httpx.Request) -> httpx.Response:
        paths.append(request.url.path)
        return httpx.Response(200, json={"event_id": "$same"})

    sender, message = connector(respond), OutboundMessage("once")
    sender.send(message)
    sender.send(message)
    assert paths[0] == paths[1]
    assert paths[0].endswith(message.key)


def _event(body: str, sender: str = OPERATOR) -> dict[str, object]:
    return {
        "type": "m.room.message",
        "event_id": f"${body}",
        "sender": sender,
        "origin_server_ts": 1_700_000_000_000,
        "content": {"msgtype": "m.text", "body": body},
    }


class Homeserver:
    """A scripted homeserver for the transport: ``/sync`` answers by ``since`` (a dict of
    bodies), every request recorded; an unscripted ``since`` is held, then answered empty."""

    def __init__(self, syncs: dict[str | None, dict[str, object]]) -> None:
        self.syncs = syncs
        self.requests: list[httpx.Request] = []
        self.messages: list[dict[str, object]] = []  # /messages pages, in order

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.url.path.endswith("/messages"):
            return httpx.Response(200, json=self.messages.pop(0))
        since = request.url.params.get("since")
        if since in self.syncs:
            return httpx.Response(200, json=self.syncs[since])
        time.sleep(0.05)
        return httpx.Response(200, json={"next_batch": since})

    def sinces(self) -> list[str | None]:
        return [r.url.params.get("since") for r in self.requests if r.url.path.endswith("/sync")]


def _timeline(*events: dict[str, object], **fields: object) -> dict[str, object]:
    return {"rooms": {"join": {ROOM: {"timeline": {"events": list(events), **fields}}}}}


def test_a_limited_timeline_is_back_filled_from_messages_oldest_first() -> None:
    server = Homeserver(
        {
            None: {"next_batch": "s1"},
            "s1": {
                "next_batch": "s2",
                **_timeline(_event("m4"), _event("m5"), limited=True, prev_batch="p4"),
            },
        }
    )
    server.messages = [
        {"chunk": [_event("m3"), _event("m2")], "end": "p2"},
        {"chunk": [_event("m1")], "end": "p1"},
        {"chunk": []},
    ]
    made, inbox = connector(server), Inbox()
    made.subscribe(inbox)
    inbox.wait_for("m5", timeout=5)
    made.close()
    assert inbox.texts() == ["m1", "m2", "m3", "m4", "m5"]
    pages = [r.url.params for r in server.requests if r.url.path.endswith("/messages")]
    assert [(p["from"], p["to"], p["dir"]) for p in pages] == [
        ("p4", "s1", "b"),
        ("p2", "s1", "b"),
        ("p1", "s1", "b"),
    ]


def test_the_cursor_is_saved_and_a_new_connector_resumes_from_it(tmp_path: Path) -> None:
    server = Homeserver(
        {None: {"next_batch": "s1"}, "s1": {"next_batch": "s2", **_timeline(_event("one"))}}
    )
    first, inbox = connector(server, tmp_path), Inbox()
    first.subscribe(inbox)
    inbox.wait_for("one", timeout=5)
    first.close()
    (saved,) = tmp_path.glob("matrix-*.json")
    assert json.loads(saved.read_text())["cursor"] == {"since": "s2", "delivered": ["$one"]}
    # s1 again, as a homeserver might: the event delivered before is not delivered again.
    server.syncs["s2"] = {"next_batch": "s3", **_timeline(_event("one"), _event("two"))}
    before = len(server.sinces())
    second, again = connector(server, tmp_path), Inbox()
    second.subscribe(again)
    again.wait_for("two", timeout=5)
    second.close()
    assert server.sinces()[before] == "s2", "the first sync goes on from the saved since"
    assert again.texts() == ["two"]


@pytest.mark.parametrize(
    "content", ["", "{not json", '{"format": 1, "conversation": "@x in !y", "cursor": {}}']
)
def test_a_corrupted_cursor_is_a_warning_and_a_start_from_the_present(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, content: str
) -> None:
    server = Homeserver({None: {"next_batch": "now"}})
    first = connector(server, tmp_path)
    first.subscribe(Inbox())
    first.close()
    (saved,) = tmp_path.glob("matrix-*.json")
    saved.write_text(content)
    caplog.set_level(logging.WARNING)
    before = len(server.sinces())
    second = connector(server, tmp_path)
    second.subscribe(Inbox())
    second.close()
    assert "is ignored" in caplog.text
    assert str(saved) in caplog.text
    assert server.sinces()[before] is None, "a start from the present: an initial sync"


def test_each_start_from_the_present_asks_a_sync_of_its_own() -> None:
    """Synapse answers a repeated /sync from a cache, with the old position."""
    server = Homeserver({None: {"next_batch": "s1"}})
    for _ in range(2):
        made = connector(server)
        made.subscribe(Inbox())
        made.close()
    initial = [r.url.params["filter"] for r in server.requests if "since" not in r.url.params]
    assert len(initial) >= 2
    assert len(set(initial)) == len(initial)


def test_close_cuts_a_long_poll_in_flight() -> None:
    with SilentServer() as silent:
        made = MatrixConnector(MatrixConfig(silent.url, ME, ROOM, (OPERATOR,)), TOKEN)
        made._since = "s1"  # as from a saved cursor: the first request is the long-poll
        made.subscribe(Inbox())
        poller = made._poller
        assert poller is not None
        wait_for(lambda: silent._held, what="the long-poll to reach the server", timeout=5)
        start = time.monotonic()
        made.close()
        took = time.monotonic() - start
        poller.join(timeout=2)
    assert took < 1.0, f"close took {took:.2f} s"
    assert not poller.is_alive()
