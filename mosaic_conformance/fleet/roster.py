"""The roster: its model, its one schema, and safe reading and writing.

Every read and every write goes through :func:`parse_roster`, which validates against
``roster.schema.json``; errors name the field (``agents[2].name: ...``). Writes are atomic
(temp file, fsync, rename) and serialised by a lock file beside the roster.
"""

from __future__ import annotations

import fcntl
import os
import time

import yaml

from ..secrets import redact
from .schema import SchemaViolation, validator

TYPE_CHECKING = False  # typing's own would import typing: 3 ms of every start
if TYPE_CHECKING:
    from typing import Any

ORCHESTRATOR = "orchestrator"
DEFAULT_CLASS = "worker"
MAX_ROSTER_BYTES = 1 << 20  # a roster of thousands of agents is far below this
LOCK_TIMEOUT_S = 30.0
LOCK_POLL_S = 0.01  # how often a waiting command tries the lock again


class RosterError(Exception):
    """A roster (or profile) that cannot be used; the message names the file and field."""


# Plain classes, not dataclasses or NamedTuples: their imports (inspect, typing) would be
# 10 ms of every command's start, more than the command's own work.


class Agent:
    __slots__ = ("cls", "name", "runtime")

    def __init__(self, name: str, runtime: str, cls: str = DEFAULT_CLASS) -> None:
        self.name, self.runtime, self.cls = name, runtime, cls

    def __repr__(self) -> str:
        return f"Agent({self.name!r}, {self.runtime!r}, {self.cls!r})"

    def to_data(self) -> dict[str, str]:
        return {"name": self.name, "runtime": self.runtime, "class": self.cls}


class Roster:
    __slots__ = ("agents", "connector", "transport", "version")

    def __init__(
        self,
        agents: tuple[Agent, ...],
        version: int = 1,
        transport: str = "tmux",
        connector: dict[str, Any] | None = None,
    ) -> None:
        self.agents, self.version, self.transport = agents, version, transport
        self.connector = connector  # the roster's block as written; None: tmux

    def names(self) -> list[str]:
        return [a.name for a in self.agents]

    def get(self, name: str) -> Agent | None:
        return next((a for a in self.agents if a.name == name), None)

    def orchestrators(self) -> list[Agent]:
        return [a for a in self.agents if a.cls == ORCHESTRATOR]

    def to_data(self) -> dict[str, Any]:
        data: dict[str, Any] = {"version": self.version, "transport": self.transport}
        if self.connector is not None:
            data["connector"] = self.connector
        data["agents"] = [a.to_data() for a in self.agents]
        return data

    def to_yaml(self) -> str:
        return yaml.dump(
            self.to_data(), Dumper=_SafeDumper, sort_keys=False, default_flow_style=False
        )


# --- the schema's rules, in words -------------------------------------------------------


def agent_field_rule(field: str, value: str) -> dict[str, Any] | None:
    """The schema's rule that ``value`` breaks as an agent's ``field`` (name, runtime or
    class), or None: judged by the validator itself, on a roster of that one agent."""
    agent = {"name": "a", "runtime": "a", field: value}
    try:
        validator()({"version": 1, "transport": "tmux", "agents": [agent]})
    except SchemaViolation as exc:
        return exc.definition if isinstance(exc.definition, dict) else {"description": exc.message}
    return None


def agent_name_problem(name: str) -> str | None:
    """Why ``name`` is not a safe unit instance name, or None. The rule is the schema's."""
    rule = agent_field_rule("name", name)
    if rule is None:
        return None
    return f"{_shown(name)} is not a safe agent name: {rule.get('description', '')}"


def _shown(value: object) -> str:
    text = repr(value)
    return redact(text if len(text) <= 80 else text[:77] + "...")


def _field_path(path: list[str]) -> str:
    """``['data', 'agents', '2', 'name']`` -> ``agents[2].name``."""
    out = ""
    for part in path[1:]:
        out += f"[{part}]" if part.isdigit() else (f".{part}" if out else part)
    return out or "(top level)"


def _schema_problem(exc: SchemaViolation) -> str:
    where = _field_path(list(exc.path))
    definition = exc.definition if isinstance(exc.definition, dict) else {}
    if exc.rule == "pattern" and "description" in definition:
        return f"{where}: {_shown(exc.value)} is not valid: {definition['description']}"
    if exc.rule == "additionalProperties":
        # fastjsonschema says "data.x must not contain {'k'} properties": keep the names only
        extra = exc.message.rsplit("contain", 1)[-1].replace("properties", "").strip()
        return f"{where}: unknown field(s) {extra}"
    detail = exc.message.split(" ", 1)[1] if " " in exc.message else exc.message
    if exc.rule in ("enum", "const", "type"):
        detail += f" (got {_shown(exc.value)})"
    return f"{where}: {detail}"


