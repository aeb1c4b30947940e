"""The connector suite's tmux target: a real tmux server per scenario, and its operator.

Each scenario starts its own tmux server (``tmux -L mosaic-ct-XXXX``) with the orchestrator's
session and a second session (the "other room"), opens the chat pane in both, and kills the
server and removes the chat files at the end. The operator types into the chat pane as a
person would (``send-keys``, byte by byte, so any text arrives as typed) and reads the pane's
screen back (``capture-pane``).
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from pathlib import Path

import libtmux
from libtmux.pane import Pane

from ...connectors.tmux import chat_request, ensure_chat_pane
from ...connectors.tmux_chat import INBOX_FILE, chat_dir, operator_name, parse_screen
from ...connectors.types import ConnectorConfig, OrchestratorConnector, TmuxConfig
from ...contract import ORCHESTRATOR_SESSION
from ...wait import NotReady, wait_for
from ..outcomes import HarnessError
from .restarts import MadeConnectors, Stopped
from .target import (
    Capability,
    ConnectorTarget,
    ReadHold,
    Scenario,
    SeenMessage,
    SilentServer,
    TargetOptions,
    TargetUnavailable,
    Unsupported,
    Variant,
)

SESSION = ORCHESTRATOR_SESSION
OTHER_SESSION = "mosaic-other"
# The sender id seen() gives what the connector printed; tmux itself names no sender.
ORCHESTRATOR_SENDER = "orchestrator"
ECHO_TIMEOUT = 10.0  # a typed line reaching the inbox, on a slow machine
STOP_TIMEOUT = 10.0  # a killed tmux server and its panes' programs are gone

UNSUPPORTED: Mapping[Capability, str] = {
    Capability.STRANGERS: "whoever types in the pane is the operator: tmux names no other sender",
    Capability.BAD_TOKEN: "tmux has no tokens",
    Capability.TOKENS: "tmux has no tokens",
    Capability.SERVER_ERRORS: "tmux chat speaks no HTTP: there are no status codes to answer",
    Capability.HOLD_READS: "the connector reads a file the chat pane appends to: there is no "
    "request to hold",
    Capability.HALF_OPEN: "tmux chat has no network link: the operator's lines go to a file",
    Capability.OUTAGE: "tmux chat has no network link: the operator types into the pane itself",
    Capability.MULTILINE: "the operator types lines into the pane: a line break ends a message",
}
INSTALL_TMUX = "install tmux (Debian and Ubuntu: apt-get install tmux) or put it on PATH"


def _unsupported(capability: Capability) -> Unsupported:
    return Unsupported(f"tmux: {UNSUPPORTED[capability]}.")


class TmuxOperator:
    """The person at the chat pane of one tmux server."""

    def __init__(self, server: libtmux.Server) -> None:
        self._server = server

    @property
    def sender_id(self) -> str:
        return operator_name()

    def post(self, text: str, thread_id: str | None = None) -> str:
        return type_line(self._server, SESSION, text, thread_id)

    def open_thread(self, text: str) -> str:
        """A thread is named by the message that starts it: any line can."""
        return type_line(self._server, SESSION, text)

    def post_as_stranger(self, text: str, thread_id: str | None = None) -> str:
        raise _unsupported(Capability.STRANGERS)

    def post_in_other_room(self, text: str, thread_id: str | None = None) -> str:
        return type_line(self._server, OTHER_SESSION, text, thread_id)

    def open_thread_in_other_room(self, text: str) -> str:
        return type_line(self._server, OTHER_SESSION, text)

    def seen(self) -> Sequence[SeenMessage]:
        lines = chat_pane(self._server, SESSION).cmd("capture-pane", "-p", "-J", "-S", "-").stdout
        return [
            SeenMessage(text=m.text, sender=ORCHESTRATOR_SENDER, id=m.id, thread_id=m.thread_id)
            if m.from_orchestrator
            else SeenMessage(text=m.text, sender=self.sender_id, thread_id=m.thread_id)
            for m in parse_screen(lines)
        ]


def chat_pane(server: libtmux.Server, session: str) -> Pane:
    return ensure_chat_pane(server, session, chat_dir(server.socket_name or "", session))


def type_line(server: libtmux.Server, session: str, text: str, thread_id: str | None = None) -> str:
    """Type ``text`` (as ``>THREAD text`` in a thread) and Enter into the chat pane of
    ``session``; return the message id.

    Keys go as hex bytes: ``send-keys -l`` would take a leading ``-`` for a flag and a
    trailing ``;`` for a command separator.
    """
    if "\n" in text or "\r" in text:
        raise ValueError("A tmux chat line is one message: post one line at a time.")
    inbox = chat_dir(server.socket_name or "", session) / INBOX_FILE
    before = _inbox_lines(inbox)
    line = f">{thread_id} {text}" if thread_id is not None else text
    keys = [f"{byte:02x}" for byte in line.encode("utf-8")] + ["0d"]
    chat_pane(server, session).cmd("send-keys", "-H", *keys)

    def arrived() -> str | None:
        for record in _inbox_lines(inbox)[len(before) :]:
            if record["text"] == text and record.get("thread_id") == thread_id:
                return str(record["id"])
        return None

    try:
        return wait_for(
            arrived,
            what=f"the typed line {text!r} to reach the chat inbox of {session!r}",
            timeout=ECHO_TIMEOUT,
            state=lambda: f"{len(_inbox_lines(inbox))} lines in {inbox}",
        )
    except NotReady as exc:  # the suite's typing, not the connector, did not get through
        raise HarnessError(f"the operator could not post: {exc}") from exc


def _inbox_lines(inbox: Path) -> list[dict[str, object]]:
    try:
        data = inbox.read_bytes()
    except FileNotFoundError:
        return []
    return [json.loads(line) for line in data.splitlines() if line.endswith(b"}")]


def _running(pid: int) -> bool:
    """Whether ``pid`` is a live process (not a zombie waiting to be reaped)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def tmux_socket_path(socket_name: str) -> Path:
    """Where tmux puts the socket of ``tmux -L socket_name``."""
    base = Path(os.environ.get("TMUX_TMPDIR") or "/tmp")
    return base / f"tmux-{os.getuid()}" / socket_name


