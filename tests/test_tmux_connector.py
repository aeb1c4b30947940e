"""The tmux connector on a real tmux server, and broken variants the checks must catch."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager
from pathlib import Path

import pytest

pytest.importorskip("libtmux")
if shutil.which("tmux") is None:
    pytest.skip("tmux is not installed: no `tmux` on PATH", allow_module_level=True)

from chat_checks import (
    Inbox,
    check_health,
    check_others_filtered,
    check_retry_delivers_once,
    check_send_fails_softly,
    check_send_is_seen,
    check_subscribe_once_without_echo,
    check_survives,
    check_threads,
    check_unsubscribe_stops,
    wait_until,
)

from mosaic_conformance.connectors import (
    ConnectorConfig,
    OrchestratorConnector,
    TmuxConfig,
    default_registry,
)
from mosaic_conformance.connectors.testing import Scenario, TargetOptions, Unsupported, Variant
from mosaic_conformance.connectors.tmux import (
    CHAT_WINDOW,
    TmuxConnector,
    create_connector,
    now_iso,
    pane_answers,
)
from mosaic_conformance.connectors.tmux_chat import INBOX_FILE, chat_dir, parse_screen, render
from mosaic_conformance.connectors.tmux_target import TmuxTarget, tmux_socket_path
from mosaic_conformance.connectors.types import OutboundMessage

Maker = Callable[[ConnectorConfig, Mapping[str, str]], OrchestratorConnector]


def _scenario(make: Maker, workdir: Path) -> AbstractContextManager[Scenario]:
    target = TmuxTarget(TargetOptions(kind="tmux", make_connector=make, workdir=workdir))
    return target.scenario()


@pytest.fixture
def scenario(tmp_path: Path) -> Iterator[Scenario]:
    with _scenario(create_connector, tmp_path) as made:
        yield made


# The shipped connector passes every check tmux can take.


def test_send_is_seen_in_the_pane(scenario: Scenario) -> None:
    check_send_is_seen(scenario)


@pytest.mark.parametrize("variant", [Variant.SERVER_DOWN, Variant.SILENT_SERVER], ids=str)
def test_send_to_a_missing_or_hung_server_is_not_delivered(
    scenario: Scenario, variant: Variant
) -> None:
    check_send_fails_softly(scenario, variant)


def test_retried_send_is_shown_once(scenario: Scenario) -> None:
    check_retry_delivers_once(scenario)


def test_operator_lines_arrive_once_without_echo(scenario: Scenario) -> None:
    check_subscribe_once_without_echo(scenario)


def test_unsubscribe_stops_delivery(scenario: Scenario) -> None:
    check_unsubscribe_stops(scenario)


def test_other_sessions_are_not_delivered(scenario: Scenario) -> None:
    check_others_filtered(scenario, strangers=False, other_room=True)


def test_health_of_a_live_and_a_missing_server(scenario: Scenario) -> None:
    check_health(scenario, Variant.HEALTHY, (True, True))
    check_health(scenario, Variant.SERVER_DOWN, (False, False))
    check_health(scenario, Variant.SILENT_SERVER, (False, False))


def test_nothing_lost_or_doubled_across_a_tmux_restart(scenario: Scenario) -> None:
    check_survives(scenario, "restart")


def test_chat_pane_restart_loses_nothing(scenario: Scenario) -> None:
    check_survives(scenario, "drop")  # tmux's "connection" is the chat pane's program


def test_a_subscriber_reopens_a_closed_chat_pane(scenario: Scenario) -> None:
    connector = scenario.connect()
    connector.subscribe(Inbox())
    server = scenario.server  # type: ignore[attr-defined]
    directory = chat_dir(server.socket_name, "mosaic-orchestrator")
    server.sessions.get(session_name="mosaic-orchestrator").windows.get(
        window_name=CHAT_WINDOW
    ).kill()
    wait_until(lambda: not pane_answers(directory), "the chat pane to close")
    wait_until(lambda: pane_answers(directory), "the connector to reopen the chat pane")


@pytest.mark.parametrize("text", ["-starts like a flag", "ends like a tmux separator;", ";"])
def test_operator_text_arrives_as_typed(scenario: Scenario, text: str) -> None:
    connector = scenario.connect()
    inbox = Inbox()
    connector.subscribe(inbox)
    scenario.operator.post(text)
    assert inbox.wait_for_text(text).text == text


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


def test_threads_both_ways(scenario: Scenario) -> None:
    check_threads(scenario)


def test_a_quoted_line_is_not_a_thread_reply(scenario: Scenario) -> None:
    connector = scenario.connect()
    inbox = Inbox()
    connector.subscribe(inbox)
    scenario.operator.post("> quoted, not a reply")
    assert inbox.wait_for_text("> quoted, not a reply").thread_id is None


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


# Broken connectors: each check must catch its defect.


class EchoingTmux(TmuxConnector):
    """Writes what it sends into the operator's inbox, as a screen-scraper would read it."""

    def send(self, message: OutboundMessage) -> object:  # type: ignore[override]
        result = super().send(message)
        record = {"id": "echo", "text": message.text, "sender": "root", "ts": now_iso()}
        with open(self.directory / INBOX_FILE, "a", encoding="utf-8") as inbox:
            inbox.write(json.dumps(record) + "\n")
        return result


