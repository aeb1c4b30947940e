"""The chat pane: the program the tmux connector runs in the operator's pane.

Run as ``python -m mosaic_conformance.connectors.tmux_chat --dir DIR --session NAME``. It
keeps the two directions of the chat apart, so the connector never hears its own words:

- **to the operator**: the connector connects to ``DIR/chat.sock`` and sends one JSON line
  ``{"op": "show", "id": ..., "text": ..., "thread_id": ...}``; the pane prints the message
  in a frame and answers ``{"ok": true, "id": ..., "new": ...}`` once it is on the screen.
  An id it has shown before is acknowledged again but not printed again, so a retried send
  appears once.
- **from the operator**: each line typed into the pane (its standard input, the terminal)
  is appended to ``DIR/inbox.jsonl`` as ``{"id", "text", "sender", "ts", "thread_id"}``,
  which the connector tails. What the pane prints goes to the terminal, never to its input,
  so the connector's own messages cannot come back as the operator's.

Threads: a thread is named by the id of the message that starts it. The pane labels a
message sent into a thread (``· thread ID``), and a line typed as ``>ID text`` is a reply
in thread ``ID`` (no space after ``>``, so a quoted ``> text`` stays a plain line).

``{"op": "ping"}`` answers whether the pane is up. ``{"op": "lose-next-ack", "count": N}`` is
a test hook: the next N show requests (a new message or a retry of one) get no answer (lost
responses; a new message is shown all the same); ``{"op": "stats"}`` answers how many
answers it lost so far (``acks_lost``).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import pwd
import re
import secrets
import signal
import socket
import sys
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

SOCKET_FILE = "chat.sock"
INBOX_FILE = "inbox.jsonl"
MAX_REQUEST_BYTES = 4 * 1024 * 1024
# A Unix socket path is limited to 108 bytes, including the terminating NUL.
MAX_SOCKET_PATH = 107

# The frame around what the orchestrator says; parse_screen reads it back.
BANNER = "── mosaic chat"
HEADER = "┌─ orchestrator #"
THREAD_MARK = " · thread "
BODY = "│ "
FOOTER = "└─"
REPLY = re.compile(r">(?P<thread>[^\s>]+) (?P<text>.*\S.*)")


def split_reply(line: str) -> tuple[str | None, str]:
    """``(thread_id, text)`` of a typed line: ``>ID text`` replies in thread ``ID``."""
    reply = REPLY.fullmatch(line)
    return (reply["thread"], reply["text"]) if reply else (None, line)


def chat_dir(socket_name: str, session: str, environ: dict[str, str] | None = None) -> Path:
    """Where the chat pane of ``session`` on tmux socket ``socket_name`` keeps its files.

    Beside tmux's own socket directory (``$TMUX_TMPDIR`` or ``/tmp``), private to the user,
    so every process of the user resolves the same place from the same two names.
    """
    env = os.environ if environ is None else environ
    base = Path(env.get("TMUX_TMPDIR") or "/tmp")
    return base / f"mosaic-chat-{os.getuid()}" / _safe_part(socket_name) / _safe_part(session)


def _safe_part(name: str) -> str:
    """A path component for a tmux name: no separators, no dot-dot."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]", "_", name)
    return cleaned if cleaned.strip(".") else f"_{cleaned}"


def prepare_dir(path: Path) -> None:
    """Create ``path`` (and the per-user parent) private to this user, or refuse."""
    user_root = path.parent.parent
    user_root.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = user_root.stat()
    if info.st_uid != os.getuid():
        raise PermissionError(
            f"The chat directory {user_root} belongs to uid {info.st_uid}, not to this user; "
            "refusing to use it."
        )
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    socket_path = path / SOCKET_FILE
    if len(os.fsencode(socket_path)) > MAX_SOCKET_PATH:
        raise ValueError(
            f"The chat socket path {socket_path} is longer than a Unix socket allows "
            f"({MAX_SOCKET_PATH} bytes); use a shorter TMUX_TMPDIR, socket or session name."
        )


def operator_name() -> str:
    """The sender of what is typed in the pane: the user the pane runs as."""
    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        return f"uid-{os.getuid()}"


def now_iso() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds")


def render(message_id: str, text: str, thread_id: str | None) -> str:
    """The frame the operator sees for one orchestrator message."""
    header = HEADER + message_id + (THREAD_MARK + thread_id if thread_id else "")
    body = "".join(f"{BODY}{line}\n" for line in text.split("\n"))
    return f"{header}\n{body}{FOOTER}\n"


@dataclass(frozen=True, slots=True)
class ScreenMessage:
    """One message read back from the pane's screen."""

    from_orchestrator: bool
    text: str
    id: str | None = None
    thread_id: str | None = None


