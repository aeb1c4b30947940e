"""The connector suite's Matrix target: a homeserver, its users, a fresh room per test.

Settings (``TargetOptions.settings``): ``homeserver`` (``synapse``, ``conduit`` or
``external``), and for ``external``: ``url`` plus ``shared_secret`` or
``registration_token`` to make accounts with.

Connectors reach the homeserver through a :class:`~.faults.FaultyProxy`, so the suite
can lose a send's answer, drop connections, answer 5xx or 429, make the link half-open or cut
it off whatever the server is. The shipped connector long-polls for ``SUITE_SYNC_SECONDS`` here
(its default, 30 s, is for real servers), so that it notices a half-open link within seconds.
"""

from __future__ import annotations

import collections
import contextlib
import secrets
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future
from contextlib import AbstractContextManager
from typing import Any, Generic, TypeVar

from ...connectors.matrix import SYNC_ENV, TOKEN_ENV
from ...connectors.types import ConnectorConfig, MatrixConfig, OrchestratorConnector
from ...secrets import mask_also
from . import faults
from .faults import FaultyProxy
from .homeserver import Homeserver, MatrixUser, open_homeserver
from .restarts import MadeConnectors, Stopped
from .target import (
    Capability,
    ReadHold,
    SeenMessage,
    SilentServer,
    TargetOptions,
    Unsupported,
    Variant,
    closed_port,
)

SEND_PATH = r"/rooms/[^/]+/send/"
SYNC_PATH = r"/sync$"
SUITE_SYNC_SECONDS = "5"
# Which of the proxy's counts proves which fault landed.
PROXY_STRIKES = {
    Capability.DROP_CONNECTIONS: faults.MESSAGES_CUT,
    Capability.LOST_RESPONSE: faults.ANSWER_LOST,
    Capability.SERVER_ERRORS: faults.ANSWER_REPLACED,
    Capability.HALF_OPEN: faults.SWALLOWED,
    Capability.OUTAGE: faults.REFUSED,
}
PREPARE_TIMEOUT_S = 60.0
T = TypeVar("T")


def _seen(event: Mapping[str, Any]) -> SeenMessage:
    content = event.get("content") or {}
    relation = content.get("m.relates_to") or {}
    thread = relation.get("event_id") if relation.get("rel_type") == "m.thread" else None
    return SeenMessage(
        text=str(content.get("body", "")),
        sender=str(event.get("sender", "")),
        id=event.get("event_id"),
        thread_id=thread,
    )


class Prepared(Generic[T]):
    """Makes the next one while the current test runs: a homeserver takes about a second to
    create a room, and a test mostly waits."""

    def __init__(self, make: Callable[[], T]) -> None:
        self._make = make
        self._next: Future[T] = Future()
        self._closed = False
        self._start()

    def _start(self) -> None:
        future: Future[T] = Future()
        self._next = future

        def run() -> None:
            try:
                future.set_result(self._make())
            except BaseException as exc:  # handed to the taker, who raises it
                future.set_exception(exc)

        threading.Thread(target=run, name="prepare-rooms", daemon=True).start()

    def take(self) -> T:
        ready = self._next.result(timeout=PREPARE_TIMEOUT_S)
        if not self._closed:
            self._start()
        return ready

    def settle(self) -> None:
        """Wait until nothing is being made (before the server goes away under it)."""
        with contextlib.suppress(Exception):
            self._next.result(timeout=PREPARE_TIMEOUT_S)

    def close(self) -> None:
        self._closed = True
        self.settle()  # do not close the users under it


