"""The fleet's commands: init, install, add, remove, ps, start, stop, connector.

Each command checks everything it can before it touches anything, so a refused command leaves
the roster, the agent files and systemd as they were. The roster is the commit point: it is
written (atomically, under the lock) before units are enabled and after they are disabled.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from ..contract import (
    AGENT_TEMPLATE,
    HOLDER_SESSION,
    HOLDER_UNIT,
    ROSTER_PATH,
    TMUX_SOCKET,
    agent_of,
    agent_of_session,
    agent_session,
    agent_unit,
)
from ..secrets import redact
from . import units
from .profiles import MINIMAL_PROFILE, load_profile
from .roster import (
    ORCHESTRATOR,
    Agent,
    Roster,
    agent_field_rule,
    agent_name_problem,
    load_roster,
    roster_lock,
    save_roster,
    write_atomic,
    write_derived,
)

TYPE_CHECKING = False  # typing's own would import typing: 3 ms of every start
if TYPE_CHECKING:
    from os import PathLike
    from typing import TextIO

    from ..connectors import ConnectorRegistry


class FleetError(Exception):
    """A refused or failed operation: exit 1, the message on stderr."""


class UsageError(Exception):
    """A malformed argument: exit 2."""


class Completed:
    """One run of a system command."""

    __slots__ = ("argv", "returncode", "stderr", "stdout")

    def __init__(self, argv: tuple[str, ...], returncode: int, stdout: str, stderr: str) -> None:
        self.argv, self.returncode, self.stdout, self.stderr = argv, returncode, stdout, stderr

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def why(self) -> str:
        return (self.stderr or self.stdout).strip() or f"exit status {self.returncode}"


Runner = Callable[[list[str]], Completed]


def run_command(argv: list[str]) -> Completed:
    """Run ``argv`` (found on PATH, no shell) and capture its output.

    ``posix_spawnp`` with the two outputs in anonymous memory files, not ``subprocess``:
    this runs on every command, and subprocess' import (selectors, locale, threads) is 6 ms
    of a start that must stay near Python's own. Files, not pipes, so a child that writes a
    lot to both never waits for us. A program that cannot be launched raises as it would
    with subprocess (``PermissionError``, ``OSError``); one not found gives exit 127. (The
    child keeps Python's ignored SIGPIPE, which subprocess would reset: harmless, as its
    outputs are files.)
    """
    out, err = os.memfd_create("stdout"), os.memfd_create("stderr")
    try:
        try:
            pid = os.posix_spawnp(
                argv[0],
                argv,
                os.environ,
                file_actions=[(os.POSIX_SPAWN_DUP2, out, 1), (os.POSIX_SPAWN_DUP2, err, 2)],
            )
        except FileNotFoundError:
            return Completed(tuple(argv), 127, "", f"{argv[0]}: command not found on PATH")
        code = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
        return Completed(tuple(argv), code, _read_all(out), _read_all(err))
    finally:
        os.close(out)
        os.close(err)


def _read_all(fd: int) -> str:
    os.lseek(fd, 0, os.SEEK_SET)
    chunks = []
    while chunk := os.read(fd, 1 << 16):
        chunks.append(chunk)
    return b"".join(chunks).decode("utf-8", "replace")


def _check_name(name: str) -> None:
    problem = agent_name_problem(name)
    if problem:
        raise UsageError(f"agent name: {problem}")


def _check_word(field: str, value: str) -> None:
    """runtime and class follow the schema's pattern for them."""
    rule = agent_field_rule(field, value)
    if rule is not None:
        raise UsageError(f"{field}: {value!r} must match {rule.get('pattern', rule)}")


