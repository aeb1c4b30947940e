"""The fake backend: recording stand-ins for ``systemctl`` and ``loginctl``, the real ``tmux``.

The stand-ins are POSIX sh scripts (``harness/systems/bin/``) put first on the fleet's
``PATH``; every call is recorded in ``calls.jsonl`` (see ``base.py``).

- ``systemctl --user`` and ``loginctl`` simulate the verbs a fleet uses to keep its units and
  linger, with systemd 252's output and exit codes (``tests/test_fake_differential.py`` runs
  the same calls on a real systemd and compares), and refuse the rest by name. Nothing runs:
  a started unit is a fact in ``ROOT/state``. That state model is written once, in
  ``bin/_fake.sh``; this module asks it through ``bin/_system.sh`` (what holds, a reboot).
- ``tmux`` is the real tmux behind a recording wrapper, with ``TMUX_TMPDIR`` in the test's
  own folder: the servers a test's fleet starts are its own, never the user's, and
  :meth:`FakeBackend.close` (or a reboot) ends them.

So a test is fast, and can never touch the real user manager, tmux server or home folder.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from ...wait import wait_for
from ..outcomes import HarnessError
from .base import STATE_ENV, Backend, BackendSession, BackendUnavailable, SystemState

# The scripts shipped next to this module, copied into the session's own folder.
SCRIPTS_DIR = Path(__file__).with_name("bin")
STAND_INS = ("systemctl", "loginctl", "tmux")
TMUX_ENV = "MOSAIC_CONFORMANCE_TMUX"  # the real tmux, for the wrapper
INSTALL_TMUX = "install tmux (Debian/Ubuntu: apt-get install tmux; macOS: brew install tmux)"

# The login the fleet runs as on the fake (never the real user's).
FAKE_USER = "mosaic-test"

_MOSAIC_PREFIX = "mosaic-"
# A Unix socket's path holds at most 107 bytes; leave this many for the socket's own name
# ("default", "mosaic", ...).
_SOCKET_PATH_MAX = 107
_SOCKET_NAME_ROOM = 16
_SESSION_FIELDS = "#{session_name}\t#{pane_start_command}\t#{session_path}"
STOP_TIMEOUT = 5.0  # seconds for a killed tmux server and its panes' programs to end


@dataclass(frozen=True, slots=True)
class TmuxSession:
    """A session of one of the test's tmux servers, as tmux shows it."""

    name: str
    command: str  # what its first pane was started with (#{pane_start_command}); "" for a shell
    path: str  # its start folder (``-c``, else the caller's)


def real_tmux(path: str | None = None) -> str | None:
    """The first tmux on ``path`` (default: ``$PATH``) that is not a stand-in of ours."""
    for folder in (path or os.environ.get("PATH", os.defpath)).split(os.pathsep):
        candidate = Path(folder or ".") / "tmux"
        if (candidate.parent / "_prelude.sh").exists():
            continue  # a stand-ins folder, this session's or another's
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return None


class FakeSession(BackendSession):
    """Copies the stand-ins once per pytest session; every test gets a fresh root."""

    name = "fake"

    def __init__(self, workdir: Path, options: Mapping[str, object] | None = None) -> None:
        super().__init__(workdir, options)
        self.bin_dir = workdir / "bin"
        self.tmux: str | None = None
        self._opened: list[FakeBackend] = []
        self._short_dir: Path | None = None  # tmux's folders of deep tests, made on demand

    def start(self) -> None:
        if shutil.which("sh") is None:
            raise BackendUnavailable("the fake backend's stand-ins need a POSIX sh on PATH")
        self.tmux = real_tmux()
        if self.tmux is None:
            raise BackendUnavailable(
                "the fake backend runs the real tmux behind its recording wrapper, and no "
                f"tmux is on PATH: {INSTALL_TMUX}"
            )
        self.bin_dir.mkdir(parents=True, exist_ok=True)
        for script in SCRIPTS_DIR.iterdir():
            if script.is_file():
                target = self.bin_dir / script.name
                shutil.copyfile(script, target)
                target.chmod(0o755)  # a wheel may have lost the mode bits

    def open(self, root: Path) -> FakeBackend:
        if self.tmux is None:
            raise RuntimeError("FakeSession.open() was called before start()")
        backend = FakeBackend(root, self.bin_dir, self.tmux, self._short_folder)
        self._opened.append(backend)
        return backend

    def _short_folder(self) -> Path:
        """A fresh folder with a short path, inside one the session removes at its close:
        an interrupt between making it and handing it to a test leaves nothing behind."""
        if self._short_dir is None:
            self._short_dir = Path(tempfile.mkdtemp(prefix="mosaic-tmux-"))
        return Path(tempfile.mkdtemp(dir=self._short_dir))

    def close(self) -> None:
        """End what a test's system left running, had nobody closed it."""
        for backend in self._opened:
            backend.close()
        self._opened.clear()
        if self._short_dir is not None:
            shutil.rmtree(self._short_dir, ignore_errors=True)
            self._short_dir = None


