"""Homeservers: each starts with a readiness probe or says why it cannot run here."""

from __future__ import annotations

import contextlib
import http.server
import importlib.metadata
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from mosaic_conformance.harness.chat.homeserver import (
    HomeserverUnavailable,
    MatrixUser,
    open_homeserver,
)
from mosaic_conformance.harness.chat.homeserver.conduit import conduit_environment
from mosaic_conformance.harness.chat.homeserver.probe import server_version
from mosaic_conformance.harness.chat.target import closed_port
from mosaic_conformance.wait import NotReady, wait_for


def test_an_unknown_homeserver_is_named_in_the_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown homeserver 'dendrite'"):
        open_homeserver("dendrite", tmp_path, {})


def test_conduit_is_configured_by_its_environment() -> None:
    env = conduit_environment("reg-token")
    assert env["CONDUIT_CONFIG"] == ""
    assert env["CONDUIT_ALLOW_REGISTRATION"] == "true"
    assert env["CONDUIT_REGISTRATION_TOKEN"] == "reg-token"
    assert env["CONDUIT_ALLOW_FEDERATION"] == "false"


def test_conduit_starts_or_says_why_it_cannot(tmp_path: Path) -> None:
    server = open_homeserver("conduit", tmp_path, {})
    try:
        server.start()
    except HomeserverUnavailable as exc:
        reason = str(exc)
        server.close()
        if "Docker" not in reason and "image" not in reason:
            raise  # an unavailable Conduit says that Docker or its image is the reason
        pytest.skip(f"Conduit cannot run here: {reason}")
    try:
        assert (server.version or "").startswith("Conduit ")
        account = server.register_unique("probe")
        user = MatrixUser(server.url, account)
        room = user.create_room("probe")
        assert user.send_text(room, "hello")
        user.close()
    finally:
        server.close()


def test_an_external_server_that_does_not_answer_is_unavailable(tmp_path: Path) -> None:
    server = open_homeserver("external", tmp_path, {"url": f"http://127.0.0.1:{closed_port()}"})
    with pytest.raises(HomeserverUnavailable, match="does not answer"):
        server.start()


def test_synapse_starts_registers_and_restarts_on_the_same_url(tmp_path: Path) -> None:
    server = open_homeserver("synapse", tmp_path, {})
    try:
        server.start()
    except HomeserverUnavailable as exc:
        server.close()
        pytest.skip(str(exc))
    try:
        assert server.url.startswith("http://127.0.0.1:")
        assert server.version == f"Synapse {importlib.metadata.version('matrix-synapse')}"
        assert not server.url.endswith(":0")
        user = MatrixUser(server.url, server.register_unique("operator"))
        room = user.create_room("probe")
        user.send_text(room, "before")
        url = server.url
        server.restart()
        assert server.url == url
        user.send_text(room, "after")
        assert [e["content"]["body"] for e in user.messages(room)] == ["before", "after"]
        assert "access_token" not in repr(server.register_unique("x"))
        user.close()
    finally:
        server.close()


def test_a_probe_that_never_holds_times_out_with_the_components_state() -> None:
    with pytest.raises(NotReady, match=r"(?s)the thing did not happen.*last lines: x"):
        wait_for(lambda: None, timeout=0.2, what="the thing", state=lambda: "last lines: x")


@contextlib.contextmanager
def answering(answers: dict[str, object]) -> Iterator[str]:
    """A server on 127.0.0.1 that answers each path of ``answers`` with its JSON, and 404."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = answers.get(self.path)
            self.send_response(404 if body is None else 200)
            self.end_headers()
            self.wfile.write(json.dumps(body or {"errcode": "M_UNRECOGNIZED"}).encode())

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(
    ("answers", "said"),
    [
        # a homeserver serving federation (Conduit) says its name and version there
        (
            {"/_matrix/federation/v1/version": {"server": {"name": "Conduit", "version": "0.9"}}},
            "Conduit 0.9",
        ),
        # Synapse with a client listener only: its admin API, build details left out
        (
            {"/_synapse/admin/v1/server_version": {"server_version": "1.2.3 (b=x,abc)"}},
            "Synapse 1.2.3",
        ),
        # a server that says nothing, or says it oddly, is judged without a version
        ({}, None),
        ({"/_matrix/federation/v1/version": {"server": "odd"}}, None),
    ],
)
def test_the_report_names_what_the_homeserver_says_it_is(
    answers: dict[str, object], said: str | None
) -> None:
    with answering(answers) as url:
        assert server_version(url) == said
    assert server_version(f"http://127.0.0.1:{closed_port()}") is None