# --- parsing ---------------------------------------------------------------------------


def parse_roster(text: str | bytes, source: str) -> Roster:
    """Validate and build a roster from YAML; ``source`` names the file in errors."""
    if len(text) > MAX_ROSTER_BYTES:
        raise RosterError(f"{source}: larger than {MAX_ROSTER_BYTES} bytes; not a roster")
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise RosterError(f"{source}: not UTF-8 text (byte {exc.start})") from None
    try:
        data = yaml.load(text, Loader=_SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "malformed"
        raise RosterError(f"{source}: not valid YAML{where}: {problem}") from None
    except (ValueError, TypeError, AttributeError) as exc:
        # PyYAML's constructors fail this way on some tagged values (`!!timestamp x`)
        raise RosterError(f"{source}: not valid YAML: a value it cannot read ({exc})") from None
    _refuse_aliases(data, source)
    try:
        data = validator()(data)
    except SchemaViolation as exc:
        raise RosterError(f"{source}: {_schema_problem(exc)}") from None
    agents = tuple(Agent(a["name"], a["runtime"], a["class"]) for a in data["agents"])
    seen: set[str] = set()
    for index, agent in enumerate(agents):
        if agent.name in seen:
            raise RosterError(f"{source}: agents[{index}].name: duplicate name {agent.name!r}")
        seen.add(agent.name)
    return Roster(agents, data["version"], data["transport"], data.get("connector"))


# libyaml's, where PyYAML has it: the same documents, several times faster (a roster of
# 800 agents: 45 ms to dump instead of 150)
_SafeLoader: type[Any] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_SafeDumper: type[Any] = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def _refuse_aliases(data: object, source: str) -> None:
    """A roster has no use for YAML anchors; refusing them stops alias bombs cheaply.
    The safe loader shares one object per alias, so a second visit of a container is one."""
    seen: set[int] = set()
    stack = [data]
    while stack:
        node = stack.pop()
        if isinstance(node, dict | list):
            if id(node) in seen:
                raise RosterError(f"{source}: YAML anchors and aliases are not allowed")
            seen.add(id(node))
            stack.extend(node.values() if isinstance(node, dict) else node)


def load_roster(path: str) -> Roster:
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        raise RosterError(f"no roster at {path}: run `mosaic fleet init --write` first") from None
    return parse_roster(raw, str(path))


# --- writing ---------------------------------------------------------------------------


def write_atomic(path: str, text: str) -> None:
    """Replace ``path`` with ``text`` so that a reader sees the old or the new file, whole,
    also after a power cut: the data and the rename are synced to disk."""
    _replace(path, text, sync=True)


def write_derived(path: str, text: str) -> None:
    """Replace a file derived from the roster (an agent's env file) atomically, without
    syncing it: each sync costs 3-10 ms of a command here. The roster, written after it and
    synced, is the commit point (on ext4 and xfs its journal commit carries this rename
    too), and ``install`` writes an agent's missing env file again."""
    _replace(path, text, sync=False)


def _replace(path: str, text: str, *, sync: bool) -> None:
    folder, name = os.path.split(os.fspath(path))
    os.makedirs(folder, exist_ok=True)
    # a name of our own (not tempfile's): this is on every command's path, tempfile costs 9 ms
    tmp = os.path.join(folder, f".{name}.{os.getpid()}.{time.monotonic_ns()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            if sync:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    if sync:
        dir_fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dir_fd)  # make the rename itself durable
        finally:
            os.close(dir_fd)


def save_roster(path: str, roster: Roster) -> None:
    text = roster.to_yaml()
    parse_roster(text, str(path))  # never write what we would refuse to read
    write_atomic(path, text)


def roster_lock(path: str) -> RosterLock:
    """Serialise read-modify-write cycles of one roster across processes:
    ``with roster_lock(path): ...``."""
    return RosterLock(os.fspath(path))


class RosterLock:
    """An exclusive ``flock`` on ``ROSTER.lock``, released when its holder ends, however it
    ends. (filelock does the same on Linux and costs 35 ms of import on every command; this
    is POSIX only, as systemd is. A class, not a contextmanager: contextlib's import is
    another millisecond.)"""

    def __init__(self, roster: str) -> None:
        self.roster = roster
        self.path = roster + ".lock"
        self._fd: int | None = None

    def __enter__(self) -> None:
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + LOCK_TIMEOUT_S
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() < deadline:
                    time.sleep(LOCK_POLL_S)
                    continue
                os.close(fd)
                raise RosterError(
                    f"{self.roster}: another fleet command has held the roster lock for "
                    f"{LOCK_TIMEOUT_S:.0f} s"
                ) from None
        self._fd = fd

    def __exit__(self, *exc_info: object) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor releases the lock
            self._fd = None