class FakeBackend(Backend):
    """One fresh fake system, all of it under ``root``."""

    name: ClassVar[str] = "fake"

    def __init__(
        self, root: Path, bin_dir: Path, tmux: str, short_folder: Callable[[], Path]
    ) -> None:
        super().__init__(root)
        self.bin_dir = bin_dir
        self.tmux = tmux
        for folder in (self.unit_dir, root / "home"):
            folder.mkdir(parents=True, exist_ok=True)
        (root / "run").mkdir(mode=0o700, exist_ok=True)
        self.tmux_tmpdir = root / "tmux"
        self._own_tmpdir = False
        room = _SOCKET_PATH_MAX - len(os.fsencode(self._socket_dir)) - 1
        if room < _SOCKET_NAME_ROOM:  # a deep test folder: tmux's sockets go somewhere short
            self.tmux_tmpdir = short_folder()
            self._own_tmpdir = True
        self.tmux_tmpdir.mkdir(exist_ok=True)
        self._closed = False

    @property
    def user(self) -> str:
        return FAKE_USER

    @property
    def unit_dir(self) -> Path:
        return self.root / "config" / "systemd" / "user"

    def environ(self) -> dict[str, str]:
        return {
            "PATH": f"{self.bin_dir}{os.pathsep}{os.environ.get('PATH', os.defpath)}",
            "XDG_CONFIG_HOME": str(self.root / "config"),
            "XDG_RUNTIME_DIR": str(self.root / "run"),
            "HOME": str(self.root / "home"),  # so that a fleet cannot touch the real home
            "USER": FAKE_USER,
            "LOGNAME": FAKE_USER,
            "TMUX": "",  # not inside anyone's tmux, whatever the test runner is in
            "TMUX_TMPDIR": str(self.tmux_tmpdir),
            TMUX_ENV: self.tmux,
            STATE_ENV: str(self.root),
        }

    def state(self) -> SystemState:
        facts = [line.partition(" ") for line in self._system("facts").splitlines()]

        def mosaic(names: Iterable[str]) -> frozenset[str]:
            return frozenset(n for n in names if n.startswith(_MOSAIC_PREFIX))

        return SystemState(
            unit_files=mosaic(p.name for p in self.unit_dir.iterdir() if p.is_file()),
            enabled=mosaic(unit for fact, _, unit in facts if fact == "enabled"),
            active=mosaic(unit for fact, _, unit in facts if fact == "active"),
            linger=any(fact == "linger" for fact, _, _ in facts),
        )

    def boot(self) -> None:
        """A reboot: every process ends (the test's tmux servers too), and the user manager
        starts again only if the user lingers, with the enabled units that still have a
        unit file (as on a real systemd; the fake runs no ExecStart)."""
        self._end_tmux_servers()
        self._system("boot")

    def close(self) -> None:
        """End the test's tmux servers; the files stay, for a post-mortem."""
        if self._closed:
            return
        self._end_tmux_servers()
        if self._own_tmpdir:
            shutil.rmtree(self.tmux_tmpdir, ignore_errors=True)
        self._closed = True  # only now: an interrupted close is done again by the session

    # --- tmux, asked of the real tmux, never through the recording wrapper ---------------

    def tmux_sessions(
        self, socket_name: str = "default", socket_path: str | None = None
    ) -> list[TmuxSession]:
        """The sessions of one of the test's tmux servers (``-L socket_name``, or
        ``-S socket_path``); none when that server does not run."""
        listed = self._ask_tmux(
            self._socket(socket_name, socket_path), "list-sessions", "-F", _SESSION_FIELDS
        )
        return [TmuxSession(*line.split("\t", 2)) for line in (listed or "").splitlines()]

    def pane_text(
        self, session: str, socket_name: str = "default", socket_path: str | None = None
    ) -> str | None:
        """What the active pane of ``session`` (by its exact name) shows now; None when
        there is no such session."""
        return self._ask_tmux(
            self._socket(socket_name, socket_path), "capture-pane", "-p", "-t", f"={session}:"
        )

    def tmux_servers(self) -> list[Path]:
        """The sockets of the tmux servers the test's fleet may have started: those in its
        ``TMUX_TMPDIR``, and every absolute ``-S`` path a recorded call named."""
        sockets = set(self._socket_dir.glob("*"))
        for call in self.calls("tmux"):
            sockets.add(_socket_of(call.argv[1:], self._socket_dir))
        return sorted(s for s in sockets if s.is_socket())

    @property
    def _socket_dir(self) -> Path:
        return self.tmux_tmpdir / f"tmux-{os.getuid()}"

    def _socket(self, socket_name: str, socket_path: str | None) -> Path:
        return Path(socket_path) if socket_path is not None else self._socket_dir / socket_name

    def _ask_tmux(self, socket: Path, *args: str) -> str | None:
        """The real tmux's answer from the server at ``socket``; None when no server runs
        there or it has no such target."""
        env = {**os.environ, "TMUX": ""}
        done = subprocess.run(
            [self.tmux, "-S", str(socket), *args],
            env=env,
            capture_output=True,
            text=True,
            errors="surrogateescape",
            check=False,
            timeout=30,
        )
        if done.returncode == 0:
            return done.stdout
        # A server ending as it is asked (its last session closed) says it has no current
        # target, or that it exited unexpectedly.
        gone = (
            "no server running",
            "error connecting",
            "can't find",
            "no current target",
            "server exited unexpectedly",
        )
        if any(s in done.stderr for s in gone):
            return None
        raise HarnessError(f"tmux {' '.join(args)} on {socket} failed: {done.stderr.strip()}")

    def _end_tmux_servers(self) -> None:
        """Kill every tmux server of the test, then whatever is left in its panes' process
        groups (a program that ignores the hangup, and its children), as a reboot would."""
        servers: set[int] = set()
        panes: set[int] = set()
        for socket in self.tmux_servers():
            listed = self._ask_tmux(socket, "list-panes", "-a", "-F", "#{pid} #{pane_pid}")
            if listed is None:
                continue  # a socket left behind by a server that is gone
            for line in listed.splitlines():
                server_pid, pane_pid = line.split()
                servers.add(int(server_pid))
                panes.add(int(pane_pid))
            self._ask_tmux(socket, "kill-server")
        wait_for(
            lambda: not any(map(_running, servers)),
            what="the test's tmux servers ending",
            timeout=STOP_TIMEOUT,
        )
        for pane in panes:  # a pane's program leads its own process group
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pane, signal.SIGKILL)
        wait_for(
            lambda: not _groups_running(panes),
            what="the programs of the test's tmux panes ending",
            timeout=STOP_TIMEOUT,
        )

    def _system(self, verb: str) -> str:
        """``bin/_system.sh VERB``: the fake system's own answer, not a recorded call."""
        done = subprocess.run(
            ["sh", str(self.bin_dir / "_system.sh"), verb],
            env={**os.environ, **self.environ()},
            capture_output=True,
            text=True,
            check=False,
            timeout=30,
        )
        if done.returncode != 0:
            raise HarnessError(f"the fake system's {verb} failed: {done.stderr.strip()}")
        return done.stdout


