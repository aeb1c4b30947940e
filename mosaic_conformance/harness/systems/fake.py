"""The fake backend: recording stand-ins for ``systemctl``, ``loginctl`` and ``tmux``.

The stand-ins are POSIX sh scripts (``harness/systems/bin/``) put first on the fleet's
``PATH``. They answer like systemd 252 and tmux 3.3a where a fleet could tell the difference,
record every call in ``calls.jsonl`` and keep what they did as one file per fact under
``ROOT/state``, which this module reads back:

- ``state/enabled/UNIT``, ``state/active/UNIT``: the user manager's units;
- ``state/linger/USER``: linger;
- ``state/tmux/SERVER/sessions/NAME`` and ``.../keys/NAME``: tmux sessions, and the keys sent
  to sessions of that name (one JSON line per ``send-keys``).

Nothing runs: a started unit or a new tmux session is a file, so a test is fast and can never
touch the real user manager, the real tmux server or the real home folder.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from .base import (
    STATE_ENV,
    Backend,
    BackendSession,
    BackendUnavailable,
    SystemState,
    _undo_byte_escapes,
)

# The scripts shipped next to this module, copied into the session's own folder.
SCRIPTS_DIR = Path(__file__).with_name("bin")
STAND_INS = ("systemctl", "loginctl", "tmux")

# The login the fleet runs as on the fake (never the real user's).
FAKE_USER = "mosaic-test"

_MOSAIC_PREFIX = "mosaic-"
_DEFAULT_SOCKET = "default"


@dataclass(frozen=True, slots=True)
class TmuxSession:
    """A session as ``tmux new-session`` made it."""

    name: str
    window: str  # the name of its one window
    command: tuple[str, ...]  # the command given to new-session; () for the default shell
    cwd: str  # its start folder (``-c``, else the caller's)


@dataclass(frozen=True, slots=True)
class SentKeys:
    """One ``tmux send-keys`` call, as the session received it."""

    keys: tuple[str, ...]  # the key arguments, in order ("Enter" is a key name unless literal)
    literal: bool  # sent with ``-l``


class FakeSession(BackendSession):
    """Copies the stand-ins once per pytest session; every test gets a fresh root."""

    name = "fake"

    def __init__(self, workdir: Path, options: Mapping[str, object] | None = None) -> None:
        super().__init__(workdir, options)
        self.bin_dir = workdir / "bin"

    def start(self) -> None:
        if shutil.which("sh") is None:
            raise BackendUnavailable("the fake backend's stand-ins need a POSIX sh on PATH")
        self.bin_dir.mkdir(parents=True, exist_ok=True)
        for script in SCRIPTS_DIR.iterdir():
            if script.is_file():
                target = self.bin_dir / script.name
                shutil.copyfile(script, target)
                target.chmod(0o755)  # a wheel may have lost the mode bits

    def open(self, root: Path) -> FakeBackend:
        if not (self.bin_dir / STAND_INS[0]).exists():
            raise RuntimeError("FakeSession.open() was called before start()")
        return FakeBackend(root, self.bin_dir)


class FakeBackend(Backend):
    """One fresh fake system, all of it under ``root``."""

    name: ClassVar[str] = "fake"

    def __init__(self, root: Path, bin_dir: Path) -> None:
        super().__init__(root)
        self.bin_dir = bin_dir
        self._state = root / "state"
        for folder in (
            self.unit_dir,
            root / "home",
            self._state / "enabled",
            self._state / "active",
            self._state / "linger",
            self._state / "tmux",
        ):
            folder.mkdir(parents=True, exist_ok=True)
        (root / "run").mkdir(mode=0o700, exist_ok=True)

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
            STATE_ENV: str(self.root),
        }

    def state(self) -> SystemState:
        def mosaic(names: Iterator[str]) -> frozenset[str]:
            return frozenset(n for n in names if n.startswith(_MOSAIC_PREFIX))

        return SystemState(
            unit_files=mosaic(p.name for p in self.unit_dir.iterdir() if p.is_file()),
            enabled=mosaic(_names(self._state / "enabled")),
            active=mosaic(_names(self._state / "active")),
            linger=(self._state / "linger" / FAKE_USER).exists(),
        )

    def boot(self) -> None:
        """A reboot: nobody logs in, so the user manager starts only if the user lingers,
        and then the enabled units that still have a unit file start (as on a real
        systemd). Nothing else runs, so every tmux server is gone (the fake runs no
        ExecStart that would make one again). The keys sent before stay readable."""
        for unit in _names(self._state / "active"):
            (self._state / "active" / unit).unlink()
        lingering = (self._state / "linger" / self.user).exists()
        for unit in _names(self._state / "enabled") if lingering else ():
            if self._loadable(unit):
                (self._state / "active" / unit).touch()
        for server in (self._state / "tmux").iterdir():
            for name in _names(server / "sessions"):
                (server / "sessions" / name).unlink()

    def tmux_sessions(
        self, socket_name: str = _DEFAULT_SOCKET, socket_path: str | None = None
    ) -> list[TmuxSession]:
        """The sessions of one tmux server (``-L socket_name``, or ``-S socket_path``)."""
        sessions = self._tmux_server(socket_name, socket_path) / "sessions"
        return [_read_session(sessions / f) for f in sorted(_names(sessions))]

    def sent_keys(
        self, session: str, socket_name: str = _DEFAULT_SOCKET, socket_path: str | None = None
    ) -> list[SentKeys]:
        """Every ``send-keys`` to a session named ``session``, in order (also after a kill)."""
        log = self._tmux_server(socket_name, socket_path) / "keys" / _encode(session)
        if not log.exists():
            return []
        sent = []
        for line in log.read_text(encoding="utf-8").splitlines():
            record = json.loads(line)
            keys = tuple(_undo_byte_escapes(k) for k in record["keys"])
            sent.append(SentKeys(keys, bool(record["literal"])))
        return sent

    def _tmux_server(self, socket_name: str, socket_path: str | None) -> Path:
        key = "S" + _encode(socket_path) if socket_path is not None else "L" + socket_name
        return self._state / "tmux" / key

    def _loadable(self, unit: str) -> bool:
        """Whether the user manager would find a unit file for ``unit`` (an instance falls
        back to its template), as the stand-in decides it."""
        if (self.unit_dir / unit).is_file():
            return True
        prefix, at, rest = unit.partition("@")
        if not at or "." not in rest:
            return False
        template = f"{prefix}@.{rest.rsplit('.', 1)[1]}"
        return (self.unit_dir / template).is_file()


def _names(folder: Path) -> Iterator[str]:
    """The names of the files in ``folder`` (none if it does not exist)."""
    if folder.is_dir():
        yield from (p.name for p in folder.iterdir())


def _encode(name: str) -> str:
    """A tmux name as the stand-in stores it: one safe file name."""
    return name.replace("%", "%25").replace("/", "%2F")


def _decode(filename: str) -> str:
    return filename.replace("%2F", "/").replace("%25", "%")


def _read_session(path: Path) -> TmuxSession:
    fields: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8", errors="surrogateescape").splitlines():
        key, _, value = line.partition("=")
        fields.setdefault(key, value)
        if key == "argv":  # the last field written that this side reads
            break
    command = tuple(_undo_byte_escapes(a) for a in json.loads(fields.get("argv", "[]")))
    return TmuxSession(_decode(path.name), fields.get("window", ""), command, fields["cwd"])
