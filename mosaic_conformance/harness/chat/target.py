"""The harness the connector suite drives: one *target* per connector kind.

The suite never knows which chat it runs on. For each kind (``tmux``, ``discord``,
``matrix``) a module offers ``open_target(options) -> ContextManager[ConnectorTarget]``,
named in :data:`TARGETS` and imported only when that kind is chosen:

- a :class:`ConnectorTarget` lives for the whole pytest session (it starts the servers:
  a homeserver, a Discord stand-in, nothing for tmux) and opens one :class:`Scenario` per test;
- a :class:`Scenario` is a fresh conversation (a new room, channel or tmux server). It makes
  connectors of each :class:`Variant` through ``options.make_connector`` (so the suite can
  check any implementation, not just the shipped one), offers the faults it can inject, and
  its :class:`OperatorSide` plays the human: post as the operator (optionally in a thread),
  read what the operator sees, post as a stranger or in another room, open a thread.

A capability a kind lacks is named in ``ConnectorTarget.unsupported`` with the reason, and the
suite reports the tests that need it as unsupported (skipped); the methods for it raise
:class:`Unsupported`. A target that cannot run here raises :class:`TargetUnavailable` (saying
what to install); a step of its own that fails raises a
:class:`~mosaic_conformance.harness.outcomes.HarnessError`: neither is the connector's failure.

Each connector a scenario makes gets a state folder of its own (``MOSAIC_CONNECTOR_STATE_DIR``);
``stop_connector`` stops one (cleanly, or as a crash would) and starts it again with that
state (:mod:`.restarts`). Every fault a scenario injects is counted where it lands (the proxy,
the stand-in, the homeserver's restarts), and ``strikes`` says how often each one did, so that
a test proves its faults fired.

The contract the suite relies on beyond :class:`~.types.OrchestratorConnector`: messages the
operator posts after ``subscribe`` has returned are delivered; everything a scenario made is
closed when it ends, also when a test fails.
"""

from __future__ import annotations

import contextlib
import enum
import socket
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

from ...connectors.types import ConnectorConfig, ConnectorKind, OrchestratorConnector
from ...load import load
from ..components import TARGETS
from ..outcomes import Unsupported as UnsupportedOutcome
from ..systems.base import BackendUnavailable

HOLD_RELEASE_S = 120.0  # a held read goes on after this even if the suite never lets it go
# A read begun while the call under a hold runs waits this long for the call to return; if it
# has not, the call may be waiting on that read, and it goes on. A call that returns without
# waiting (a poller it started reads) returns in microseconds, on a loaded machine too.
HOLD_GRACE_S = 1.0


class Capability(str, enum.Enum):
    """What a kind may lack; each is named with a reason in ``ConnectorTarget.unsupported``."""

    THREADS = "threads"  # open_thread, post(thread_id=...), thread ids on seen messages
    STRANGERS = "strangers"  # post_as_stranger: a sender outside the configured operators
    OTHER_ROOM = "other_room"  # post_in_other_room: the operator in another room or channel
    BAD_TOKEN = "bad_token"  # Variant.BAD_TOKEN
    SILENT_SERVER = "silent_server"  # Variant.SILENT_SERVER
    LOST_RESPONSE = "lost_response"  # Scenario.lose_send_responses, send_responses_lost
    HOLD_READS = "hold_reads"  # Scenario.hold_reads
    TOKENS = "tokens"  # the connector is given a token (CONN.14)
    DROP_CONNECTIONS = "drop_connections"  # Scenario.drop_connections
    RESTART_SERVER = "restart_server"  # Scenario.restart_server
    CRASH_SERVER = "crash_server"  # Scenario.crash_server
    SERVER_ERRORS = "server_errors"  # Scenario.fail_requests: 5xx and 429 answers
    HALF_OPEN = "half_open"  # Scenario.half_open
    OUTAGE = "outage"  # Scenario.outage
    MULTILINE = "multiline"  # OperatorSide.post of a text with line breaks, as one message


