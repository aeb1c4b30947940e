"""The connector suite's Discord target: the local Discord stand-in, and its operator.

One stand-in serves the whole pytest session, behind the suite's fault injector (a
:class:`~.faults.FaultyProxy` speaking Discord's dialect, as it speaks Matrix's in front of
a homeserver). Each scenario gets its own bot, operator and stranger users and two channels
(the orchestrator's and another), so scenarios never see each other's messages. The operator
posts and reads through the stand-in's test side, as the Discord client of a person would
show it: the channel and its threads.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any

from ...connectors.discord import POLL_ENV, TOKEN_ENV
from ...connectors.types import ConnectorConfig, DiscordConfig, OrchestratorConnector
from ...secrets import mask_also
from . import faults
from .discord_standin import API_PREFIX, DiscordStandIn, User
from .faults import FaultyProxy
from .restarts import MadeConnectors, Stopped
from .target import (
    Capability,
    ConnectorTarget,
    ReadHold,
    SeenMessage,
    SilentServer,
    TargetOptions,
    Variant,
    closed_port,
)

# How often the shipped connector polls in the suite (its default, 1 s, is for Discord).
SUITE_POLL_SECONDS = "0.2"
BAD_TOKEN = "not.a-token-the-stand-in-knows"
SEND_PATH = r"/channels/\d+/messages$"  # POST: a send
READ_PATH = SEND_PATH  # GET: a read of new messages
PROXY_STRIKES = {
    Capability.DROP_CONNECTIONS: faults.MESSAGES_CUT,
    Capability.LOST_RESPONSE: faults.ANSWER_LOST,
    Capability.SERVER_ERRORS: faults.ANSWER_REPLACED,
    Capability.HALF_OPEN: faults.SWALLOWED,
    Capability.OUTAGE: faults.REFUSED,
}


class DiscordOperator:
    """The person in the scenario's channel, and the stranger beside them."""

    def __init__(self, standin: DiscordStandIn, channel_id: str, other_channel_id: str) -> None:
        self._standin = standin
        self._channel_id = channel_id
        self._other_channel_id = other_channel_id
        self._user: User = standin.add_user("operator")
        self._stranger: User = standin.add_user("stranger")

    @property
    def sender_id(self) -> str:
        return self._user.id

    def post(self, text: str, thread_id: str | None = None) -> str:
        channel = thread_id or self._channel_id
        return str(self._standin.post_as(self._user.id, channel, text)["id"])

    def open_thread(self, text: str) -> str:
        message_id = self.post(text)
        thread = self._standin.start_thread(self._channel_id, message_id, text[:100], self._user.id)
        return str(thread["id"])

    def post_as_stranger(self, text: str, thread_id: str | None = None) -> str:
        channel = thread_id or self._channel_id
        return str(self._standin.post_as(self._stranger.id, channel, text)["id"])

    def post_in_other_room(self, text: str, thread_id: str | None = None) -> str:
        channel = thread_id or self._other_channel_id
        return str(self._standin.post_as(self._user.id, channel, text)["id"])

    def open_thread_in_other_room(self, text: str) -> str:
        message_id = self.post_in_other_room(text)
        thread = self._standin.start_thread(
            self._other_channel_id, message_id, text[:100], self._user.id
        )
        return str(thread["id"])

    def seen(self) -> Sequence[SeenMessage]:
        found: list[tuple[int, SeenMessage]] = []
        for message in self._standin.messages(self._channel_id):
            found.append((int(message["id"]), _seen(message, None)))
        for thread_id in self._standin.threads_of(self._channel_id):
            for message in self._standin.messages(thread_id):
                found.append((int(message["id"]), _seen(message, thread_id)))
        return [seen for _, seen in sorted(found, key=lambda pair: pair[0])]


def _seen(message: Mapping[str, Any], thread_id: str | None) -> SeenMessage:
    return SeenMessage(
        text=str(message["content"]),
        sender=str(message["author"]["id"]),
        id=str(message["id"]),
        thread_id=thread_id,
    )