class NewIdPerRetry(TmuxConnector):
    """Makes a fresh message id on every attempt, so a retry shows a second copy."""

    def _deliver(self, request: Mapping[str, object]) -> dict[str, object]:
        return super()._deliver({**request, "id": self._new_message_id()})


class RaisesWhenDown(TmuxConnector):
    """Lets a missing server's error escape from send."""

    def _deliver(self, request: Mapping[str, object]) -> dict[str, object]:
        if not self.server.is_alive():
            raise RuntimeError("no tmux server")
        return super()._deliver(request)


class DeafUnsubscribe(TmuxConnector):
    """Returns an unsubscribe that does nothing."""

    def subscribe(self, handler):  # type: ignore[no-untyped-def]
        super().subscribe(handler)
        return lambda: None


class HealthyWhenDown(TmuxConnector):
    """Reports healthy without asking tmux."""

    def health(self):  # type: ignore[no-untyped-def]
        from mosaic_conformance.connectors.types import ConnectorHealth

        return ConnectorHealth(True, True, None, "always fine")


class HangsOnSilence(TmuxConnector):
    """Asks libtmux alone, which waits for a hung tmux server forever."""

    def health(self):  # type: ignore[no-untyped-def]
        from mosaic_conformance.connectors.types import ConnectorHealth

        alive = self.server.is_alive()
        return ConnectorHealth(alive, alive, None, "asked libtmux")


class DropsThreads(TmuxConnector):
    """Forgets the thread of what it sends."""

    def send(self, message: OutboundMessage) -> object:  # type: ignore[override]
        return super().send(OutboundMessage(message.text))


def _broken(cls: type[TmuxConnector]) -> Maker:
    return lambda config, _env: cls(config.tmux)


BROKEN: list[tuple[type[TmuxConnector], Callable[[Scenario], None]]] = [
    (EchoingTmux, check_subscribe_once_without_echo),
    (NewIdPerRetry, check_retry_delivers_once),
    (RaisesWhenDown, lambda s: check_send_fails_softly(s, Variant.SERVER_DOWN)),
    (DeafUnsubscribe, check_unsubscribe_stops),
    (HealthyWhenDown, lambda s: check_health(s, Variant.SERVER_DOWN, (False, False))),
    (DropsThreads, check_threads),
    (HangsOnSilence, lambda s: check_health(s, Variant.SILENT_SERVER, (False, False), 8.0)),
]


@pytest.mark.parametrize(("cls", "check"), BROKEN, ids=[cls.__name__ for cls, _ in BROKEN])
def test_checks_catch_a_broken_tmux_connector(
    cls: type[TmuxConnector], check: Callable[[Scenario], None], tmp_path: Path
) -> None:
    with _scenario(_broken(cls), tmp_path) as scenario, pytest.raises(AssertionError):
        check(scenario)


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