def _socket_of(args: Iterable[str], socket_dir: Path) -> Path:
    """The server socket a tmux call with these arguments talks to (as tmux picks it: -S,
    else -L, else "default"); a relative -S path, whose folder is unknown here, counts as
    none."""
    name, path = "default", None
    words = iter(args)
    for word in words:
        option, value = word[:2], word[2:]
        if option in ("-L", "-S", "-c", "-f", "-T"):
            value = value or next(words, "")
            if option == "-L":
                name = value
            elif option == "-S":
                path = value
        elif not word.startswith("-") or word == "--":
            break
    if path is None:
        return socket_dir / name
    return Path(path) if os.path.isabs(path) else socket_dir  # a folder, never a socket


def _running(pid: int) -> bool:
    """Whether process ``pid`` still runs (a zombie does not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z"
    except OSError:
        if Path("/proc/self/stat").exists():
            return False  # /proc knows no such process
    try:  # no /proc here: ask the kernel
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _groups_running(groups: set[int]) -> bool:
    """Whether a process of one of these process groups still runs (a zombie does not): a
    SIGKILL-ed group's members end one by one, the leader not last."""
    if not Path("/proc/self/stat").exists():
        return any(map(_running, groups))
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue  # gone meanwhile
        if fields[0] != "Z" and int(fields[2]) in groups:
            return True
    return False
