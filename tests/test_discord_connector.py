"""The Discord connector's specifics against the local Discord stand-in, and the stand-in
itself. The connector suite judges the rest (tests/test_broken_connectors.py)."""

from __future__ import annotations

import itertools
import logging
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
from mosaic_conformance.harness.chat.target import TargetOptions, Variant
from mosaic_conformance.suites.connector.conftest import Inbox, unique

Maker = Callable[[ConnectorConfig, Mapping[str, str]], OrchestratorConnector]


@pytest.fixture(scope="module")
def standin() -> Iterator[DiscordStandIn]:
    with DiscordStandIn() as server:
        yield server


def _target(standin: DiscordStandIn, make: Maker, workdir: Path) -> DiscordTarget:
    return DiscordTarget(standin, TargetOptions("discord", make, workdir))


@pytest.fixture
def scenario(standin: DiscordStandIn, tmp_path: Path) -> Iterator[DiscordScenario]:
    with _target(standin, create_connector, tmp_path).scenario() as made:
        assert isinstance(made, DiscordScenario)
        yield made


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
    start = len(scenario.standin.requests)
    scenario.standin.rate_limit_next(2, retry_after=0.4)
    result = connector.send(OutboundMessage("after the rate limit"))
    assert result.delivered, result.error
    times = [when for when, _method, _target in scenario.standin.requests[start:]]
    assert len(times) == 3, "two refused tries, then the one that lands"
    assert all(later - earlier >= 0.39 for earlier, later in itertools.pairwise(times))


def test_a_rate_limit_longer_than_the_send_deadline_is_not_waited(
    scenario: DiscordScenario,
) -> None:
    connector = scenario.connect()
    scenario.standin.rate_limit_next(1, retry_after=3600)
    result = connector.send(OutboundMessage("in an hour"))
    assert not result.delivered
    assert "429" in (result.error or "")


def test_server_errors_are_retried_then_reported(scenario: DiscordScenario) -> None:
    connector = scenario.connect()
    scenario.standin.fail_with(503)
    result = connector.send(OutboundMessage("while Discord is down"))
    assert not result.delivered
    assert "503" in (result.error or "")
    health = connector.health()
    assert (health.reachable, health.authenticated) == (True, False)
    scenario.standin.fail_with(None)
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