class MatrixOperator:
    """The operator (and the stranger next to them) in one scenario's rooms."""

    def __init__(self, operator: MatrixUser, stranger: MatrixUser, room: str, other: str) -> None:
        self._operator, self._stranger = operator, stranger
        self._room, self._other_room = room, other

    @property
    def sender_id(self) -> str:
        return self._operator.user_id

    def post(self, text: str, thread_id: str | None = None) -> str:
        return self._operator.send_text(self._room, text, thread_id)

    def open_thread(self, text: str) -> str:
        return self._operator.send_text(self._room, text)  # a thread's id is its root's

    def post_as_stranger(self, text: str, thread_id: str | None = None) -> str:
        return self._stranger.send_text(self._room, text, thread_id)

    def post_in_other_room(self, text: str, thread_id: str | None = None) -> str:
        return self._operator.send_text(self._other_room, text, thread_id)

    def open_thread_in_other_room(self, text: str) -> str:
        return self._operator.send_text(self._other_room, text)  # a thread's id is its root's

    def seen(self) -> Sequence[SeenMessage]:
        return [_seen(event) for event in self._operator.messages(self._room)]


class MatrixScenario:
    def __init__(self, target: MatrixTarget, room: str, other_room: str) -> None:
        self._target = target
        self._room = room
        self._operator = MatrixOperator(target.operator, target.stranger, room, other_room)
        self._stack = contextlib.ExitStack()
        workdir = target.options.workdir / "scenarios" / secrets.token_hex(4)
        self._connectors = MadeConnectors(target.options.make_connector, workdir)
        self._stack.callback(self._connectors.close)
        self._proxy_before = target.proxy.counts()
        self._restarts_before = collections.Counter(target.restarts)

    @property
    def operator(self) -> MatrixOperator:
        return self._operator

    def connect(self, variant: Variant = Variant.HEALTHY) -> OrchestratorConnector:
        token = self._target.connector_token
        if variant is Variant.HEALTHY:
            url = self._target.proxy.url
        elif variant is Variant.BAD_TOKEN:
            url, token = self._target.proxy.url, f"syt_not_a_token_{secrets.token_hex(8)}"
            mask_also(token)  # a bad token is masked all the same, as any token
        elif variant is Variant.SERVER_DOWN:
            url = f"http://127.0.0.1:{closed_port()}"
        else:
            url = self._stack.enter_context(SilentServer()).url
        settings = MatrixConfig(
            homeserver_url=url,
            user_id=self._target.connector_user_id,
            room_id=self._room,
            operators=(self._target.operator.user_id,),
        )
        config = ConnectorConfig(kind="matrix", matrix=settings)
        env = {TOKEN_ENV: token, SYNC_ENV: SUITE_SYNC_SECONDS}
        return self._connectors.make(config, env)

    def wait_idle(self, connector: OrchestratorConnector) -> None:
        self._connectors.wait_idle(connector)

    def stop_connector(self, connector: OrchestratorConnector, *, crash: bool = False) -> Stopped:
        return self._connectors.stop(connector, crash=crash)

    def lose_next_send_response(self) -> None:
        self.lose_send_responses(1)

    def lose_send_responses(self, count: int) -> None:
        self._target.proxy.lose_next_response("PUT", SEND_PATH, count)

    def send_responses_lost(self) -> int:
        return self.strikes()[Capability.LOST_RESPONSE]

    def hold_reads(self) -> ReadHold:
        hold = ReadHold()
        self._target.proxy.hold(hold, "GET", SYNC_PATH)
        return hold

    def drop_connections(self) -> None:
        self._target.proxy.drop_connections()
        self._target.proxy.cut_next_message_answer()  # where a cut costs something

    def half_open(self) -> AbstractContextManager[None]:
        return self._target.proxy.half_open()

    def outage(self) -> AbstractContextManager[None]:
        return self._target.proxy.outage()

    def strikes(self) -> Mapping[Capability, int]:
        counts = self._target.proxy.counts()
        landed = {
            capability: counts.get(name, 0) - self._proxy_before.get(name, 0)
            for capability, name in PROXY_STRIKES.items()
        }
        for capability in (Capability.RESTART_SERVER, Capability.CRASH_SERVER):
            landed[capability] = (
                self._target.restarts[capability] - self._restarts_before[capability]
            )
        return landed

    def restart_server(self) -> None:
        if not self._target.homeserver.can_restart:
            raise Unsupported(self._target.unsupported[Capability.RESTART_SERVER])
        self._target.restart_homeserver()

    def crash_server(self) -> None:
        if not self._target.homeserver.can_restart:
            raise Unsupported(self._target.unsupported[Capability.CRASH_SERVER])
        self._target.restart_homeserver(hard=True)

    def fail_requests(self, status: int, count: int, *, sends_only: bool = False) -> None:
        if sends_only:
            self._target.proxy.fail_next(status, count, "PUT", SEND_PATH)
        else:
            self._target.proxy.fail_next(status, count)

    def close(self) -> None:
        try:
            self._stack.close()
        finally:
            self._target.proxy.clear_faults()  # none left armed for the next scenario