def parse_screen(lines: Iterable[str]) -> Iterator[ScreenMessage]:
    """Read the pane's captured lines back into messages (see :func:`render`).

    Framed blocks are the orchestrator's; any other non-blank line is what the operator
    typed (the terminal echoes it).
    """
    frame: tuple[str, str | None, list[str]] | None = None
    for raw in lines:
        line = raw.rstrip()
        if frame is not None:
            if line.startswith(BODY.rstrip()):
                frame[2].append(raw[len(BODY) :])
                continue
            if line == FOOTER:
                yield ScreenMessage(True, "\n".join(frame[2]), frame[0], frame[1])
                frame = None
                continue
            frame = None  # an unterminated frame (cut off): drop it
        if line.startswith(HEADER):
            ident, _, thread = line[len(HEADER) :].partition(THREAD_MARK)
            frame = (ident, thread or None, [])
        elif line and not line.startswith(BANNER):
            thread_id, text = split_reply(line)
            yield ScreenMessage(False, text, thread_id=thread_id)


class ChatPane:
    """The pane's two loops: the socket that shows messages, the terminal that reads lines."""

    def __init__(self, directory: Path, session: str) -> None:
        self.directory = directory
        self.session = session
        self.sender = operator_name()
        self._shown: set[str] = set()
        self._acks_to_lose = 0
        self._acks_lost = 0
        self._print_lock = threading.Lock()
        self._listener = self._bind()

    def _bind(self) -> socket.socket:
        prepare_dir(self.directory)
        path = self.directory / SOCKET_FILE
        if path.exists():
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
                probe.settimeout(1.0)
                try:
                    probe.connect(str(path))
                except OSError:
                    path.unlink()  # stale: its pane is gone
                else:
                    raise SystemExit(
                        f"Another chat pane already serves session {self.session!r} "
                        f"({path}); this one exits."
                    )
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(str(path))
        listener.listen(16)
        self._socket_inode = os.stat(path).st_ino
        return listener

    def serve(self) -> None:
        threading.Thread(target=self._accept_loop, name="chat-socket", daemon=True).start()
        self._print(
            f"{BANNER} · session {self.session} · type a line and press Enter; "
            "reply in a thread with >ID text\n"
        )
        self._read_operator(sys.stdin.buffer)

    def close(self) -> None:
        path = self.directory / SOCKET_FILE
        with contextlib.suppress(OSError):
            if os.stat(path).st_ino == self._socket_inode:  # not a later pane's socket
                path.unlink()
        self._listener.close()

    def _print(self, text: str) -> None:
        with self._print_lock:
            sys.stdout.write(text)
            sys.stdout.flush()

    def _read_operator(self, stream: Iterable[bytes]) -> None:
        inbox = self.directory / INBOX_FILE
        for raw in stream:
            text = raw.decode("utf-8", "replace").rstrip("\r\n")
            if not text.strip():
                continue
            thread_id, text = split_reply(text)
            record = {
                "id": secrets.token_hex(6),
                "text": text,
                "sender": self.sender,
                "ts": now_iso(),
                "thread_id": thread_id,
            }
            line = (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")
            fd = os.open(inbox, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, line)  # one write of one line: the connector never sees half
                os.fsync(fd)
            finally:
                os.close(fd)

    def _accept_loop(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return  # the listener was closed
            with conn:
                conn.settimeout(5.0)
                with contextlib.suppress(OSError, ValueError):
                    self._handle(conn)

    def _handle(self, conn: socket.socket) -> None:
        reader = conn.makefile("rb")
        request = json.loads(reader.readline(MAX_REQUEST_BYTES))
        op = request.get("op")
        if op == "ping":
            answer: dict[str, object] = {"ok": True, "pid": os.getpid()}
        elif op == "lose-next-ack":
            self._acks_to_lose += int(request.get("count", 1))
            answer = {"ok": True}
        elif op == "stats":
            answer = {"ok": True, "acks_lost": self._acks_lost}
        elif op == "show":
            message_id = str(request["id"])
            new = message_id not in self._shown
            if new:
                thread_id = request.get("thread_id")
                self._print(render(message_id, str(request["text"]), thread_id))
                self._shown.add(message_id)
            if self._acks_to_lose > 0:
                self._acks_to_lose -= 1
                self._acks_lost += 1
                return  # shown (if new), but the answer is lost
            answer = {"ok": True, "id": message_id, "new": new}
        else:
            answer = {"ok": False, "error": f"unknown op {op!r}"}
        conn.sendall((json.dumps(answer) + "\n").encode("utf-8"))


def _exit_on_signal(signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="The mosaic chat pane (run by tmux).")
    parser.add_argument("--dir", required=True, type=Path)
    parser.add_argument("--session", required=True)
    args = parser.parse_args(argv)
    signal.signal(signal.SIGHUP, _exit_on_signal)
    signal.signal(signal.SIGTERM, _exit_on_signal)
    # A hang-up while the socket is being bound waits until the pane can remove it again.
    ending = {signal.SIGHUP, signal.SIGTERM}
    signal.pthread_sigmask(signal.SIG_BLOCK, ending)
    pane = ChatPane(args.dir, args.session)
    try:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, ending)
        pane.serve()
    finally:
        pane.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
