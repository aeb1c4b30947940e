"""The connector suite's Discord target: the local Discord stand-in, and its operator.

One stand-in serves the whole pytest session. Each scenario gets its own bot, operator and
stranger users and two channels (the orchestrator's and another), so scenarios never see
each other's messages. The operator posts and reads through the stand-in's test side, as
the Discord client of a person would show it: the channel and its threads.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from ...connectors.discord import POLL_ENV, TOKEN_ENV
from ...connectors.types import ConnectorConfig, DiscordConfig, OrchestratorConnector
from ...secrets import mask_also
from .discord_standin import DiscordStandIn, User
from .target import (
    Capability,
    ConnectorTarget,
    ReadHold,
    Scenario,
    SeenMessage,
    SilentServer,
    TargetOptions,
    Variant,
    closed_port,
    closing_all,
)

# How often the shipped connector polls in the suite (its default, 1 s, is for Discord).
SUITE_POLL_SECONDS = "0.2"
BAD_TOKEN = "not.a-token-the-stand-in-knows"


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

    def __init__(self, standin: DiscordStandIn, options: TargetOptions) -> None:
        self.standin = standin
        self._options = options
        self.bot = standin.add_user("mosaic-orchestrator", bot=True)
        mask_also(self.bot.token or "")
        self.channel_id = standin.add_channel("orchestrator")
        self._operator = DiscordOperator(standin, self.channel_id, standin.add_channel("other"))
        self._made: list[OrchestratorConnector] = []
        self._silent: SilentServer | None = None
        self._lost_before = standin.responses_lost

    @property
    def operator(self) -> DiscordOperator:
        return self._operator

    def connect(self, variant: Variant = Variant.HEALTHY) -> OrchestratorConnector:
        api_base, token = self.standin.api_base, self.bot.token or ""
        if variant is Variant.BAD_TOKEN:
            token = BAD_TOKEN
            mask_also(token)  # a bad token is masked all the same, as any token
        elif variant is Variant.SERVER_DOWN:
            api_base = f"http://127.0.0.1:{closed_port()}/api/v10"
        elif variant is Variant.SILENT_SERVER:
            if self._silent is None:
                self._silent = SilentServer()
            api_base = f"{self._silent.url}/api/v10"
        discord = DiscordConfig(
            channel_id=self.channel_id, operators=(self.operator.sender_id,), api_base=api_base
        )
        env = {**os.environ, TOKEN_ENV: token, POLL_ENV: SUITE_POLL_SECONDS}
        connector = self._options.make_connector(
            ConnectorConfig(kind="discord", discord=discord), env
        )
        self._made.append(connector)
        return connector

    def lose_next_send_response(self) -> None:
        self.standin.lose_next_send_response()

    def lose_send_responses(self, count: int) -> None:
        self.standin.lose_next_send_response(count)

    def send_responses_lost(self) -> int:
        return self.standin.responses_lost - self._lost_before

    def hold_reads(self) -> ReadHold:
        hold = ReadHold()
        self.standin.read_holds.append(hold)
        return hold

    def drop_connections(self) -> None:
        self.standin.drop_connections()

    def restart_server(self) -> None:
        self.standin.restart()

    def crash_server(self) -> None:
        """The stand-in lives in the suite's process: a crash cuts every connection without
        an answer, then it starts again on the same port with its state."""
        self.standin.drop_connections()
        self.standin.restart()

    def fail_requests(self, status: int, count: int, *, sends_only: bool = False) -> None:
        self.standin.fail_next(status, count, sends_only=sends_only)

    def close(self) -> None:
        """Close the connectors, then clear the faults this scenario may have left armed."""
        try:
            with closing_all() as closing:
                closing.extend(self._made)
        finally:
            if self._silent is not None:
                self._silent.close()
            self.standin.reset_faults()


class DiscordTarget:
    def __init__(self, standin: DiscordStandIn, options: TargetOptions) -> None:
        self.standin = standin
        self._options = options

    @property
    def name(self) -> str:
        return "discord:stand-in"

    @property
    def unsupported(self) -> Mapping[Capability, str]:
        return {}

    @contextlib.contextmanager
    def scenario(self) -> Iterator[Scenario]:
        scenario = DiscordScenario(self.standin, self._options)
        try:
            yield scenario
        finally:
            scenario.close()


@contextlib.contextmanager
def open_target(options: TargetOptions) -> Iterator[ConnectorTarget]:
    """The Discord target: a stand-in of Discord's API on loopback, for the session."""
    with DiscordStandIn() as standin:
        yield DiscordTarget(standin, options)
