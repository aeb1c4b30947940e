"""Driving a fleet under test as a black box, and looking at what it left behind.

The suites never import the fleet: they run its command with ``MOSAIC_HOME`` and the
backend's environment, then read its roster (validated with ``jsonschema``, independently of
the reference's own validator) and snapshot its files.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shlex
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..contract import HOME_ENV, ROSTER_PATH
from ..secrets import redact
from .outcomes import fail_subject
from .systems.base import Backend, Call

DEFAULT_COMMAND_TIMEOUT_S = 120.0
_SHOWN_OUTPUT = 1500  # characters of stdout/stderr kept in a failure message
_MAX_ROSTER_READ = 4 << 20
_SAFE_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True, slots=True)
class Result:
    """One run of the fleet command."""

    args: tuple[str, ...]  # what followed the fleet command, e.g. ("add", "x", ...)
    exit_code: int
    stdout: str
    stderr: str
    seconds: float
    calls: tuple[Call, ...] = ()  # what reached the system while it ran
    started: float = 0.0  # time.perf_counter() when it began

    def ran(self, command: str, verb: str, unit: str) -> list[Call]:
        """Its ``COMMAND [--user] VERB ... UNIT`` calls (options anywhere, several units)."""
        found = []
        for call in self.calls:
            words = [a for a in call.argv[1:] if not a.startswith("-")]
            if call.command == command and words[:1] == [verb] and unit in words[1:]:
                found.append(call)
        return found

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def __str__(self) -> str:
        """The shortest reproduction: the command, its exit status and its output."""
        parts = [f"$ fleet {shlex.join(self.args)}  -> exit {self.exit_code}"]
        for name, text in (("stdout", self.stdout), ("stderr", self.stderr)):
            if text.strip():
                shown = text if len(text) <= _SHOWN_OUTPUT else "..." + text[-_SHOWN_OUTPUT:]
                parts.append(f"  {name}: " + shown.rstrip().replace("\n", "\n          "))
        parts.append(
            "  its system calls:" + "".join(f"\n    {c}" for c in self.calls)
            if self.calls
            else "  its system calls: none"
        )
        return redact("\n".join(parts))


@dataclass
class FleetUnderTest:
    """The fleet command bound to one test's ``MOSAIC_HOME`` and backend."""

    command: tuple[str, ...]
    home: Path
    backend: Backend
    profiles_env: str | None = None  # the variable naming the fleet's profile folder
    timeout: float = DEFAULT_COMMAND_TIMEOUT_S
    history: list[Result] = field(default_factory=list)

    @property
    def roster_path(self) -> Path:
        return self.home / ROSTER_PATH

    @property
    def profiles_dir(self) -> Path:
        return self.home.parent / "profiles"

    def environ(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        # Inherited MOSAIC_* settings of whoever runs the suite must not leak into the fleet.
        env = {k: v for k, v in os.environ.items() if not k.startswith("MOSAIC_")}
        env.update(self.backend.environ())
        env[HOME_ENV] = str(self.home)
        if self.profiles_env:
            env[self.profiles_env] = str(self.profiles_dir)
        env.update(extra or {})
        return env

    def run(self, *args: str, env: Mapping[str, str] | None = None) -> Result:
        self.home.mkdir(parents=True, exist_ok=True)
        self.profiles_dir.mkdir(parents=True, exist_ok=True)
        calls_before = len(self.backend.calls())
        started = time.perf_counter()
        try:
            proc = subprocess.run(
                [*self.command, *args],
                env=self.environ(env),
                capture_output=True,
                timeout=self.timeout,
                check=False,
                cwd=self.home.parent,
            )
            code, out, err = proc.returncode, proc.stdout, proc.stderr
        except subprocess.TimeoutExpired as exc:
            code, out = -9, exc.stdout or b""
            err = (exc.stderr or b"") + f"\n[timed out after {self.timeout:.0f} s]".encode()
        seconds = time.perf_counter() - started
        calls = tuple(self.backend.calls()[calls_before:])
        result = Result(tuple(args), code, _text(out), _text(err), seconds, calls, started)
        self.history.append(result)
        return result

    def spawn(self, *args: str) -> subprocess.Popen[bytes]:
        """Start the fleet command and return at once; it runs in a process group of its own,
        so that a kill (:func:`kill_group`) reaches all of it. Its output is discarded."""
        self.home.mkdir(parents=True, exist_ok=True)
        return subprocess.Popen(
            [*self.command, *args],
            env=self.environ(),
            cwd=self.home.parent,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )

    def ok(self, *args: str) -> Result:
        """Run a step the test relies on; a failure here is the fleet's failure, in whatever
        phase (a fixture's step too), said plainly."""
        __tracebackhide__ = True
        result = self.run(*args)
        if result.exit_code != 0:
            fail_subject(f"a setup step of this test failed:\n{result}")
        return result

    # --- what the fleet left behind ---------------------------------------------------

    def roster(self) -> dict[str, Any] | None:
        """The roster as written, parsed (None when there is none); not validated. One that
        cannot be read comes back as ``{"(unreadable)": why}``, which fails the schema."""
        if not self.roster_path.exists():
            return None
        raw = self.roster_path.read_bytes()
        if len(raw) > _MAX_ROSTER_READ:  # the pure-Python loader would take minutes
            return {"(unreadable)": f"{len(raw)} bytes"}
        try:
            data = yaml.load(raw, Loader=_SAFE_LOADER)
        except Exception as exc:  # PyYAML raises more than YAMLError on hostile input
            return {"(unreadable)": f"{type(exc).__name__}: {exc}"}
        return data if isinstance(data, dict) else {"(not a mapping)": data}

    def roster_names(self) -> list[str]:
        data = self.roster() or {}
        agents = data.get("agents") or []
        return [str(a.get("name")) for a in agents if isinstance(a, dict)]

    def snapshot(self) -> TreeSnapshot:
        """Every file the fleet may have touched: its home and the user unit folder."""
        return TreeSnapshot.of(self.home, self.backend.unit_dir)

    def plant_profile(self, name: str, roster: Mapping[str, Any]) -> Path:
        self.profiles_dir.mkdir(parents=True, exist_ok=True)
        path = self.profiles_dir / f"{name}.yaml"
        path.write_text(yaml.safe_dump(dict(roster), sort_keys=False))
        return path

    def plant_roster(self, text: str | bytes) -> None:
        """Put a roster in place by hand (as a user editing it would)."""
        self.roster_path.parent.mkdir(parents=True, exist_ok=True)
        data = text.encode() if isinstance(text, str) else text
        self.roster_path.write_bytes(data)


# --- a fleet command caught in the act ------------------------------------------------


def files_being_written(pid: int, folder: Path) -> list[str]:
    """The files directly in ``folder`` that process ``pid`` or one of its descendants holds
    open for writing now (Linux ``/proc``); lock files (``*.lock``) left out. A kill while
    this is not empty lands in the middle of a write."""
    found = []
    for process in _process_tree(pid):
        try:
            fds = os.listdir(f"/proc/{process}/fd")
        except OSError:  # gone, or not ours to look at
            continue
        for fd in fds:
            try:
                target = os.readlink(f"/proc/{process}/fd/{fd}")
                if os.path.dirname(target) != str(folder) or target.endswith(".lock"):
                    continue
                with open(f"/proc/{process}/fdinfo/{fd}", encoding="ascii") as info:
                    flags = int(info.read().split("flags:", 1)[1].split()[0], 8)
            except (OSError, IndexError, ValueError):  # closed meanwhile
                continue
            if (flags & os.O_ACCMODE) in (os.O_WRONLY, os.O_RDWR):
                found.append(target)
    return found


def _process_tree(pid: int) -> list[int]:
    tree, stack = [], [pid]
    while stack:
        process = stack.pop()
        tree.append(process)
        try:
            tasks = os.listdir(f"/proc/{process}/task")
        except OSError:
            continue
        for task in tasks:
            try:
                with open(f"/proc/{process}/task/{task}/children", encoding="ascii") as f:
                    stack.extend(int(child) for child in f.read().split())
            except OSError:
                continue
    return tree


def kill_group(proc: subprocess.Popen[bytes], folder: Path) -> tuple[int, bool]:
    """SIGKILL a :meth:`FleetUnderTest.spawn`-ed command, all of it: its exit status, and
    whether the kill landed while it was writing in ``folder``. It is stopped first, so that
    what it held open is seen at the very moment of the kill."""
    try:
        os.killpg(proc.pid, signal.SIGSTOP)
    except ProcessLookupError:
        return proc.wait(), False
    mid_write = bool(files_being_written(proc.pid, folder))
    os.killpg(proc.pid, signal.SIGKILL)
    return proc.wait(), mid_write


# How long a stepped command runs between two looks. Without it, a command stopped again
# the moment it was let go hardly runs at all: on a busy machine one add took minutes.
STEP_S = 0.0003


def kill_when_writing(proc: subprocess.Popen[bytes], folder: Path) -> tuple[int, bool]:
    """Step a :meth:`FleetUnderTest.spawn`-ed command (stop it, look, let it run a step) and
    SIGKILL it the first time it is seen writing in ``folder``: its exit status, and whether it
    was killed so (else it ended by itself, never seen writing)."""
    while proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGSTOP)
        except ProcessLookupError:
            break
        if files_being_written(proc.pid, folder):
            os.killpg(proc.pid, signal.SIGKILL)
            return proc.wait(), True
        os.killpg(proc.pid, signal.SIGCONT)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=STEP_S)
    return proc.wait(), False


