"""The Matrix connector's wire behaviour, against a stand-in transport (the suite checks it
end to end on Synapse; these pin the details the issue names)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable

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

TOKEN = "syt_secret_token_value_123"
ROOM = "!abc/def:example.test"
ME = "@mos:example.test"
OPERATOR = "@op:example.test"
CONFIG = MatrixConfig("http://hs.test", ME, ROOM, (OPERATOR,))

Responder = Callable[[httpx.Request], httpx.Response]


def connector(respond: Responder, **kwargs: float) -> MatrixConnector:
    return MatrixConnector(CONFIG, TOKEN, transport=httpx.MockTransport(respond), **kwargs)


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
    assert sync_filter["room"]["timeline"]["limit"] == TIMELINE_LIMIT > 10


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
