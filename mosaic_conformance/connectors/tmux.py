"""The tmux connector: the orchestrator chats with its operator in a tmux pane.

The connector drives a tmux server (``tmux -L SOCKET``, through libtmux) that the fleet
keeps running, and in the configured session a window ``mosaic-chat`` whose pane runs the
chat pane program (:mod:`.tmux_chat`). The defaults are the fleet's layout
(:mod:`mosaic_conformance.contract`): socket ``mosaic``, session ``mosaic-orchestrator``,
which the fleet's holder unit starts the server with.

- ``send`` hands the message to the pane over its Unix socket; the pane prints it in a
  frame and acknowledges. The message id stays the same across retries, and the pane
  prints an id once, so a retried send appears once. If the window is missing (first use,
  or after a tmux restart) the connector opens it.
- ``subscribe`` tails the pane's inbox, where each line the operator types is one message.
  The pane prints to the terminal and reads from it, never mixing the two, so the
  connector's own messages never come back (CONN.7). How far it has read is saved in the
  state folder (:mod:`.state`): the pane keeps writing the inbox while the connector is down,
  and a restarted connector goes on from there (CONN.13).
- ``health`` asks tmux whether the server and the session are there. tmux has no tokens,
  so ``authenticated`` mirrors ``reachable``.

libtmux runs tmux without a timeout, and a tmux server that accepts connections but never
answers makes every tmux command hang. So before it uses libtmux, the connector asks tmux
once, itself, with a timeout (:func:`live_sessions`); health and send stay bounded.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import secrets
import shlex
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path

import libtmux
from libtmux.exc import LibTmuxException
from libtmux.pane import Pane

from ..contract import CHAT_WINDOW
from ..wait import NotReady, wait_for
from .hub import Subscribers
from .state import CursorFile, state_folder
from .tmux_chat import (
    INBOX_FILE,
    MAX_REQUEST_BYTES,
    SOCKET_FILE,
    chat_dir,
    now_iso,
    prepare_dir,
)
from .types import (
    ConnectorConfig,
    ConnectorHealth,
    ConnectorKind,
    Handler,
    InboundMessage,
    OutboundMessage,
    SendResult,
    TmuxConfig,
    Unsubscribe,
)

log = logging.getLogger(__name__)

SEND_ATTEMPTS = 4
PANE_START_TIMEOUT = 10.0  # a Python start in a fresh pane, on a slow machine
REQUEST_TIMEOUT = 5.0
PROBE_TIMEOUT = 5.0  # how long tmux may take to list its sessions
PANE_CHECK_INTERVAL = 5.0  # while subscribed, how often to see that the chat pane is there


class TmuxUnavailable(Exception):
    """The tmux server or the session is not there; the message says which."""


def live_sessions(socket_name: str, timeout: float = PROBE_TIMEOUT) -> list[str]:
    """The sessions of the tmux server on ``socket_name``, asked within ``timeout`` seconds.

    The one tmux command this module runs without libtmux: libtmux has no timeout, and this
    probe is what keeps health and send bounded when a tmux server hangs.
    """
    tmux = shutil.which("tmux")
    if tmux is None:
        raise TmuxUnavailable("tmux is not installed: no `tmux` on PATH.")
    argv = [tmux, "-L", socket_name, "list-sessions", "-F", "#{session_name}"]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise TmuxUnavailable(
            f"The tmux server on socket {socket_name!r} did not answer within {timeout:g}s."
        ) from None
    if done.returncode != 0:
        why = done.stderr.strip() or f"exit status {done.returncode}"
        raise TmuxUnavailable(f"No tmux server answers on socket {socket_name!r} ({why}).")
    return done.stdout.splitlines()


def chat_command(directory: Path, session: str) -> str:
    """The shell command of the chat pane: this interpreter, this package."""
    return shlex.join(
        [
            sys.executable,
            "-m",
            "mosaic_conformance.connectors.tmux_chat",
            "--dir",
            str(directory),
            "--session",
            session,
        ]
    )


def chat_request(directory: Path, request: Mapping[str, object]) -> dict[str, object]:
    """One request to the chat pane and its answer.

    Raises ``FileNotFoundError`` / ``ConnectionRefusedError`` when no pane listens, and
    ``ConnectionError`` or ``TimeoutError`` when the answer does not come.
    """
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.settimeout(REQUEST_TIMEOUT)
        conn.connect(str(directory / SOCKET_FILE))
        conn.sendall((json.dumps(request, ensure_ascii=False) + "\n").encode("utf-8"))
        with conn.makefile("rb") as reader:
            line = reader.readline(MAX_REQUEST_BYTES)
    if not line:
        raise ConnectionError("The chat pane closed the connection without an answer.")
    answer: dict[str, object] = json.loads(line)
    return answer


def pane_answers(directory: Path) -> bool:
    try:
        return chat_request(directory, {"op": "ping"}).get("ok") is True
    except (OSError, ValueError):
        return False


def ensure_chat_pane(server: libtmux.Server, session_name: str, directory: Path) -> Pane:
    """The chat pane of ``session_name``, opened if missing, once it answers."""
    if session_name not in live_sessions(server.socket_name or ""):
        raise TmuxUnavailable(
            f"The tmux server on socket {server.socket_name!r} has no session {session_name!r}."
        )
    session = server.sessions.get(session_name=session_name, default=None)
    if session is None:
        raise TmuxUnavailable(
            f"The tmux server on socket {server.socket_name!r} has no session {session_name!r}."
        )
    window = session.windows.get(window_name=CHAT_WINDOW, default=None)
    if window is None:
        prepare_dir(directory)
        package_root = str(Path(__file__).resolve().parents[2])
        python_path = os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")]))
        window = session.new_window(
            window_name=CHAT_WINDOW,
            window_shell=chat_command(directory, session_name),
            attach=False,
            environment={"PYTHONIOENCODING": "utf-8", "PYTHONPATH": python_path},
        )
    pane = window.active_pane
    if pane is None:
        raise TmuxUnavailable(f"The {CHAT_WINDOW!r} window of {session_name!r} has no pane.")

    def screen() -> str:
        with contextlib.suppress(LibTmuxException):
            return " | ".join(line for line in pane.capture_pane() if line.strip())[-500:]
        return "(the pane is gone)"

    wait_for(
        lambda: pane_answers(directory),
        what=f"the chat pane of tmux session {session_name!r} to answer",
        timeout=PANE_START_TIMEOUT,
        state=screen,
    )
    return pane


class TmuxConnector:
    """The orchestrator's side of the chat pane in ``config.session`` on ``config.socket_name``."""

    def __init__(
        self, config: TmuxConfig, *, state_dir: Path | None = None, poll_interval: float = 0.05
    ) -> None:
        self.config = config
        self.server = libtmux.Server(socket_name=config.socket_name)
        self.directory = chat_dir(config.socket_name, config.session)
        self._poll_interval = poll_interval
        self._lock = threading.RLock()  # held while handlers run: unsubscribe waits for them
        self._subscribers = Subscribers(self._lock)
        self._pane_lock = threading.Lock()
        self._offset: int | None = None  # where the inbox was read up to
        conversation = f"session {config.session} on socket {config.socket_name}"
        self._cursor = CursorFile(state_dir, "tmux", conversation)
        self._poller: threading.Thread | None = None
        self._closed = threading.Event()
        self._last_seen: str | None = None

    @property
    def kind(self) -> ConnectorKind:
        return "tmux"

    def __repr__(self) -> str:
        return f"TmuxConnector(socket={self.config.socket_name!r}, session={self.config.session!r})"

    # send

    def send(self, message: OutboundMessage) -> SendResult:
        text = message.text_with_attachments("[attachment]")
        request = {
            "op": "show",
            "id": self._new_message_id(),
            "text": text,
            "thread_id": message.thread_id,
        }
        error = "no attempt was made"
        for _attempt in range(SEND_ATTEMPTS):
            try:
                answer = self._deliver(request)
            except TmuxUnavailable as exc:
                return SendResult(delivered=False, error=str(exc))
            except (OSError, ValueError, NotReady, LibTmuxException) as exc:
                error = f"the chat pane did not acknowledge: {exc}"
                continue  # the same id again: the pane shows it at most once
            if answer.get("ok") is True:
                self._last_seen = now_iso()
                return SendResult(delivered=True, message_id=str(request["id"]))
            error = f"the chat pane refused the message: {answer.get('error')}"
        error = f"Not delivered after {SEND_ATTEMPTS} tries: {error}"
        return SendResult(delivered=False, error=error)

    def _new_message_id(self) -> str:
        return secrets.token_hex(6)

    def _deliver(self, request: Mapping[str, object]) -> dict[str, object]:
        try:
            return chat_request(self.directory, request)
        except OSError as exc:
            if exc.errno not in (errno.ENOENT, errno.ECONNREFUSED):
                raise
        # No pane listens: open it (first use, or tmux was restarted), then try again.
        self._open_pane()
        return chat_request(self.directory, request)

    def _open_pane(self) -> None:
        with self._pane_lock:  # one window, also when send and the poller both try
            ensure_chat_pane(self.server, self.config.session, self.directory)

    # subscribe

    def subscribe(self, handler: Handler) -> Unsubscribe:
        with self._lock:
            unsubscribe = self._subscribers.add(handler)
            if self._offset is None:
                self._offset = self._resume_offset()
                self._save_offset()
            if self._poller is None and not self._closed.is_set():
                self._poller = threading.Thread(
                    target=self._poll, name=f"tmux-connector-{self.config.session}", daemon=True
                )
                self._poller.start()
        return unsubscribe

    def _inbox(self) -> os.stat_result | None:
        try:
            return (self.directory / INBOX_FILE).stat()
        except FileNotFoundError:
            return None

    def _resume_offset(self) -> int:
        """Where the saved cursor left off in this inbox; else its end (no history)."""
        inbox, saved = self._inbox(), self._cursor.load()
        if inbox is None:
            return 0
        if saved is None:
            return inbox.st_size
        offset, inode = saved.get("offset"), saved.get("inode")
        if not isinstance(offset, int) or not isinstance(inode, int) or offset < 0:
            self._cursor.distrust("its offset or inode is not a number")
            return inbox.st_size
        if inode != inbox.st_ino or offset > inbox.st_size:
            return 0  # the inbox was replaced since: all of the new one is news
        return offset

    def _save_offset(self) -> None:
        inbox = self._inbox()
        if self._offset is not None and inbox is not None:
            self._cursor.save({"offset": self._offset, "inode": inbox.st_ino})

    def _poll(self) -> None:
        next_pane_check = 0.0
        while not self._closed.wait(self._poll_interval):
            with self._lock:
                if not self._subscribers:
                    self._poller = None  # the next subscribe starts a new poller
                    return
            try:
                self._deliver_new_lines()
            except Exception:  # keep polling: the next round reads the same lines again
                log.exception("Reading the tmux chat inbox in %s failed", self.directory)
            if time.monotonic() >= next_pane_check:
                next_pane_check = time.monotonic() + PANE_CHECK_INTERVAL
                self._keep_pane_open()

    def _keep_pane_open(self) -> None:
        """Someone listens for the operator: make sure they have a pane to type in (also
        after tmux was restarted)."""
        if pane_answers(self.directory):
            return
        try:
            self._open_pane()
        except (TmuxUnavailable, LibTmuxException, OSError) as exc:
            log.info("The chat pane cannot be opened now: %s", exc)

    def _deliver_new_lines(self) -> None:
        lines = self._read_operator_lines()
        for message, end in lines:
            with self._lock:
                self._subscribers.deliver([message])
                self._offset = end
                self._last_seen = now_iso()
        if lines:
            self._save_offset()

    def _read_operator_lines(self) -> list[tuple[InboundMessage, int]]:
        """Complete inbox lines after the saved offset, each with the offset after it."""
        offset = self._offset or 0
        try:
            with open(self.directory / INBOX_FILE, "rb") as inbox:
                if os.fstat(inbox.fileno()).st_size < offset:
                    offset = 0  # the inbox was replaced: read the new one from its start
                inbox.seek(offset)
                data = inbox.read()
        except FileNotFoundError:
            return []
        found = []
        for line in data.splitlines(keepends=True):
            if not line.endswith(b"\n"):
                break  # written half: read it next round
            offset += len(line)
            record = json.loads(line)
            message = InboundMessage(
                id=str(record["id"]),
                text=str(record["text"]),
                sender=str(record["sender"]),
                ts=str(record["ts"]),
                thread_id=record.get("thread_id"),
            )
            found.append((message, offset))
        return found

    # health

    def health(self) -> ConnectorHealth:
        socket_name, session = self.config.socket_name, self.config.session
        try:
            sessions = live_sessions(socket_name)
        except (TmuxUnavailable, OSError) as exc:
            return ConnectorHealth(False, False, self._last_seen, str(exc))
        if session not in sessions:
            detail = f"The tmux server on socket {socket_name!r} has no session {session!r}."
            return ConnectorHealth(False, False, self._last_seen, detail)
        self._last_seen = now_iso()
        pane = "is up" if pane_answers(self.directory) else "opens on the first send"
        detail = (
            f"The tmux server on socket {socket_name!r} has session {session!r}; "
            f"the chat pane {pane}. tmux has no tokens, so authenticated mirrors reachable."
        )
        return ConnectorHealth(True, True, self._last_seen, detail)

    def close(self) -> None:
        """Stop delivering; the operator's pane stays open (and its inbox, for the next
        connector, where the saved cursor says this one stopped)."""
        self._closed.set()
        poller = self._poller
        if poller is not None and poller is not threading.current_thread():
            poller.join(timeout=5)
        with self._lock:
            self._subscribers.clear()
            self._save_offset()


def create_connector(
    config: ConnectorConfig,
    environ: Mapping[str, str] | None = None,
    *,
    connector_class: type[TmuxConnector] = TmuxConnector,
) -> TmuxConnector:
    """The registry's factory for ``tmux``: tmux needs no token; the state folder comes from
    the roster or ``MOSAIC_CONNECTOR_STATE_DIR``; ``connector_class``: a subclass of the
    shipped connector to make instead."""
    return connector_class(config.tmux, state_dir=state_folder(config, environ))


factory = create_connector  # the name the brief uses