class Variant(str, enum.Enum):
    """Which connector a scenario makes."""

    HEALTHY = "healthy"  # a live server and a valid token
    BAD_TOKEN = "bad_token"  # a live server and a token it does not know
    SERVER_DOWN = "server_down"  # nothing listens where the server should be
    SILENT_SERVER = "silent_server"  # something accepts connections and never answers


class Unsupported(UnsupportedOutcome):
    """This kind cannot do what was asked; the message says why (the test is reported as
    unsupported, never as the connector's failure)."""


class TargetUnavailable(BackendUnavailable):
    """The target cannot run on this machine; the message says why and what to install."""


@dataclass(frozen=True, slots=True)
class SeenMessage:
    """A message as the operator sees it in the conversation."""

    text: str
    sender: str  # the chat's sender id; the connector's own id for what it sent
    id: str | None = None  # the chat's message id where it has one (compared with SendResult)
    thread_id: str | None = None


# Makes a connector from its roster config and the environment it reads tokens from
# (``MATRIX_ACCESS_TOKEN``, ``DISCORD_BOT_TOKEN``): the shipped factory, an implementer's
# ``--conformance-connector-factory`` or a ``--conformance-connector-cmd`` program.
ConnectorMaker = Callable[[ConnectorConfig, Mapping[str, str]], OrchestratorConnector]


@dataclass(frozen=True, slots=True)
class TargetOptions:
    """What the plugin hands a kind's ``open_target``."""

    kind: ConnectorKind
    make_connector: ConnectorMaker
    workdir: Path  # session-wide scratch space, removed by pytest
    # The kind's own options; may hold a server's secret, so never shown.
    settings: Mapping[str, str] = field(default_factory=dict, repr=False)


@runtime_checkable
class OperatorSide(Protocol):
    """The human at the other end of the chat, as the suite drives them."""

    @property
    def sender_id(self) -> str:
        """The sender id a connector reports for the operator's messages."""
        ...

    def post(self, text: str, thread_id: str | None = None) -> str:
        """Post as the operator (in ``thread_id`` if given); return the message id."""
        ...

    def open_thread(self, text: str) -> str:
        """Post a message as the operator that starts a thread; return the thread id."""
        ...

    def post_as_stranger(self, text: str, thread_id: str | None = None) -> str:
        """Post in the same conversation (in ``thread_id`` if given) as someone who is not an
        operator."""
        ...

    def post_in_other_room(self, text: str, thread_id: str | None = None) -> str:
        """Post as the operator in a conversation the connector is not configured for (in
        ``thread_id``, a thread of that conversation, if given)."""
        ...

    def open_thread_in_other_room(self, text: str) -> str:
        """Post a message as the operator in the other conversation that starts a thread
        there; return the thread id."""
        ...

    def seen(self) -> Sequence[SeenMessage]:
        """Everything in the conversation as the operator sees it now, oldest first."""
        ...


@runtime_checkable
class StoppedConnector(Protocol):
    """A connector the scenario stopped, with the state folder it left behind."""

    @property
    def crashed(self) -> bool:
        """Stopped as a crash would stop it, not closed."""
        ...

    @property
    def how(self) -> str:
        """What was done to stop it, for the report ("killed with SIGKILL", ...)."""
        ...

    def start(self) -> OrchestratorConnector:
        """A new connector of the same variant, config and environment, on the state the stopped
        one left (for a program: a new process); closed when the scenario ends."""
        ...