class SilentTmuxServer(SilentServer):
    """A Unix socket where tmux looks for the server ``socket_name``: it accepts
    connections and never answers, as a hung tmux server would."""

    def __init__(self, socket_name: str) -> None:
        self.path = tmux_socket_path(socket_name)
        self.path.parent.mkdir(mode=0o700, exist_ok=True)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(str(self.path))
        super().__init__(listener)

    def close(self) -> None:
        super().close()
        self.path.unlink(missing_ok=True)


class TmuxScenario:
    """A fresh tmux server with the orchestrator's session and another one."""

    def __init__(self, options: TargetOptions) -> None:
        self._options = options
        self._half_started = False  # a start that did not finish may still bring a server up
        self.socket_name = f"mosaic-ct-{secrets.token_hex(4)}"
        workdir = options.workdir / "scenarios" / self.socket_name
        self._connectors = MadeConnectors(options.make_connector, workdir)
        self._strikes: collections.Counter[Capability] = collections.Counter()
        self._silent: SilentTmuxServer | None = None
        self.server = libtmux.Server(socket_name=self.socket_name)
        self._operator = TmuxOperator(self.server)

    @property
    def operator(self) -> TmuxOperator:
        return self._operator

    def start(self) -> None:
        self._half_started = True
        for session in (SESSION, OTHER_SESSION):
            if not self.server.has_session(session):
                self.server.new_session(session_name=session, window_command="cat", x=200, y=50)
            chat_pane(self.server, session)
        self._half_started = False

    def stop(self) -> None:
        """Close the connectors, then the server; remove the chat files."""
        try:
            self._connectors.close()
        finally:
            try:
                if self._silent is not None:
                    self._silent.close()
            finally:
                self._end_server()

    def _end_server(self) -> None:
        """Kill the server, also one still coming up; an interrupt (Ctrl-C lands anywhere,
        this wait and kill included) ends it all the same before it goes on."""
        try:
            if self._half_started:  # interrupted in new-session: its server may come yet
                with contextlib.suppress(NotReady):
                    wait_for(self.server.is_alive, what="a half-started server", timeout=2)
            self._kill_server()
        except BaseException:
            self._kill_server()
            raise
        finally:  # even when the kill itself failed
            tmux_socket_path(self.socket_name).unlink(missing_ok=True)  # tmux leaves it
            shutil.rmtree(chat_dir(self.socket_name, SESSION).parent, ignore_errors=True)

    def _processes(self) -> tuple[int | None, list[int]]:
        """The tmux server's pid and its panes' (the chat programs), while it answers."""
        with contextlib.suppress(Exception):
            servers = self.server.cmd("list-sessions", "-F", "#{pid}").stdout
            panes = self.server.cmd("list-panes", "-a", "-F", "#{pane_pid}").stdout
            return int(servers[0]), [int(pid) for pid in panes if pid.strip().isdigit()]
        return None, []

    def _kill_server(self, sig: signal.Signals | None = None) -> None:
        """Kill the tmux server (``kill-server``, or ``sig`` to its process) and wait until it
        and its panes' programs are gone: a chat program still starting would otherwise
        bind its socket after the chat files were removed, or beside the next server's."""
        server, panes = self._processes()
        processes = [pid for pid in (server, *panes) if pid is not None]
        with contextlib.suppress(Exception):
            if sig is not None and server is not None:
                os.kill(server, sig)
            elif self.server.is_alive():
                self.server.kill()
        try:
            wait_for(
                lambda: not any(map(_running, processes)) and not self.server.is_alive(),
                what=f"the tmux server on {self.socket_name!r} and its panes to end",
                timeout=STOP_TIMEOUT,
            )
        except NotReady:
            for pid in processes:  # they are this scenario's own: end them for good
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)

    def config(self, socket_name: str | None = None) -> ConnectorConfig:
        tmux = TmuxConfig(socket_name=socket_name or self.socket_name, session=SESSION)
        return ConnectorConfig(kind="tmux", tmux=tmux)

    def connect(self, variant: Variant = Variant.HEALTHY) -> OrchestratorConnector:
        if variant is Variant.HEALTHY:
            config = self.config()
        elif variant is Variant.SERVER_DOWN:
            config = self.config(socket_name=f"{self.socket_name}-down")  # no server there
        elif variant is Variant.SILENT_SERVER:
            if self._silent is None:
                self._silent = SilentTmuxServer(f"{self.socket_name}-silent")
            config = self.config(socket_name=f"{self.socket_name}-silent")
        else:
            raise _unsupported(Capability.BAD_TOKEN)
        return self._connectors.make(config, dict(os.environ))

    def wait_idle(self, connector: OrchestratorConnector) -> None:
        self._connectors.wait_idle(connector)

    def stop_connector(self, connector: OrchestratorConnector, *, crash: bool = False) -> Stopped:
        return self._connectors.stop(connector, crash=crash)

    def strikes(self) -> Mapping[Capability, int]:
        return dict(self._strikes)

    def half_open(self) -> AbstractContextManager[None]:
        raise _unsupported(Capability.HALF_OPEN)

    def outage(self) -> AbstractContextManager[None]:
        raise _unsupported(Capability.OUTAGE)

    def lose_next_send_response(self) -> None:
        self.lose_send_responses(1)

    def lose_send_responses(self, count: int) -> None:
        chat_request(chat_dir(self.socket_name, SESSION), {"op": "lose-next-ack", "count": count})

    def send_responses_lost(self) -> int:
        """As the chat pane counted them (a fresh pane, after drop_connections, counts anew)."""
        answer = chat_request(chat_dir(self.socket_name, SESSION), {"op": "stats"})
        return int(str(answer.get("acks_lost", 0)))

    def hold_reads(self) -> ReadHold:
        raise _unsupported(Capability.HOLD_READS)

    def drop_connections(self) -> None:
        """Restart the chat pane's program: the only connection tmux chat has."""
        pane = chat_pane(self.server, SESSION)
        pane.cmd("respawn-pane", "-k")
        chat_pane(self.server, SESSION)  # waits until the new program answers
        self._strikes[Capability.DROP_CONNECTIONS] += 1

    def restart_server(self) -> None:
        """Kill the tmux server and start it again; the chat files stay."""
        self._kill_server()
        self.start()
        self._strikes[Capability.RESTART_SERVER] += 1

    def crash_server(self) -> None:
        """SIGKILL the tmux server process (its panes hang up) and start it again."""
        self._kill_server(signal.SIGKILL)
        self.start()
        self._strikes[Capability.CRASH_SERVER] += 1

    def fail_requests(self, status: int, count: int, *, sends_only: bool = False) -> None:
        raise _unsupported(Capability.SERVER_ERRORS)


class TmuxTarget:
    def __init__(self, options: TargetOptions) -> None:
        self._options = options

    @property
    def name(self) -> str:
        return f"tmux {libtmux.common.get_version()}"

    @property
    def unsupported(self) -> Mapping[Capability, str]:
        return UNSUPPORTED

    @contextlib.contextmanager
    def scenario(self) -> Iterator[Scenario]:
        scenario = TmuxScenario(self._options)
        try:
            scenario.start()
            yield scenario
        finally:
            scenario.stop()


@contextlib.contextmanager
def open_target(options: TargetOptions) -> Iterator[ConnectorTarget]:
    """The tmux target: nothing to start for the session; each scenario has its server."""
    if shutil.which("tmux") is None:
        raise TargetUnavailable(f"tmux is not installed (no `tmux` on PATH): {INSTALL_TMUX}")
    yield TmuxTarget(options)