def _text(data: bytes | str) -> str:
    return data if isinstance(data, str) else data.decode("utf-8", "replace")


@dataclass(frozen=True, slots=True)
class TreeSnapshot:
    """Path -> content hash of the files under some folders."""

    files: Mapping[str, str]

    @classmethod
    def of(cls, *roots: Path) -> TreeSnapshot:
        files = {}
        for root in roots:
            if not root.exists():
                continue
            for path in sorted(root.rglob("*")):
                if path.is_file() and not _is_lock(path):
                    files[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
        return cls(files)

    def changes(self, later: TreeSnapshot) -> list[str]:
        """What differs, one line each: ``+ path``, ``- path``, ``~ path``."""
        before, after = self.files, later.files
        out = [f"+ {p}" for p in after if p not in before]
        out += [f"- {p}" for p in before if p not in after]
        out += [f"~ {p}" for p in before if p in after and before[p] != after[p]]
        return sorted(out)

    def added(self, later: TreeSnapshot) -> list[str]:
        return sorted(p for p in later.files if p not in self.files)


def _is_lock(path: Path) -> bool:
    """An empty lock file appearing is not a change: a fleet may lock before it refuses."""
    return path.name.endswith(".lock") and path.stat().st_size == 0


# --- the roster schema, as the suites judge it -----------------------------------------


def roster_schema() -> dict[str, Any]:
    path = Path(__file__).parent.parent / "fleet" / "roster.schema.json"
    loaded: dict[str, Any] = json.loads(path.read_text("utf-8"))
    return loaded


def schema_problems(roster: Any) -> list[str]:
    """Every way ``roster`` breaks the roster schema, each naming its field."""
    import jsonschema

    validator = jsonschema.Draft7Validator(roster_schema())
    problems = []
    for error in sorted(validator.iter_errors(roster), key=lambda e: list(e.absolute_path)):
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)
        problems.append(f"{where.lstrip('.') or '(top level)'}: {error.message}")
    return problems


def duplicate_names(roster: Any) -> list[str]:
    agents = (roster or {}).get("agents") or []
    names = [str(a.get("name")) for a in agents if isinstance(a, dict)]
    return sorted({n for n in names if names.count(n) > 1})


def busy_seconds(results: Sequence[Result]) -> float:
    """How long at least one fleet command was running: concurrent runs count once."""
    total, reach = 0.0, float("-inf")
    for start, end in sorted((r.started, r.started + r.seconds) for r in results):
        total += max(0.0, end - max(start, reach))
        reach = max(reach, end)
    return total


def describe(results: Sequence[Result]) -> str:
    return "\n".join(str(r) for r in results)