@runtime_checkable
class Scenario(Protocol):
    """One fresh conversation for one test."""

    @property
    def operator(self) -> OperatorSide: ...

    def connect(self, variant: Variant = Variant.HEALTHY) -> OrchestratorConnector:
        """A new connector of ``variant`` for this conversation, closed when the scenario ends."""
        ...

    def lose_next_send_response(self) -> None:
        """The next send reaches the server, but its answer never reaches the connector."""
        ...

    def lose_send_responses(self, count: int) -> None:
        """The next ``count`` sends (first tries and retries alike) reach the server, but
        their answers never reach the connector."""
        ...

    def send_responses_lost(self) -> int:
        """How many send answers this scenario has lost so far, counted where they were
        lost (the proxy, the stand-in, the chat pane)."""
        ...

    def hold_reads(self) -> ReadHold:
        """A hold on this scenario's connectors' reads of new messages (Matrix ``/sync``,
        Discord's message lists): open until :meth:`ReadHold.shut_around`, then each read waits
        before it reaches the server until :meth:`ReadHold.release`. Released when the
        scenario ends."""
        ...

    def drop_connections(self) -> None:
        """Cut every open connection between the connectors and the server, once."""
        ...

    def restart_server(self) -> None:
        """Stop and start the server; what it stored survives."""
        ...

    def crash_server(self) -> None:
        """Kill the server without warning (SIGKILL, where it is a process of its own) and
        start it again; what it acknowledged before survives."""
        ...

    def fail_requests(self, status: int, count: int, *, sends_only: bool = False) -> None:
        """Answer the next ``count`` requests of this scenario's connectors (with
        ``sends_only``: the next ``count`` sends) with ``status`` instead of the server's answer.

        A 5xx comes after the request took effect, as from a gateway that lost the server's
        answer: a send has been stored, and a retry must not store it again. A 429 comes
        before: the request is refused, with a short retry-after.
        """
        ...

    def half_open(self) -> AbstractContextManager[None]:
        """While the context lasts, the link between the connectors and the server is
        half-open: every connection open now or made meanwhile stays open, swallows every byte
        and is never closed, as after a NAT or Wi-Fi change. Connections made later work; the
        dead ones stay dead, so only a connector's own read timeout gets it out."""
        ...

    def outage(self) -> AbstractContextManager[None]:
        """While the context lasts, the connectors cannot reach the server (their connections
        are cut and refused), and the operator goes on posting."""
        ...

    def strikes(self) -> Mapping[Capability, int]:
        """How many times each fault of this scenario has landed so far, counted where it
        happens: for ``DROP_CONNECTIONS`` the cuts that took an answer bringing messages (or
        the chat pane's restarts), ``LOST_RESPONSE`` the send answers lost, ``SERVER_ERRORS``
        the answers given in the server's place, ``RESTART_SERVER``/``CRASH_SERVER`` the
        restarts, ``HALF_OPEN`` the requests and answers swallowed, ``OUTAGE`` the connections
        refused or cut."""
        ...

    def wait_idle(self, connector: OrchestratorConnector) -> None:
        """Wait until ``connector`` (made by this scenario) is idle: nothing in its state
        folder has changed for a moment (a connector that just delivered may be saving its
        cursor), or a few seconds have passed."""
        ...

    def stop_connector(
        self, connector: OrchestratorConnector, *, crash: bool = False
    ) -> StoppedConnector:
        """Stop ``connector`` (made by this scenario), once its state folder has settled:
        ``close()`` it, or with ``crash``, stop it as a crash right after its last write to
        the state folder would (a program: SIGKILL; in this process: the state as that
        write's start left it, a file it truncated empty). Start it again from the result."""
        ...


@runtime_checkable
class ConnectorTarget(Protocol):
    """The servers of one kind, up for the whole session."""

    @property
    def name(self) -> str:
        """Where the suite runs, for reports: ``matrix:synapse (Synapse 1.163.2)``, ``tmux``, ..."""
        ...

    @property
    def unsupported(self) -> Mapping[Capability, str]:
        """Each capability this kind lacks, with the reason."""
        ...

    def scenario(self) -> AbstractContextManager[Scenario]:
        """A fresh conversation; everything made in it is closed on exit."""
        ...


