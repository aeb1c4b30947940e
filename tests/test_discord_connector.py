"""The Discord connector's specifics against the local Discord stand-in, and the stand-in
itself. The connector suite judges the rest (tests/test_broken_connectors.py)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pytest

pytest.importorskip("httpx")

import httpx

from mosaic_conformance.connectors import (
    ConnectorConfig,
    DiscordConfig,
    OrchestratorConnector,
    OutboundMessage,
    SendResult,
    default_registry,
)
from mosaic_conformance.connectors.discord import (
    TOKEN_ENV,
    DiscordConnector,
    MissingToken,
    create_connector,
)
from mosaic_conformance.harness.chat.discord import DiscordScenario, DiscordTarget
from mosaic_conformance.harness.chat.discord_standin import DiscordStandIn
from mosaic_conformance.harness.chat.faults import ANSWER_REPLACED
from mosaic_conformance.harness.chat.target import TargetOptions, Variant
from mosaic_conformance.suites.connector.conftest import Inbox, unique
from mosaic_conformance.wait import wait_for

Maker = Callable[[ConnectorConfig, Mapping[str, str]], OrchestratorConnector]


@pytest.fixture(scope="module")
def standin() -> Iterator[DiscordStandIn]:
    with DiscordStandIn() as server:
        yield server


def _target(standin: DiscordStandIn, make: Maker, workdir: Path) -> DiscordTarget:
    return DiscordTarget(standin, TargetOptions("discord", make, workdir))


@pytest.fixture
def scenario(standin: DiscordStandIn, tmp_path: Path) -> Iterator[DiscordScenario]:
    target = _target(standin, create_connector, tmp_path)
    try:
        with target.scenario() as made:
            assert isinstance(made, DiscordScenario)
            yield made
    finally:
        target.close()


# Discord specifics


def test_retries_reuse_the_nonce_with_enforce_nonce(scenario: DiscordScenario) -> None:
    connector = scenario.connect()
    before = len(scenario.standin.sent_bodies)
    scenario.lose_next_send_response()
    assert connector.send(OutboundMessage("twice sent, once posted")).delivered
    bodies = scenario.standin.sent_bodies[before:]
    assert len(bodies) == 2
    assert bodies[0] == bodies[1]
    assert bodies[0]["enforce_nonce"] is True
    assert 0 < len(bodies[0]["nonce"]) <= 25


def test_waits_out_a_429_for_its_retry_after(scenario: DiscordScenario) -> None:
    connector = scenario.connect()
    assert connector.health().authenticated
    refused = scenario.proxy.counts().get(ANSWER_REPLACED, 0)
    scenario.proxy.fail_next(429, 2, retry_after=0.4)
    start = time.monotonic()
    result = connector.send(OutboundMessage("after the rate limit"))
    took = time.monotonic() - start
    assert result.delivered, result.error
    assert scenario.proxy.counts()[ANSWER_REPLACED] - refused == 2, "two refused tries"
    assert took >= 0.79, f"both retry_after waits were waited out, not {took:.2f} s"


def test_a_rate_limit_longer_than_the_send_deadline_is_not_waited(
    scenario: DiscordScenario,
) -> None:
    connector = scenario.connect()
    scenario.proxy.fail_next(429, 1, retry_after=3600)
    result = connector.send(OutboundMessage("in an hour"))
    assert not result.delivered
    assert "429" in (result.error or "")


def test_server_errors_are_retried_then_reported(scenario: DiscordScenario) -> None:
    connector = scenario.connect()
    scenario.proxy.fail_next(503, 100)
    result = connector.send(OutboundMessage("while Discord is down"))
    assert not result.delivered
    assert "503" in (result.error or "")
    health = connector.health()
    assert (health.reachable, health.authenticated) == (True, False)
    scenario.proxy.clear_faults()
    assert connector.send(OutboundMessage("back again")).delivered


def test_long_text_goes_as_several_messages(scenario: DiscordScenario) -> None:
    connector = scenario.connect()
    text = "x" * 2000 + "y" * 10
    result = connector.send(OutboundMessage(text))
    assert result.delivered, result.error
    posted = [m for m in scenario.operator.seen() if m.sender == scenario.bot.id]
    assert [m.text for m in posted] == ["x" * 2000, "y" * 10]
    assert posted[0].id == result.message_id


def test_history_before_subscribe_is_not_delivered(scenario: DiscordScenario) -> None:
    old = unique("history")
    scenario.operator.post(old)
    thread_id = scenario.operator.open_thread(unique("an old thread"))
    scenario.operator.post(unique("old reply"), thread_id=thread_id)
    connector = scenario.connect()
    inbox = Inbox()
    connector.subscribe(inbox)
    new_reply = unique("new reply")
    scenario.operator.post(new_reply, thread_id=thread_id)
    inbox.wait_for(new_reply)  # in order: anything older would have come first
    assert old not in inbox.texts()
    assert not any(t.startswith(("old reply", "an old thread")) for t in inbox.texts())


def test_the_token_never_shows(scenario: DiscordScenario, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    token = scenario.bot.token or ""
    good = scenario.connect()
    bad = scenario.connect(Variant.BAD_TOKEN)
    down = scenario.connect(Variant.SERVER_DOWN)
    said: list[object] = [good, bad, down]
    for connector in (good, bad, down):
        said += [connector.health(), connector.send(OutboundMessage("x"))]
        connector.subscribe(Inbox())
    text = " ".join(repr(item) for item in said) + caplog.text
    for secret in (token, "not.a-token-the-stand-in-knows"):
        assert secret not in text


def test_factory_reads_the_token_from_the_environment() -> None:
    config = ConnectorConfig(kind="discord", discord=DiscordConfig(channel_id="1"))
    with pytest.raises(MissingToken, match=TOKEN_ENV):
        create_connector(config, {})
    with pytest.raises(ValueError, match="channel_id"):
        create_connector(ConnectorConfig(kind="discord"), {TOKEN_ENV: "t"})
    connector = create_connector(config, {TOKEN_ENV: "t"})
    assert isinstance(connector, DiscordConnector)
    connector.close()


def test_registry_creates_discord(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(TOKEN_ENV, "from-the-environment")
    config = ConnectorConfig(kind="discord", discord=DiscordConfig(channel_id="42"))
    connector = default_registry().create(config)
    assert isinstance(connector, DiscordConnector)
    assert connector.config.channel_id == "42"
    connector.close()


# The stand-in, as Discord's reference describes it


def test_standin_follows_the_documented_api(standin: DiscordStandIn) -> None:
    bot = standin.add_user("bot", bot=True)
    person = standin.add_user("person")
    channel = standin.add_channel("general")
    headers = {"Authorization": f"Bot {bot.token}"}
    with httpx.Client(base_url=standin.api_base, headers=headers) as api:
        assert httpx.get(f"{standin.api_base}/users/@me").status_code == 401
        assert api.get("/users/@me").json()["id"] == bot.id
        ids = [standin.post_as(person.id, channel, f"m{i}")["id"] for i in range(5)]
        assert ids == sorted(ids, key=int)
        after = api.get(f"/channels/{channel}/messages", params={"after": ids[0], "limit": 2})
        assert [m["id"] for m in after.json()] == [ids[2], ids[1]]  # right after, newest first
        assert api.get(f"/channels/{channel}/messages", params={"limit": 0}).status_code == 400
        body = {"content": "once", "nonce": "n-1", "enforce_nonce": True}
        first = api.post(f"/channels/{channel}/messages", json=body).json()
        again = api.post(f"/channels/{channel}/messages", json=body).json()
        assert first["id"] == again["id"]
        loose = {"content": "twice", "nonce": "n-2"}
        posted = {api.post(f"/channels/{channel}/messages", json=loose).json()["id"] for _ in "ab"}
        assert len(posted) == 2, "without enforce_nonce a nonce does not deduplicate"
        thread = api.post(f"/channels/{channel}/messages/{ids[0]}/threads", json={"name": "t"})
        assert thread.status_code == 201
        assert thread.json()["id"] == ids[0]
        guild = api.get(f"/channels/{channel}").json()["guild_id"]
        active = api.get(f"/guilds/{guild}/threads/active").json()["threads"]
        assert ids[0] in [t["id"] for t in active]
        assert api.get("/channels/1/messages").json()["code"] == 10003


# Restarts, archived threads, close


def _connector(
    scenario: DiscordScenario, state_dir: Path, cls: type[DiscordConnector] = DiscordConnector
) -> DiscordConnector:
    """A connector straight to the stand-in, polling fast, keeping its cursor in ``state_dir``."""
    config = DiscordConfig(
        scenario.channel_id, (scenario.operator.sender_id,), scenario.standin.api_base
    )
    return cls(config, scenario.bot.token or "", state_dir=state_dir, poll_interval=0.05)


class IgnoresArchivedThreads(DiscordConnector):
    def _archived_threads(self, since: object, deadline: float) -> Iterator[dict[str, object]]:
        return iter(())


@pytest.mark.parametrize(
    "cls", [DiscordConnector, IgnoresArchivedThreads], ids=["shipped", "no-archived"]
)
def test_a_reply_in_a_thread_archived_before_the_next_poll_is_delivered(
    scenario: DiscordScenario, tmp_path: Path, cls: type[DiscordConnector]
) -> None:
    thread_id = scenario.operator.open_thread(unique("a thread"))
    connector, inbox = _connector(scenario, tmp_path, cls), Inbox()
    connector.subscribe(inbox)
    reply, fence = unique("a reply, then the thread is archived"), unique("fence")
    with scenario.standin.paused():  # no poll in between: the thread is archived at once
        scenario.operator.post(reply, thread_id=thread_id)
        scenario.standin.archive_thread(thread_id)
    scenario.operator.post(fence)
    inbox.wait_for(fence)
    connector.close()
    delivered = [m for m in inbox.messages if m.text == reply]
    if cls is DiscordConnector:
        assert [m.thread_id for m in delivered] == [thread_id]
    else:  # the check fails without the archived threads
        assert delivered == []


def test_a_restarted_connector_resumes_its_channel_and_threads(
    scenario: DiscordScenario, tmp_path: Path
) -> None:
    history = unique("before the first start")
    scenario.operator.post(history)
    first, inbox = _connector(scenario, tmp_path), Inbox()
    first.subscribe(inbox)
    thread_id = scenario.operator.open_thread(unique("a thread"))
    seen = unique("seen before the restart")
    scenario.operator.post(seen, thread_id=thread_id)
    inbox.wait_for(seen)
    first.close()
    down = [unique("while down, in the channel"), unique("while down, in the thread")]
    scenario.operator.post(down[0])
    scenario.operator.post(down[1], thread_id=thread_id)
    second, again = _connector(scenario, tmp_path), Inbox()
    second.subscribe(again)
    again.wait_for(down[1])
    second.close()
    assert again.texts() == down
    assert [m.thread_id for m in again.messages] == [None, thread_id]


def test_a_corrupted_cursor_is_a_warning_and_no_history_is_replayed(
    scenario: DiscordScenario, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    first = _connector(scenario, tmp_path)
    first.subscribe(Inbox())
    scenario.operator.post(unique("history"))
    first.close()
    for saved in tmp_path.glob("discord-*.json"):
        saved.write_text('{"format": 1, "conversation"')
    caplog.set_level(logging.WARNING)
    second, inbox = _connector(scenario, tmp_path), Inbox()
    second.subscribe(inbox)
    fence = unique("after the restart")
    scenario.operator.post(fence)
    inbox.wait_for(fence)
    second.close()
    assert inbox.texts() == [fence]
    assert "is ignored" in caplog.text


def test_close_cuts_a_request_in_flight(scenario: DiscordScenario) -> None:
    connector = scenario.connect(Variant.SILENT_SERVER)
    result: list[SendResult] = []
    sender = threading.Thread(target=lambda: result.append(connector.send(OutboundMessage("x"))))
    sender.start()
    wait_for(
        lambda: scenario._silent is not None and scenario._silent._held, what="a request", timeout=5
    )
    start = time.monotonic()
    connector.close()
    took = time.monotonic() - start
    sender.join(timeout=5)
    assert took < 1.0, f"close took {took:.2f} s"
    assert len(result) == 1
    assert not result[0].delivered