class MatrixTarget:
    def __init__(self, options: TargetOptions, homeserver: Homeserver) -> None:
        self.options = options
        self.homeserver = homeserver
        self.operator = MatrixUser(homeserver.url, homeserver.register_unique("operator"))
        self.stranger = MatrixUser(homeserver.url, homeserver.register_unique("stranger"))
        self._connector = homeserver.register_unique("connector")
        mask_also(*(a.access_token for a in (self.operator.account, self.stranger.account)))
        mask_also(self._connector.access_token)
        # The suite's own handle on the connector's account: to join rooms, never to post.
        self._connector_user = MatrixUser(homeserver.url, self._connector)
        self.proxy = FaultyProxy(lambda: self.homeserver.url, faults.MATRIX)
        self.restarts: collections.Counter[Capability] = collections.Counter()
        self._rooms = Prepared(self._new_rooms)

    @property
    def name(self) -> str:
        version = self.homeserver.version
        return f"matrix:{self.homeserver.name}" + (f" ({version})" if version else "")

    @property
    def connector_user_id(self) -> str:
        return self._connector.user_id

    @property
    def connector_token(self) -> str:
        return self._connector.access_token

    @property
    def unsupported(self) -> Mapping[Capability, str]:
        if self.homeserver.can_restart:
            return {}
        reason = f"the suite cannot restart the {self.homeserver.name} homeserver"
        return {Capability.RESTART_SERVER: reason, Capability.CRASH_SERVER: reason}

    @contextlib.contextmanager
    def scenario(self) -> Iterator[MatrixScenario]:
        room, other_room = self._rooms.take()
        scenario = MatrixScenario(self, room, other_room)
        try:
            yield scenario
        finally:
            scenario.close()

    def _new_rooms(self) -> tuple[str, str]:
        """A room with the operator, the connector's user and the stranger in it, and another
        room with the operator and the connector's user."""
        room = self.operator.create_room(f"mosaic-{secrets.token_hex(3)}")
        other_room = self.operator.create_room(f"mosaic-other-{secrets.token_hex(3)}")
        for user, rooms in ((self._connector_user, (room, other_room)), (self.stranger, (room,))):
            for room_id in rooms:
                user.join(room_id)
        return room, other_room

    def restart_homeserver(self, *, hard: bool = False) -> None:
        self._rooms.settle()
        self.homeserver.restart(hard=hard)
        self.restarts[Capability.CRASH_SERVER if hard else Capability.RESTART_SERVER] += 1
        self._rooms = Prepared(self._new_rooms)  # in case the last ones failed meanwhile

    def close(self) -> None:
        self._rooms.close()
        self.proxy.close()
        for user in (self.operator, self.stranger, self._connector_user):
            user.close()


@contextlib.contextmanager
def open_target(options: TargetOptions) -> Iterator[MatrixTarget]:
    name = options.settings.get("homeserver") or "synapse"
    settings = {k: v for k, v in options.settings.items() if k != "homeserver"}
    with open_homeserver(name, options.workdir / "homeserver", settings) as homeserver:
        target = MatrixTarget(options, homeserver)
        try:
            yield target
        finally:
            target.close()