class DiscordScenario:
    """A fresh bot, operator, stranger and two channels on the shared stand-in."""

    def __init__(self, target: DiscordTarget) -> None:
        standin = target.standin
        self.standin = standin
        self.proxy = target.proxy
        self.bot = standin.add_user("mosaic-orchestrator", bot=True)
        mask_also(self.bot.token or "")
        self.channel_id = standin.add_channel("orchestrator")
        self._operator = DiscordOperator(standin, self.channel_id, standin.add_channel("other"))
        workdir = target.options.workdir / "scenarios" / secrets.token_hex(4)
        self._connectors = MadeConnectors(target.options.make_connector, workdir)
        self._silent: SilentServer | None = None
        self._proxy_before = self.proxy.counts()
        self._restarts_before = standin.restarts
        self._crashes = 0

    @property
    def operator(self) -> DiscordOperator:
        return self._operator

    def connect(self, variant: Variant = Variant.HEALTHY) -> OrchestratorConnector:
        api_base, token = self.proxy.url + API_PREFIX, self.bot.token or ""
        if variant is Variant.BAD_TOKEN:
            token = BAD_TOKEN
            mask_also(token)  # a bad token is masked all the same, as any token
        elif variant is Variant.SERVER_DOWN:
            api_base = f"http://127.0.0.1:{closed_port()}{API_PREFIX}"
        elif variant is Variant.SILENT_SERVER:
            if self._silent is None:
                self._silent = SilentServer()
            api_base = f"{self._silent.url}{API_PREFIX}"
        discord = DiscordConfig(
            channel_id=self.channel_id, operators=(self.operator.sender_id,), api_base=api_base
        )
        env = {**os.environ, TOKEN_ENV: token, POLL_ENV: SUITE_POLL_SECONDS}
        return self._connectors.make(ConnectorConfig(kind="discord", discord=discord), env)

    def wait_idle(self, connector: OrchestratorConnector) -> None:
        self._connectors.wait_idle(connector)

    def stop_connector(self, connector: OrchestratorConnector, *, crash: bool = False) -> Stopped:
        return self._connectors.stop(connector, crash=crash)

    def lose_next_send_response(self) -> None:
        self.lose_send_responses(1)

    def lose_send_responses(self, count: int) -> None:
        self.proxy.lose_next_response("POST", SEND_PATH, count)

    def send_responses_lost(self) -> int:
        return self.strikes()[Capability.LOST_RESPONSE]

    def hold_reads(self) -> ReadHold:
        hold = ReadHold()
        self.proxy.hold(hold, "GET", READ_PATH)
        return hold

    def drop_connections(self) -> None:
        self.proxy.drop_connections()
        self.proxy.cut_next_message_answer()  # where a cut costs something

    def restart_server(self) -> None:
        self.standin.restart()

    def crash_server(self) -> None:
        """The stand-in lives in the suite's process: a crash cuts every connection without
        an answer, then it starts again on the same port with its state."""
        self.proxy.drop_connections()
        self.standin.restart()
        self._crashes += 1

    def fail_requests(self, status: int, count: int, *, sends_only: bool = False) -> None:
        if sends_only:
            self.proxy.fail_next(status, count, "POST", SEND_PATH)
        else:
            self.proxy.fail_next(status, count)

    def half_open(self) -> AbstractContextManager[None]:
        return self.proxy.half_open()

    def outage(self) -> AbstractContextManager[None]:
        return self.proxy.outage()

    def strikes(self) -> Mapping[Capability, int]:
        counts = self.proxy.counts()
        landed = {
            capability: counts.get(name, 0) - self._proxy_before.get(name, 0)
            for capability, name in PROXY_STRIKES.items()
        }
        restarts = self.standin.restarts - self._restarts_before
        landed[Capability.CRASH_SERVER] = self._crashes
        landed[Capability.RESTART_SERVER] = restarts - self._crashes
        return landed

    def close(self) -> None:
        """Close the connectors, then clear the faults this scenario may have left armed."""
        try:
            self._connectors.close()
        finally:
            if self._silent is not None:
                self._silent.close()
            self.proxy.clear_faults()


class DiscordTarget:
    def __init__(self, standin: DiscordStandIn, options: TargetOptions) -> None:
        self.standin = standin
        self.options = options
        self.proxy = FaultyProxy(lambda: standin.origin, faults.DISCORD)

    @property
    def name(self) -> str:
        return "discord:stand-in"

    @property
    def unsupported(self) -> Mapping[Capability, str]:
        return {}

    @contextlib.contextmanager
    def scenario(self) -> Iterator[DiscordScenario]:
        scenario = DiscordScenario(self)
        try:
            yield scenario
        finally:
            scenario.close()

    def close(self) -> None:
        self.proxy.close()


@contextlib.contextmanager
def open_target(options: TargetOptions) -> Iterator[ConnectorTarget]:
    """The Discord target: a stand-in of Discord's API on loopback, for the session."""
    with DiscordStandIn() as standin:
        target = DiscordTarget(standin, options)
        try:
            yield target
        finally:
            target.close()
