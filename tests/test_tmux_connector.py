"""The tmux connector's specifics on a real tmux server. The connector suite judges the rest
(tests/test_broken_connectors.py)."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager
from pathlib import Path

import pytest

pytest.importorskip("libtmux")
if shutil.which("tmux") is None:
    pytest.skip("tmux is not installed: no `tmux` on PATH", allow_module_level=True)


from mosaic_conformance.connectors import (
    ConnectorConfig,
    OrchestratorConnector,
    TmuxConfig,
    default_registry,
)
from mosaic_conformance.connectors.tmux import (
    CHAT_WINDOW,
    TmuxConnector,
    create_connector,
    pane_answers,
)
from mosaic_conformance.connectors.tmux_chat import chat_dir, parse_screen, render
from mosaic_conformance.connectors.types import OutboundMessage
from mosaic_conformance.harness.chat.target import Scenario, TargetOptions, Unsupported, Variant
from mosaic_conformance.harness.chat.tmux import TmuxTarget, tmux_socket_path
from mosaic_conformance.suites.connector.conftest import Inbox
from mosaic_conformance.wait import wait_for

WAIT_S = 20.0  # generous: a busy 2-core machine
Maker = Callable[[ConnectorConfig, Mapping[str, str]], OrchestratorConnector]


def _scenario(make: Maker, workdir: Path) -> AbstractContextManager[Scenario]:
    target = TmuxTarget(TargetOptions(kind="tmux", make_connector=make, workdir=workdir))
    return target.scenario()


@pytest.fixture
def scenario(tmp_path: Path) -> Iterator[Scenario]:
    with _scenario(create_connector, tmp_path) as made:
        yield made


def test_a_subscriber_reopens_a_closed_chat_pane(scenario: Scenario) -> None:
    connector = scenario.connect()
    connector.subscribe(Inbox())
    server = scenario.server  # type: ignore[attr-defined]
    directory = chat_dir(server.socket_name, "mosaic-orchestrator")
    server.sessions.get(session_name="mosaic-orchestrator").windows.get(
        window_name=CHAT_WINDOW
    ).kill()
    wait_for(lambda: not pane_answers(directory), what="the chat pane to close", timeout=20)
    wait_for(
        lambda: pane_answers(directory), what="the connector to reopen the chat pane", timeout=20
    )


@pytest.mark.parametrize("text", ["-starts like a flag", "ends like a tmux separator;", ";"])
def test_operator_text_arrives_as_typed(scenario: Scenario, text: str) -> None:
    connector = scenario.connect()
    inbox = Inbox()
    connector.subscribe(inbox)
    scenario.operator.post(text)
    assert inbox.wait_for(text).text == text


def test_health_names_a_missing_session(scenario: Scenario) -> None:
    socket_name = scenario.socket_name  # type: ignore[attr-defined]
    connector = TmuxConnector(TmuxConfig(socket_name=socket_name, session="no-such-session"))
    health = connector.health()
    assert (health.reachable, health.authenticated) == (False, False)
    assert "no session 'no-such-session'" in (health.detail or "")
    result = connector.send(OutboundMessage("hello"))
    assert not result.delivered
    assert "no-such-session" in (result.error or "")


def test_tmux_lacks_strangers_and_tokens(scenario: Scenario) -> None:
    with pytest.raises(Unsupported, match="other sender"):
        scenario.operator.post_as_stranger("x")
    with pytest.raises(Unsupported, match="tokens"):
        scenario.connect(Variant.BAD_TOKEN)


def test_a_quoted_line_is_not_a_thread_reply(scenario: Scenario) -> None:
    connector = scenario.connect()
    inbox = Inbox()
    connector.subscribe(inbox)
    scenario.operator.post("> quoted, not a reply")
    assert inbox.wait_for("> quoted, not a reply").thread_id is None


def test_send_with_thread_id_is_labelled_in_the_pane(scenario: Scenario) -> None:
    connector = scenario.connect()
    assert connector.send(OutboundMessage("in a thread", thread_id="T1")).delivered
    seen = [m for m in scenario.operator.seen() if m.text == "in a thread"]
    assert seen
    assert seen[0].thread_id == "T1"


def test_registry_creates_tmux_by_default() -> None:
    connector = default_registry().create()
    assert isinstance(connector, TmuxConnector)
    assert connector.config == TmuxConfig()
    connector.close()


def test_screen_frames_read_back() -> None:
    screen = render("abc", "one\n\nthree", "T") + "typed by hand\n>abc in reply\n"
    messages = list(parse_screen((screen + render("d", "x", None)).splitlines()))
    assert [(m.from_orchestrator, m.text, m.id, m.thread_id) for m in messages] == [
        (True, "one\n\nthree", "abc", "T"),
        (False, "typed by hand", None, None),
        (False, "in reply", None, "abc"),
        (True, "x", "d", None),
    ]


def test_scenario_cleans_up_its_server_and_files(tmp_path: Path) -> None:
    with _scenario(create_connector, tmp_path) as scenario:
        server = scenario.server  # type: ignore[attr-defined]
        directory = chat_dir(server.socket_name, "mosaic-orchestrator")
        scenario.connect().subscribe(Inbox())
        assert server.is_alive()
        assert directory.exists()
    assert not server.is_alive()
    assert not directory.exists()
    assert not tmux_socket_path(server.socket_name).exists()
