"""What every backend offers the suites: a fresh system per test, asked what happened.

A backend is where the fleet under test reaches "the system": the ``systemctl``, ``loginctl``
and ``tmux`` it finds first on ``PATH``. The suites never import the fleet; they run it with
:meth:`Backend.environ` and then ask the backend what it saw (:meth:`Backend.calls`) and what
holds now (:meth:`Backend.state`).

Every backend's stand-ins share two files in the per-test root (written by the POSIX sh
prelude in ``harness/systems/bin/``, read here):

- ``calls.jsonl``: one ``{"argv": [...], "exit": N}`` per call, in call order;
- ``inject/VERB@UNIT``: a failure to inject; its first line is the exit code, the rest is
  written to stderr. ``UNIT`` may be ``*`` for any unit of that verb.
"""

from __future__ import annotations

import abc
import json
import os
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, TypeVar

from ...contract import AGENT_UNIT_PREFIX, HOLDER_UNIT, agent_of, agent_unit

__all__ = [
    "AGENT_UNIT_PREFIX",
    "HOLDER_UNIT",
    "STATE_ENV",
    "Backend",
    "BackendSession",
    "BackendUnavailable",
    "Call",
    "SystemState",
    "agent_of",
    "agent_unit",
]

# The variable through which the stand-ins find their per-test root.
STATE_ENV = "MOSAIC_CONFORMANCE_STATE"


def _undo_byte_escapes(arg: str) -> str:
    """The prelude logs each non-ASCII byte as one code point; get the argument back."""
    return arg.encode("latin-1").decode("utf-8", "surrogateescape")


class BackendUnavailable(Exception):
    """The backend cannot run on this machine; the message says why (the suites skip)."""


@dataclass(frozen=True, slots=True)
class Call:
    argv: tuple[str, ...]  # argv[0] is the command's name: systemctl, loginctl or tmux
    exit_code: int

    @property
    def command(self) -> str:
        return self.argv[0]

    def __str__(self) -> str:
        return " ".join(self.argv) + (f"  -> exit {self.exit_code}" if self.exit_code else "")


@dataclass(frozen=True, slots=True)
class SystemState:
    """What the user's systemd holds, as far as the suites care (``mosaic-*`` units only)."""

    unit_files: frozenset[str]  # unit files installed in the user unit folder
    enabled: frozenset[str]  # units that start at boot
    active: frozenset[str]  # units running now
    linger: bool  # linger is on for the backend's user

    @property
    def enabled_agents(self) -> frozenset[str]:
        return frozenset(a for a in map(agent_of, self.enabled) if a)

    @property
    def active_agents(self) -> frozenset[str]:
        return frozenset(a for a in map(agent_of, self.active) if a)


class Backend(abc.ABC):
    """One fresh system for one test, rooted in a folder the backend owns."""

    name: ClassVar[str]

    def __init__(self, root: Path) -> None:
        self.root = root
        (root / "inject").mkdir(parents=True, exist_ok=True)

    @property
    @abc.abstractmethod
    def user(self) -> str:
        """The login whose user manager the fleet drives (the target of linger)."""

    @property
    @abc.abstractmethod
    def unit_dir(self) -> Path:
        """The user unit folder as the fleet sees it (``$XDG_CONFIG_HOME/systemd/user``)."""

    @abc.abstractmethod
    def environ(self) -> dict[str, str]:
        """Variables to run the fleet with, on top of the caller's: at least ``PATH`` (the
        stand-ins first), ``XDG_CONFIG_HOME``, ``USER`` and :data:`STATE_ENV`."""

    @abc.abstractmethod
    def state(self) -> SystemState:
        """What holds now, asked of the system itself (not of the recorded calls)."""

    @abc.abstractmethod
    def boot(self) -> None:
        """Restart the machine: afterwards exactly the enabled units are active."""

    def close(self) -> None:  # noqa: B027 - most systems leave nothing running
        """End whatever this test's system still runs (called once the test is over)."""

    def systemctl(self, *args: str) -> subprocess.CompletedProcess[str]:
        """``systemctl --user ARGS`` on this system, as the fleet would run it. The suites
        arrange a test's starting state with it, so that each requirement is judged on its
        own and not through another one (the call is recorded like any other)."""
        env = {**os.environ, **self.environ()}
        return subprocess.run(
            ["systemctl", "--user", *args], env=env, capture_output=True, text=True, check=False
        )

    def calls(self, command: str | None = None) -> list[Call]:
        """Every call the stand-ins saw, in order; only those of ``command`` if given."""
        log = self.root / "calls.jsonl"
        if not log.exists():
            return []
        calls = []
        for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
            record = json.loads(line)
            argv = tuple(_undo_byte_escapes(a) for a in record["argv"])
            calls.append(Call(argv, int(record["exit"])))
        return [c for c in calls if command is None or c.command == command]

    def inject_failure(
        self, verb: str, unit: str = "*", exit_code: int = 1, stderr: str = ""
    ) -> None:
        """Make the next and every later ``VERB`` on ``unit`` fail with ``exit_code``."""
        stderr = stderr or f"Failed to {verb} {unit}: injected failure"
        (self.root / "inject" / f"{verb}@{unit}").write_text(f"{exit_code}\n{stderr}\n")

    def clear_failures(self) -> None:
        shutil.rmtree(self.root / "inject")
        (self.root / "inject").mkdir()


_Component = TypeVar("_Component", bound="Component")


class Component:
    """Something the harness starts and must end (a backend's session, a homeserver):
    ``with component:`` starts it and closes it at the end, also when starting fails halfway,
    since a half-started one may already hold a container or a process."""

    def start(self) -> None:
        """Bring it up."""

    def close(self) -> None:
        """End whatever :meth:`start` made, also after a failure."""

    def __enter__(self: _Component) -> _Component:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class BackendSession(Component, abc.ABC):
    """What lives for the whole pytest session (a container, a copy of the stand-ins) and
    hands out a fresh :class:`Backend` per test."""

    name: ClassVar[str]

    def __init__(self, workdir: Path, options: Mapping[str, object] | None = None) -> None:
        self.workdir = workdir  # session-wide scratch space, removed by pytest
        self.options = dict(options or {})  # the backend's own settings, from its options

    def start(self) -> None:
        """Bring the system up; raise :class:`BackendUnavailable` when it cannot run here."""

    def describe(self) -> dict[str, str]:
        """What this system is, for the report (an engine, an image, a cgroup mode)."""
        return {}

    @abc.abstractmethod
    def open(self, root: Path) -> Backend:
        """A fresh system for one test, its files under ``root``."""

    def close(self) -> None:
        """Tear down whatever :meth:`start` made, also after a failure."""
