"""Connectors a scenario makes, each with a state folder of its own, and their restarts.

A restart is what CONN.13 judges: the connector stops (its process ends), the operator goes on
posting, and a new one starts with the same state folder. Two ways to stop:

- **closed**: ``close()``; a program gets the end of its standard input and exits.
- **crashed**: once its state folder has settled, as a crash right after the connector's last
  write into it would leave it. A program is killed (SIGKILL). A connector in this process
  cannot be killed; instead an audit hook (``sys.addaudithook``, the ``open`` event) sees each
  file it opens for writing in its state folder and, right then, copies the folder as a crash
  at that instant would leave it: a file opened with truncation is empty in the copy. The new
  connector starts on that copy, so a cursor written in place (truncated, then written) is
  found torn, every time, not by the luck of a kill's timing.

The hook is added once per process, the first time a folder is watched (an audit hook cannot
be removed); it does nothing for files outside the watched folders.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...connectors.jsonlines import CommandConnector
from ...connectors.state import STATE_ENV
from ...connectors.types import ConnectorConfig, OrchestratorConnector
from ...wait import Pending, wait_for
from .subject import unwrapped

SETTLE_QUIET_S = 0.5  # a state folder unchanged this long has settled
SETTLE_MAX_S = 5.0  # ... or at most this long after it was asked to
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR


class _Watched:
    """One watched state folder: its writes, and the copy a crash at the last one leaves."""

    def __init__(self, folder: Path, copies: Path) -> None:
        self.folder = folder
        self._copies = copies
        self._numbers = itertools.count()
        self.crash_copy: Path | None = None
        self.writes = 0

    def opened_for_writing(self, path: str, truncating: bool) -> None:
        copy = self._copies / f"crash-{next(self._numbers)}"
        if self.folder.exists():
            shutil.copytree(self.folder, copy, symlinks=True)
        else:
            copy.mkdir(parents=True)
        target = copy / os.path.relpath(path, self.folder)
        if truncating and target.is_file():
            target.write_bytes(b"")  # a crash right after the open: truncated, nothing written
        previous, self.crash_copy = self.crash_copy, copy
        self.writes += 1
        if previous is not None:
            shutil.rmtree(previous, ignore_errors=True)


class _WriteWatch:
    """The process's audit hook, and the folders it watches."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._folders: dict[str, _Watched] = {}
        self._inside = threading.local()  # the hook's own file work is not watched
        self._hooked = False

    def watch(self, folder: Path, copies: Path) -> _Watched:
        watched = _Watched(folder, copies)
        with self._lock:
            self._folders[str(folder)] = watched
            if not self._hooked:
                sys.addaudithook(self._hook)
                self._hooked = True
        return watched

    def forget(self, folder: Path) -> None:
        with self._lock:
            self._folders.pop(str(folder), None)

    def _hook(self, event: str, args: tuple[Any, ...]) -> None:
        if event != "open" or not self._folders or getattr(self._inside, "busy", False):
            return
        path, _mode, flags = args
        if not isinstance(path, str | os.PathLike) or not isinstance(flags, int):
            return
        if not flags & WRITE_FLAGS:
            return
        self._inside.busy = True
        try:
            full = os.path.abspath(os.fsdecode(path))
            with self._lock:
                watched = next(
                    (w for f, w in self._folders.items() if full.startswith(f + os.sep)), None
                )
            if watched is not None:
                watched.opened_for_writing(full, truncating=bool(flags & os.O_TRUNC))
        except Exception:
            pass
        finally:
            self._inside.busy = False


WRITE_WATCH = _WriteWatch()


def _signature(folder: Path) -> tuple[tuple[str, int, int], ...]:
    """What changes when anything in ``folder`` is written: names, sizes, times."""
    found = []
    for path in sorted(folder.rglob("*")) if folder.exists() else []:
        with contextlib.suppress(OSError):
            stat = path.stat()
            found.append((str(path), stat.st_size, stat.st_mtime_ns))
    return tuple(found)


