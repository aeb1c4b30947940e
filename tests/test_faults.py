"""The suite's one fault injector (harness/chat/faults.py) in front of the Discord stand-in, and
the crash copies of a state folder (harness/chat/restarts.py): each fault does what it says,
and is counted where it lands."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from mosaic_conformance.connectors.state import CursorFile
from mosaic_conformance.harness.chat import faults
from mosaic_conformance.harness.chat.discord_standin import API_PREFIX, DiscordStandIn
from mosaic_conformance.harness.chat.faults import FaultyProxy
from mosaic_conformance.harness.chat.restarts import WRITE_WATCH
from mosaic_conformance.harness.chat.target import HOLD_GRACE_S, ReadHold


@pytest.fixture(scope="module")
def standin() -> Iterator[DiscordStandIn]:
    with DiscordStandIn() as server:
        yield server


@pytest.fixture
def proxy(standin: DiscordStandIn) -> Iterator[FaultyProxy]:
    with FaultyProxy(lambda: standin.origin, faults.DISCORD) as made:
        yield made


@pytest.fixture
def api(standin: DiscordStandIn, proxy: FaultyProxy) -> Iterator[tuple[httpx.Client, str, str]]:
    """A client through the proxy, a channel, and a person to post in it."""
    bot = standin.add_user("bot", bot=True)
    person = standin.add_user("person").id
    channel = standin.add_channel("c")
    headers = {"Authorization": f"Bot {bot.token}"}
    with httpx.Client(base_url=proxy.url + API_PREFIX, headers=headers, timeout=1.0) as client:
        yield client, channel, person


def test_a_half_open_link_swallows_what_passes_and_closes_nothing(
    proxy: FaultyProxy, api: tuple[httpx.Client, str, str]
) -> None:
    client, _channel, _person = api
    assert client.get("/users/@me").status_code == 200  # a kept-alive connection now
    with proxy.half_open(), pytest.raises(httpx.ReadTimeout):
        client.get("/users/@me")  # only the client's own read timeout ends it
    assert proxy.counts()[faults.SWALLOWED] == 1
    assert client.get("/users/@me").status_code == 200, "a new connection works"


def test_an_outage_refuses_every_connection_while_it_lasts(
    proxy: FaultyProxy, api: tuple[httpx.Client, str, str]
) -> None:
    client, _channel, _person = api
    with proxy.outage(), pytest.raises(httpx.TransportError):
        client.get("/users/@me")
    assert proxy.counts()[faults.REFUSED] >= 1
    assert client.get("/users/@me").status_code == 200


def test_a_cut_lands_on_the_next_answer_that_brings_messages(
    standin: DiscordStandIn, proxy: FaultyProxy, api: tuple[httpx.Client, str, str]
) -> None:
    client, channel, person = api
    proxy.cut_next_message_answer()
    assert client.get(f"/channels/{channel}/messages").json() == []  # nothing to cut yet
    standin.post_as(person, channel, "hello")
    with pytest.raises(httpx.TransportError):
        client.get(f"/channels/{channel}/messages")
    assert [m["content"] for m in client.get(f"/channels/{channel}/messages").json()] == ["hello"]
    assert proxy.counts()[faults.MESSAGES_CUT] == 1


def test_a_429_is_in_the_server_s_own_words(standin: DiscordStandIn) -> None:
    for dialect, field, value in (
        (faults.DISCORD, "retry_after", 0.5),
        (faults.MATRIX, "retry_after_ms", 500),
    ):
        with FaultyProxy(lambda: standin.origin, dialect) as proxy:
            proxy.fail_next(429, 1, retry_after=0.5)
            answer = httpx.get(proxy.url + API_PREFIX + "/users/@me")
            assert answer.status_code == 429
            assert answer.json()[field] == value
            assert proxy.counts()[faults.ANSWER_REPLACED] == 1


# Crash copies


def _write_in_place(path: Path, text: str) -> None:
    path.write_text(text)


def _write_atomically(path: Path, text: str) -> None:
    CursorFile(path.parent, "test", "c").save({"text": text})


@pytest.mark.parametrize("atomic", [True, False], ids=["atomic", "in-place"])
def test_a_crash_copy_is_the_folder_as_a_crash_at_the_last_write_leaves_it(
    tmp_path: Path, atomic: bool
) -> None:
    folder = tmp_path / "state"
    folder.mkdir()
    cursor = CursorFile(folder, "test", "c")
    target = cursor.path if atomic else folder / "cursor.json"
    assert target is not None
    write = _write_atomically if atomic else _write_in_place
    write(target, "old")
    watched = WRITE_WATCH.watch(folder, tmp_path / "copies")
    try:
        worker = threading.Thread(target=write, args=(target, "new"))  # as a poller would
        worker.start()
        worker.join()
    finally:
        WRITE_WATCH.forget(folder)
    assert watched.writes == 1
    assert watched.crash_copy is not None
    copied = (watched.crash_copy / target.name).read_text()
    if atomic:
        assert json.loads(copied)["cursor"] == {"text": "old"}, "the old cursor, whole"
    else:
        assert copied == "", "truncated, nothing written yet"


# --- the read hold of CONN.7's "right after subscribe" (harness/chat/target.py) -------------


def _reader(hold: ReadHold) -> threading.Thread:
    reader = threading.Thread(target=hold.pass_through, daemon=True)
    reader.start()
    return reader


def test_a_read_a_poller_begins_while_subscribe_runs_is_held() -> None:
    """The race a hold shut only once subscribe returned lost now and then under load: the
    poller's first read begins inside subscribe and must be held all the same."""
    hold = ReadHold()
    with hold.shut_around():
        reader = _reader(hold)  # subscribe starts its poller and returns, waiting on nothing
    assert hold.wait_held(5.0), "the poller's read was let through"
    assert reader.is_alive()
    assert hold.let_through == 0
    hold.release()
    reader.join(5.0)
    assert not reader.is_alive()


def test_a_read_subscribe_waits_on_goes_on_after_the_grace() -> None:
    hold = ReadHold()
    with hold.shut_around():
        reader = _reader(hold)
        reader.join(HOLD_GRACE_S * 5)  # subscribe waits for its first read's answer
        assert not reader.is_alive(), "the read subscribe waits on was never let through"
    assert (hold.held, hold.let_through) == (0, 1)
    reader = _reader(hold)  # after subscribe returned: held
    assert hold.wait_held(5.0)
    hold.release()
    reader.join(5.0)
    assert not reader.is_alive()