class Fleet:
    def __init__(
        self, home: str | PathLike[str], out: TextIO, err: TextIO, run: Runner = run_command
    ) -> None:
        # Paths are strings (os.path), not pathlib: its import is 4 ms of every start.
        self.home = os.fspath(home)
        self.roster_path = os.path.join(self.home, ROSTER_PATH)
        self._out, self._err, self._run = out, err, run

    # --- output (every byte passes the redactor) --------------------------------------

    def say(self, text: str) -> None:
        self._out.write(redact(text) + "\n")

    def warn(self, text: str) -> None:
        self._err.write(redact(f"Warning: {text}") + "\n")

    # --- files of one agent -------------------------------------------------------------

    def env_file(self, name: str) -> str:
        return os.path.join(self.home, "fleet", "agents", f"{name}.env")

    def heartbeat_file(self, name: str) -> str:
        return os.path.join(self.home, "fleet", "heartbeat", name)

    def _write_agent_files(self, agent: Agent) -> None:
        env = (
            f"MOSAIC_AGENT_NAME={agent.name}\n"
            f"MOSAIC_AGENT_RUNTIME={agent.runtime}\n"
            f"MOSAIC_AGENT_CLASS={agent.cls}\n"
            f"MOSAIC_AGENT_SESSION={agent_session(agent.name)}\n"
        )
        write_derived(self.env_file(agent.name), env)
        beat = self.heartbeat_file(agent.name)
        os.makedirs(os.path.dirname(beat), exist_ok=True)
        os.close(os.open(beat, os.O_WRONLY | os.O_CREAT, 0o644))

    def _delete_agent_files(self, name: str) -> None:
        import contextlib

        for path in (self.env_file(name), self.heartbeat_file(name)):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)

    # --- init ---------------------------------------------------------------------------

    def init(self, profile: str, write: bool, force: bool) -> None:
        roster = load_profile(profile)
        count = len(roster.orchestrators())
        # R5, checked before anything is written, so a corrupted preset leaves no trace:
        # exactly one orchestrator; the minimal preset may have none, but never two.
        if profile == MINIMAL_PROFILE:
            expected, allowed = "at most 1 (the minimal preset may have none)", count <= 1
        else:
            expected, allowed = "exactly 1", count == 1
        if not allowed:
            raise FleetError(
                f'Fleet init failed: the "{profile}" roster has {count} orchestrator agent(s), '
                f"expected {expected} (R5). The preset may be corrupted - re-install the "
                "framework."
            )
        if not write:
            self._out.write(roster.to_yaml())
            return
        with roster_lock(self.roster_path):
            if os.path.exists(self.roster_path) and not force:
                raise FleetError(
                    f"a roster already exists at {self.roster_path}; pass --force to replace it"
                )
            save_roster(self.roster_path, roster)
        summary = (
            f"{len(roster.agents)} agent(s) (no orchestrator)"
            if count == 0
            else f"1 orchestrator + {len(roster.agents) - 1} agent(s)"
        )
        self.say(f"Initialized {profile} fleet: {summary}. Next: mosaic fleet install")

    # --- install ------------------------------------------------------------------------

    def unit_dir(self) -> str:
        config = os.environ.get("XDG_CONFIG_HOME") or os.path.expanduser("~/.config")
        return os.path.join(config, "systemd", "user")

    def install(self) -> None:
        roster = load_roster(self.roster_path)
        runner = units.agent_runner_path(self.home)
        write_atomic(runner, units.AGENT_RUNNER)
        os.chmod(runner, 0o755)
        unit_dir = self.unit_dir()
        write_atomic(os.path.join(unit_dir, AGENT_TEMPLATE), units.agent_template(self.home))
        holder = units.holder_unit(_chat_session(roster))
        write_atomic(os.path.join(unit_dir, HOLDER_UNIT), holder)
        for agent in roster.agents:
            if not os.path.exists(self.env_file(agent.name)):
                self._write_agent_files(agent)
        self._checked(units.systemctl("daemon-reload"), "reload the user manager")
        to_enable = [HOLDER_UNIT, *(agent_unit(n) for n in roster.names())]
        self._checked(units.systemctl("enable", *to_enable), "enable " + " ".join(to_enable))
        # The tmux server from now on, not only after a reboot: the operator's chat and the
        # agents' sessions live in it.
        started = self._attempt(units.systemctl("start", HOLDER_UNIT))
        if not started.ok:
            self.warn(
                f"could not start {HOLDER_UNIT}: {started.why()} (the tmux chat and the "
                "agents' sessions need it)"
            )
        user = os.environ.get("USER") or _login_name()
        self._checked(units.enable_linger(user), f"enable linger for {user}")
        self.say(
            f"Installed units in {unit_dir}; enabled {len(to_enable)} unit(s); "
            f"linger enabled for {user}."
        )

    def _attempt(self, argv: list[str]) -> Completed:
        """Run ``argv``. A runner that raises (systemctl not executable: PermissionError, any
        OSError) gives a failed result with the reason, so each caller decides, as for any
        failure, whether it is a warning or an error; never a traceback."""
        try:
            return self._run(argv)
        except Exception as exc:
            why = f"{argv[0]} could not be run: {type(exc).__name__}: {exc}"
            return Completed(tuple(argv), -1, "", why)

    def _checked(self, argv: list[str], what: str) -> Completed:
        result = self._attempt(argv)
        if not result.ok:
            raise FleetError(f"could not {what}: {result.why()}")
        return result

    # --- add ----------------------------------------------------------------------------

    def add(self, name: str, runtime: str, cls: str, start: bool) -> None:
        _check_name(name)
        _check_word("runtime", runtime)
        _check_word("class", cls)
        agent = Agent(name, runtime, cls)
        with roster_lock(self.roster_path):
            roster = load_roster(self.roster_path)
            if roster.get(name):
                raise FleetError(f"an agent named {name!r} is already in the roster")
            current = roster.orchestrators()
            if cls == ORCHESTRATOR and current:
                raise FleetError(
                    f"the fleet already has an orchestrator ({current[0].name}); "
                    "a fleet has exactly one (R5)"
                )
            self._write_agent_files(agent)
            try:
                save_roster(
                    self.roster_path,
                    Roster(
                        (*roster.agents, agent), roster.version, roster.transport, roster.connector
                    ),
                )
            except BaseException:
                self._delete_agent_files(name)
                raise
        self.say(f"Added {name} ({runtime}/{cls}) to the fleet.")
        unit = agent_unit(name)
        # Boot survival, independent of --no-start; not fatal: the roster is already right.
        enabled = self._attempt(units.systemctl("enable", unit))
        if not enabled.ok:
            self.warn(f"could not enable {unit}: {enabled.why()}")
        if start:
            started = self._attempt(units.systemctl("start", unit))
            if not started.ok:
                raise FleetError(
                    f"could not start {unit}: {started.why()} "
                    f"({name} is in the roster; fix the cause, then `mosaic fleet start {name}`)"
                )
            self.say(f"Started {unit}.")

    # --- remove -------------------------------------------------------------------------

    def remove(self, name: str, keep_files: bool, force: bool) -> None:
        _check_name(name)
        roster = load_roster(self.roster_path)
        agent = roster.get(name)
        if agent is None:
            raise FleetError(f"no agent named {name!r} in the roster {self.roster_path}")
        others = [a for a in roster.agents if a.name != name]
        if agent.cls == ORCHESTRATOR and len(roster.orchestrators()) == 1 and others and not force:
            raise FleetError(
                f"refusing to remove {name!r}: it is the fleet's only orchestrator (R5); "
                "pass --force to remove it anyway"
            )
        unit = agent_unit(name)
        stopped = self._attempt(units.systemctl("stop", unit))
        # Not loaded (a remove before `install`): nothing runs under that name to stop.
        if not stopped.ok and stopped.returncode != units.NOT_LOADED_EXIT:
            raise FleetError(f"could not stop {unit}: {stopped.why()}")
        if not keep_files:
            # Without this, the removed agent would come back at the next boot.
            disabled = self._attempt(units.systemctl("disable", unit))
            if not disabled.ok:
                self.warn(f"could not disable {unit}: {disabled.why()}")
        with roster_lock(self.roster_path):
            roster = load_roster(self.roster_path)
            kept = tuple(a for a in roster.agents if a.name != name)
            save_roster(
                self.roster_path, Roster(kept, roster.version, roster.transport, roster.connector)
            )
        if not keep_files:
            self._delete_agent_files(name)
        self.say(f"Removed {name} from the fleet.")

    # --- start / stop -------------------------------------------------------------------

    def start_stop(self, verb: str, name: str) -> None:
        _check_name(name)
        if load_roster(self.roster_path).get(name) is None:
            raise FleetError(f"no agent named {name!r} in the roster {self.roster_path}")
        unit = agent_unit(name)
        self._checked(units.systemctl(verb, unit), f"{verb} {unit}")
        self.say(f"{'Started' if verb == 'start' else 'Stopped'} {unit}.")

    # --- connector ----------------------------------------------------------------------

    def connector(self, as_json: bool, registry: ConnectorRegistry | None = None) -> None:
        """Make the roster's connector through the registry (tmux when the roster names
        none; tokens from the environment) and report its health."""
        # imported here: every other command would pay for them
        import dataclasses
        import json

        from ..connectors import INSTALL_CONNECTORS, default_registry, resolve_connector_kind
        from ..connectors.config import connector_config

        block = load_roster(self.roster_path).connector
        try:
            config = connector_config(block)
            kind = resolve_connector_kind(config)
            made = (registry or default_registry()).create(config)
        except (ValueError, NotImplementedError) as exc:
            raise FleetError(f"the roster's connector cannot be made: {exc}") from exc
        except ImportError as exc:  # the shipped connectors' client libraries are an extra
            raise FleetError(
                f"the roster's {kind} connector needs {exc.name or exc}, which is not "
                f"installed: {INSTALL_CONNECTORS}"
            ) from exc
        try:
            health = made.health()
        finally:
            made.close()
        if as_json:
            self.say(json.dumps({"kind": kind, **dataclasses.asdict(health)}))
        else:
            state = "reachable" if health.reachable else "not reachable"
            state += ", authenticated" if health.authenticated else ", not authenticated"
            self.say(f"{kind}: {state}" + (f" ({health.detail})" if health.detail else ""))
        if not (health.reachable and health.authenticated):
            raise FleetError(f"the {kind} connector is not healthy")

    # --- ps -----------------------------------------------------------------------------

    def ps(self, as_json: bool) -> None:
        """Agents, their units' state and drift, in three calls whatever the roster's size:
        systemd's list of agent units, one `show` of them all, one list of tmux's panes."""
        roster = load_roster(self.roster_path)
        listed = self._checked(units.list_agent_units(), "list the agent units")
        loaded = [_first_unit(line) for line in listed.stdout.splitlines() if line.strip()]
        wanted = [agent_unit(n) for n in roster.names()]
        every = list(dict.fromkeys(wanted + [u for u in loaded if u]))
        props = _parse_show(
            self._checked(units.show_units([*every, HOLDER_UNIT]), "ask systemd").stdout
        )
        panes = self._attempt(units.list_panes())
        sessions = _parse_panes(panes.stdout) if panes.ok else None
        rows: list[dict[str, object]] = []
        drift: list[dict[str, str]] = []

        def report(kind: str, unit: str, agent: str, text: str) -> None:
            drift.append({"unit": unit, "agent": agent, "kind": kind, "text": text})

        for agent in roster.agents:
            unit = agent_unit(agent.name)
            p = props.get(unit, {})
            enabled = p.get("UnitFileState", "") == "enabled"
            active = p.get("ActiveState", "unknown")
            session = agent_session(agent.name)
            tmux = "no-server" if sessions is None else sessions.get(session, "missing")
            rows.append(
                {
                    "name": agent.name,
                    "class": agent.cls,
                    "runtime": agent.runtime,
                    "unit": unit,
                    "enabled": enabled,
                    "active": active,
                    "session": session,
                    "tmux": tmux,
                }
            )
            if not enabled:
                report(
                    "not-enabled",
                    unit,
                    agent.name,
                    f"{agent.name} is in the roster but {unit} is not enabled",
                )
            if active != "active":
                report(
                    "not-running",
                    unit,
                    agent.name,
                    f"{agent.name} is in the roster but {unit} is not running ({active})",
                )
            elif tmux == "missing":
                report(
                    "no-tmux-session",
                    unit,
                    agent.name,
                    f"{agent.name} is running ({unit}) but its tmux session {session!r} is "
                    f"missing on socket {TMUX_SOCKET!r}",
                )
            elif tmux == "dead":
                report(
                    "tmux-pane-dead",
                    unit,
                    agent.name,
                    f"{agent.name} is running ({unit}) but the pane of its tmux session "
                    f"{session!r} is dead (its program ended)",
                )
        for unit in every:
            name = agent_of(unit)
            if (
                name
                and roster.get(name) is None
                and props.get(unit, {}).get("UnitFileState") == "enabled"
            ):
                report(
                    "enabled-not-in-roster",
                    unit,
                    name,
                    f"{unit} is enabled but not in the roster (it would start at boot)",
                )
        for session in sessions or {}:
            name = agent_of_session(session)
            if name is not None and roster.get(name) is None:
                report(
                    "tmux-session-not-in-roster",
                    agent_unit(name),
                    name,
                    f"tmux session {session!r} on socket {TMUX_SOCKET!r} belongs to no "
                    f"rostered agent ({name} is not in the roster)",
                )
        if sessions is None:
            holder = props.get(HOLDER_UNIT, {}).get("ActiveState", "unknown")
            report(
                "tmux-server-down",
                HOLDER_UNIT,
                "",
                f"the fleet's tmux server (tmux -L {TMUX_SOCKET}) does not answer, so no "
                f"agent has its session ({HOLDER_UNIT} is {holder}): {panes.why()}",
            )
        if as_json:
            import json

            server = {"socket": TMUX_SOCKET, "up": sessions is not None}
            self.say(json.dumps({"agents": rows, "drift": drift, "tmux": server}, indent=2))
            return
        table = [("NAME", "CLASS", "RUNTIME", "ENABLED", "ACTIVE", "TMUX")] + [
            (
                str(r["name"]),
                str(r["class"]),
                str(r["runtime"]),
                "enabled" if r["enabled"] else "disabled",
                str(r["active"]),
                str(r["tmux"]),
            )
            for r in rows
        ]
        widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
        for row in table:
            self.say("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
        for d in drift:
            self.say(f"drift: {d['text']}")
        if not drift:
            self.say(
                "no drift: the enabled agent units are exactly the roster's, all running, "
                "each in its tmux session."
            )


def _first_unit(line: str) -> str | None:
    words = line.split()
    if words and words[0] == "\u25cf":  # systemd marks failed units with a bullet
        words = words[1:]
    return words[0] if words else None


def _parse_show(text: str) -> dict[str, dict[str, str]]:
    """``systemctl show`` for several units: blocks of Key=Value, a blank line between."""
    units: dict[str, dict[str, str]] = {}
    for block in text.split("\n\n"):
        props = dict(line.split("=", 1) for line in block.splitlines() if "=" in line)
        if "Id" in props:
            units[props["Id"]] = props
    return units


def _parse_panes(text: str) -> dict[str, str]:
    """``list-panes -a`` lines (``SESSION:DEAD``) -> session: "up" when one of its panes
    still runs its program, else "dead"."""
    sessions: dict[str, str] = {}
    for line in text.splitlines():
        session, _, dead = line.rpartition(":")
        if session and sessions.get(session) != "up":
            sessions[session] = "dead" if dead.strip() == "1" else "up"
    return sessions


def _chat_session(roster: Roster) -> str:
    """The session the holder starts the server with: the tmux connector's, from the
    roster's ``connector.tmux.session`` when it names one."""
    block = roster.connector or {}
    section = block.get("tmux") if block.get("kind", "tmux") == "tmux" else None
    session = section.get("session") if isinstance(section, dict) else None
    return str(session) if session else HOLDER_SESSION


def _login_name() -> str:
    import getpass

    return getpass.getuser()