def settle(folder: Path) -> None:
    """Wait until nothing in ``folder`` has changed for a while (at most ``SETTLE_MAX_S``): a
    connector that just delivered may be writing its cursor."""
    seen, since = _signature(folder), time.monotonic()

    def quiet() -> bool | Pending:
        nonlocal seen, since
        now = _signature(folder)
        if now != seen:
            seen, since = now, time.monotonic()
        return time.monotonic() - since >= SETTLE_QUIET_S or Pending(f"{len(now)} files")

    with contextlib.suppress(TimeoutError):  # a connector that never stops writing
        wait_for(quiet, what=f"{folder} to settle", timeout=SETTLE_MAX_S)


@dataclass
class _Made:
    config: ConnectorConfig
    env: Mapping[str, str]
    folder: Path
    watched: _Watched


@dataclass
class Stopped:
    """A stopped connector; :meth:`start` makes the next one on the state it left."""

    crashed: bool
    how: str  # what was done, for the report: "closed", "killed with SIGKILL", ...
    _start: Any = field(repr=False)

    def start(self) -> OrchestratorConnector:
        connector: OrchestratorConnector = self._start()
        return connector


class MadeConnectors:
    """The connectors of one scenario: made through the target's maker with a state folder
    each, stopped and started again on request, all closed at the end."""

    def __init__(self, make: Any, workdir: Path) -> None:
        self._make = make  # a target.ConnectorMaker
        self._workdir = workdir
        self._numbers = itertools.count()
        self._made: dict[int, _Made] = {}
        self._live: list[OrchestratorConnector] = []

    def make(self, config: ConnectorConfig, env: Mapping[str, str]) -> OrchestratorConnector:
        number = next(self._numbers)
        folder = self._workdir / f"state-{number}"
        folder.mkdir(parents=True)
        return self._start(config, env, folder)

    def _start(
        self, config: ConnectorConfig, env: Mapping[str, str], folder: Path
    ) -> OrchestratorConnector:
        watched = WRITE_WATCH.watch(folder, self._workdir / f"{folder.name}-crash-copies")
        connector: OrchestratorConnector = self._make(config, {**env, STATE_ENV: str(folder)})
        self._live.append(connector)
        self._made[id(connector)] = _Made(config, env, folder, watched)
        return connector

    def _of(self, connector: OrchestratorConnector) -> _Made:
        made = self._made.get(id(connector))
        if made is None:
            raise ValueError(f"{connector!r} was not made by this scenario")
        return made

    def wait_idle(self, connector: OrchestratorConnector) -> None:
        settle(self._of(connector).folder)

    def stop(self, connector: OrchestratorConnector, *, crash: bool) -> Stopped:
        made = self._of(connector)
        settle(made.folder)
        folder, how = made.folder, "closed"
        inner = unwrapped(connector)
        if crash and isinstance(inner, CommandConnector):
            inner.kill()
            how = "killed with SIGKILL"
        elif crash:
            # As a crash right after its last write began would leave it; the connector itself
            # is closed, its later writes go to the folder no one uses any more.
            folder = self._workdir / f"state-{next(self._numbers)}-after-a-crash"
            writes = made.watched.writes
            crash_copy = made.watched.crash_copy
            shutil.copytree(crash_copy or made.folder, folder, symlinks=True)
            how = (
                f"crashed at its write {writes} to the state folder"
                if writes
                else ("crashed before any write to the state folder")
            )
        WRITE_WATCH.forget(made.folder)
        self._close(connector)
        return Stopped(crash, how, lambda: self._start(made.config, made.env, folder))

    def _close(self, connector: OrchestratorConnector) -> None:
        if connector in self._live:
            self._live.remove(connector)
            connector.close()

    def close(self) -> None:
        """Close every connector still running, even if one close fails."""
        with contextlib.ExitStack() as stack:
            for connector in self._live:
                stack.callback(connector.close)
            self._live = []
        for made in self._made.values():
            WRITE_WATCH.forget(made.folder)