OpenTarget = Callable[[TargetOptions], AbstractContextManager[ConnectorTarget]]


def load_target(kind: ConnectorKind) -> OpenTarget:
    opener: OpenTarget = load(TARGETS[kind])
    return opener


class ReadHold:
    """Reads held on their way to the server, for as long as the suite says.

    The server side calls :meth:`pass_through` before it handles a read; the suite shuts the
    hold around a call (:meth:`shut_around`), does what must happen before the reads go on
    (the operator posts), and releases it. ``held`` counts the reads it held, where they were
    held; ``let_through`` those the call kept waiting on (see :data:`HOLD_GRACE_S`).
    """

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._shut = False
        self._calling = False  # the call under the hold has not returned yet
        self._released = threading.Event()
        self.held = 0
        self.let_through = 0
        self.read_after_release = 0  # reads begun once released: the held ones were answered

    @contextlib.contextmanager
    def shut_around(self) -> Iterator[None]:
        """Shut from before the block's call starts: every read begun from then on, in any
        thread, waits in :meth:`pass_through` until :meth:`release`, except one the call
        itself waits on. (Shut only once the call returned, a read a poller began in
        between would get through, now and then.)"""
        with self._changed:
            self._shut = self._calling = True
        try:
            yield
        finally:
            with self._changed:
                self._calling = False
                self._changed.notify_all()

    def release(self) -> None:
        self._released.set()

    def wait_held(self, timeout: float) -> bool:
        """Wait until a read is held; False if none was within ``timeout`` seconds."""
        with self._changed:
            return self._changed.wait_for(lambda: self.held > 0, timeout=timeout)

    def wait_read_after_release(self, timeout: float) -> bool:
        """Wait until a read begins after the release (the connector had the held read's
        answer and read on); False if none did within ``timeout`` seconds."""
        with self._changed:
            return self._changed.wait_for(lambda: self.read_after_release > 0, timeout=timeout)

    def pass_through(self) -> None:
        """Called by the server side for each read: returns at once while the hold is open
        (or released), else once it is released."""
        with self._changed:
            if not self._shut:
                return
            if self._released.is_set():
                self.read_after_release += 1
                self._changed.notify_all()
                return
            returned = self._changed.wait_for(lambda: not self._calling, timeout=HOLD_GRACE_S)
            if not returned:  # the call still runs: it may be waiting on this read
                self.let_through += 1
                return
            self.held += 1
            self._changed.notify_all()
        self._released.wait(HOLD_RELEASE_S)


# Helpers for targets: the two ways a server can be unreachable.


def closed_port() -> int:
    """A loopback port where nothing listens (it was free a moment ago)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


class SilentServer:
    """Accepts connections and never answers: a hung server. It listens on TCP on loopback,
    or on ``listener``, a socket already bound (a Unix one, say).

    Connections are held open until :meth:`close`, so a client without a timeout hangs.
    """

    def __init__(self, listener: socket.socket | None = None) -> None:
        if listener is None:
            listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind(("127.0.0.1", 0))
        self._listener = listener
        self._listener.listen(64)
        self._held: list[socket.socket] = []
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._accept, name="silent-server", daemon=True)
        self._thread.start()

    @property
    def port(self) -> int:
        port: int = self._listener.getsockname()[1]
        return port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return  # the listener was closed
            self._held.append(conn)

    def close(self) -> None:
        self._closed.set()
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        self._thread.join(timeout=5)
        for conn in self._held:
            conn.close()

    def __enter__(self) -> SilentServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@contextlib.contextmanager
def closing_all() -> Iterator[list[OrchestratorConnector]]:
    """A list to put connectors in; each is closed on exit, even if one close fails."""
    made: list[OrchestratorConnector] = []
    try:
        yield made
    finally:
        with contextlib.ExitStack() as stack:
            for connector in made:
                stack.callback(connector.close)
