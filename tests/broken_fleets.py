"""Deliberately broken variants of the reference fleet: the suites must catch every one.

Never shipped. Run as ``python broken_fleets.py VARIANT COMMAND ...``; each variant is the
reference with one defect, written as a subclass that undoes one thing the reference does.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from contextlib import contextmanager, suppress
from typing import TYPE_CHECKING, Any

import yaml

# Only what the reference itself imports, at start: every suite run starts a variant hundreds
# of times, and the connectors' modules would triple each start (they are imported where a
# variant makes a connector).
from mosaic_conformance.contract import (
    CONNECTOR_KINDS,
    HOLDER_UNIT,
    agent_of,
    agent_session,
    agent_unit,
)
from mosaic_conformance.fleet import cli, commands, profiles, roster
from mosaic_conformance.fleet.commands import Completed, Fleet, FleetError

if TYPE_CHECKING:
    from mosaic_conformance.connectors import (
        ConnectorConfig,
        ConnectorRegistry,
        OrchestratorConnector,
    )

VARIANTS: dict[str, type[Fleet]] = {}


def variant(name: str) -> Callable[[type[Fleet]], type[Fleet]]:
    def register(cls: type[Fleet]) -> type[Fleet]:
        VARIANTS[name] = cls
        return cls

    return register


class Dropping(Fleet):
    """A fleet that silently skips some systemctl calls while one of its commands runs."""

    @contextmanager
    def dropping(self, verb: str) -> Any:
        real = self._run

        def run(argv: list[str]) -> Completed:
            if argv[:3] == ["systemctl", "--user", verb]:
                return Completed(tuple(argv), 0, "", "")
            return real(argv)

        self._run = run
        try:
            yield
        finally:
            self._run = real


@variant("no-enable-on-add")
class NoEnableOnAdd(Dropping):
    def add(self, name: str, runtime: str, cls: str, start: bool) -> None:
        with self.dropping("enable"):
            super().add(name, runtime, cls, start)


@variant("enable-only-when-starting")
class EnableOnlyWhenStarting(Dropping):
    def add(self, name: str, runtime: str, cls: str, start: bool) -> None:
        if start:
            super().add(name, runtime, cls, start)
        else:
            with self.dropping("enable"):
                super().add(name, runtime, cls, start)


@variant("escaped-unit-on-enable")
class EscapedUnitOnEnable(Fleet):
    """add enables the unit of the name as escaped for tmux (`.` as `+`), remove disables the
    right one: a dotted agent is never enabled (found by a fleet written from the docs)."""

    def _attempt(self, argv: list[str]) -> Completed:
        agent = agent_of(argv[-1])
        if argv[:3] == ["systemctl", "--user", "enable"] and agent is not None:
            argv = [*argv[:-1], agent_unit(agent.replace(".", "+"))]
        return super()._attempt(argv)


@variant("fatal-enable-failure")
class FatalEnableFailure(Fleet):
    def warn(self, text: str) -> None:
        if text.startswith("could not enable"):
            raise FleetError(text)
        super().warn(text)


@variant("no-disable-on-remove")
class NoDisableOnRemove(Dropping):
    def remove(self, name: str, keep_files: bool, force: bool) -> None:
        with self.dropping("disable"):
            super().remove(name, keep_files, force)


@variant("disable-despite-keep-files")
class DisableDespiteKeepFiles(Fleet):
    def remove(self, name: str, keep_files: bool, force: bool) -> None:
        super().remove(name, keep_files, force)
        if keep_files:
            self._run(["systemctl", "--user", "disable", f"mosaic-agent@{name}.service"])


@variant("fatal-disable-failure")
class FatalDisableFailure(Fleet):
    def warn(self, text: str) -> None:
        if text.startswith("could not disable"):
            raise FleetError(text)
        super().warn(text)


@variant("files-kept-on-remove")
class FilesKeptOnRemove(Fleet):
    def _delete_agent_files(self, name: str) -> None:
        pass


@variant("no-start")
class NoStart(Dropping):
    def add(self, name: str, runtime: str, cls: str, start: bool) -> None:
        with self.dropping("start"):
            super().add(name, runtime, cls, start)


@variant("two-orchestrators-in-general")
class TwoOrchestratorsInGeneral(Fleet):
    """The general preset ships a second orchestrator, and init has no R5 guard."""

    def init(self, profile: str, write: bool, force: bool) -> None:
        loaded = profiles.load_profile(profile)
        if profile == "general" and not _planted(profile):
            extra = roster.Agent("orchestrator2", "claude", roster.ORCHESTRATOR)
            loaded = roster.Roster((*loaded.agents, extra))
        if not write:
            self.say(loaded.to_yaml())
            return
        with roster.roster_lock(self.roster_path):
            if os.path.exists(self.roster_path) and not force:
                raise FleetError(f"a roster already exists at {self.roster_path}")
            roster.save_roster(self.roster_path, loaded)
        self.say(f"Initialized {profile} fleet.")


def _planted(name: str) -> bool:
    folder = os.environ.get("MOSAIC_FLEET_PROFILES")
    return bool(folder) and os.path.exists(os.path.join(folder, f"{name}.yaml"))


@variant("write-then-validate-init")
class WriteThenValidateInit(Fleet):
    """The seed's own R5.3 bug: init writes the roster, then checks it, then fails."""

    def init(self, profile: str, write: bool, force: bool) -> None:
        if write:
            loaded = profiles.load_profile(profile)
            if os.path.exists(self.roster_path) and not force:
                raise FleetError(f"a roster already exists at {self.roster_path}")
            roster.write_atomic(self.roster_path, loaded.to_yaml())
        super().init(profile, False, force)  # validates, but too late
        if write:
            self.say(f"Initialized {profile} fleet.")


@variant("bad-names-accepted")
class BadNamesAccepted(Fleet):
    def add(self, name: str, runtime: str, cls: str, start: bool) -> None:
        commands._check_name = lambda name: None
        roster.save_roster = lambda path, r: roster.write_atomic(path, r.to_yaml())
        commands.save_roster = roster.save_roster
        super().add(name, runtime, cls, start)


@variant("unlocked-in-place-writes")
class UnlockedInPlaceWrites(Fleet):
    """No lock, and the roster rewritten in place: concurrent adds overwrite each other."""

    def add(self, name: str, runtime: str, cls: str, start: bool) -> None:
        @contextmanager
        def no_lock(path: str) -> Any:
            yield

        def in_place(path: str, text: str) -> None:
            with open(path, "w", encoding="utf-8") as f:
                f.write(text)

        commands.roster_lock = no_lock
        commands.write_atomic = in_place
        roster.write_atomic = in_place
        super().add(name, runtime, cls, start)


@variant("prints-token-in-errors")
class PrintsTokenInErrors(Fleet):
    """Names the Matrix token in its error when an add fails, straight to stderr: unredacted."""

    def add(self, name: str, runtime: str, cls: str, start: bool) -> None:
        try:
            super().add(name, runtime, cls, start)
        except (FleetError, commands.UsageError):
            token = os.environ.get("MATRIX_ACCESS_TOKEN", "(none)")
            self._err.write(f"add {name!r} failed; the Matrix token in use is {token}\n")
            raise


@variant("in-place-writes")
class InPlaceWrites(Fleet):
    """Locked, but the roster is rewritten in place, streamed as it is serialised: a reader
    (or a crash) in the middle sees half a roster."""

    def add(self, name: str, runtime: str, cls: str, start: bool) -> None:
        import yaml

        def in_place(path: str, r: roster.Roster) -> None:
            with open(path, "w", encoding="utf-8") as f:
                yaml.safe_dump(r.to_data(), f, sort_keys=False)

        commands.save_roster = in_place
        super().add(name, runtime, cls, start)


# --- the fleet-suite checks made exact, and the requirements never shown failing before ---
# Each of the first seven passed the suites' old, weaker check and fails the exact one.


@variant("count-not-named")
class CountNotNamed(Fleet):
    """init's R5 error names the fleet's version, not the orchestrator count (a check that
    took any digit of the output for the count passed it)."""

    def init(self, profile: str, write: bool, force: bool) -> None:
        try:
            super().init(profile, write, force)
        except FleetError as exc:
            if "orchestrator" not in str(exc):
                raise
            raise FleetError(
                f'mosaic fleet 0.1.2: the "{profile}" preset does not have exactly one '
                "orchestrator (R5); re-install the framework."
            ) from None


@variant("warning-without-unit")
class WarningWithoutUnit(Fleet):
    """A failed enable or disable warns in systemctl's words alone, never naming the unit
    (passed while the injected failure's own text named it)."""

    def warn(self, text: str) -> None:
        if text.startswith(("could not enable", "could not disable")):
            text = text.split(": ", 1)[1]
        super().warn(text)


@variant("usage-only-refusals")
class UsageOnlyRefusals(Fleet):
    """An unsafe agent name is refused with the command's synopsis and a word that it is
    refused, never what is wrong (passed while the synopsis, or the bad name itself, held
    the word `name`)."""

    def add(self, name: str, runtime: str, cls: str, start: bool) -> None:
        if roster.agent_name_problem(name):
            self._err.write("usage: mosaic fleet add [-h] --runtime RUNTIME [--class CLS]\n")
            self._err.write("                        [--no-start] name\n")
            raise FleetError(f"refusing {name!r}")
        super().add(name, runtime, cls, start)


@variant("unnamed-top-level-error")
class UnnamedTopLevelError(Fleet):
    """A roster that is not a mapping is refused without a word of what is wrong (passed
    while the roster's path held the word `roster`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        real = commands.load_roster

        def load(path: str) -> roster.Roster:
            try:
                return real(path)
            except roster.RosterError as exc:
                if "(top level): must be object" in str(exc):
                    raise roster.RosterError(f"{path}: cannot use it") from None
                raise

        commands.load_roster = load


@variant("heartbeat-kept-on-remove")
class HeartbeatKeptOnRemove(Fleet):
    """add makes no heartbeat (the running agent does), and remove deletes the env file only
    (passed while only the files made by add were looked for)."""

    def _write_agent_files(self, agent: roster.Agent) -> None:
        super()._write_agent_files(agent)
        os.unlink(self.heartbeat_file(agent.name))

    def _delete_agent_files(self, name: str) -> None:
        with suppress(FileNotFoundError):
            os.unlink(self.env_file(name))


@variant("holder-not-enabled")
class HolderNotEnabled(Fleet):
    """install enables the agents' units but not the tmux holder's."""

    def install(self) -> None:
        real = self._run

        def run(argv: list[str]) -> Completed:
            if argv[:3] == ["systemctl", "--user", "enable"]:
                argv = [a for a in argv if a != HOLDER_UNIT]
            return real(argv)

        self._run = run
        try:
            super().install()
        finally:
            self._run = real


@variant("stale-temp-blocks-writes")
class StaleTempBlocksWrites(Fleet):
    """The roster goes through a temp file of one fixed name, made exclusively: a crash
    mid-write leaves it behind, and every later write fails (passed while no kill landed in
    a write)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)

        def save(path: str, r: roster.Roster) -> None:
            text = r.to_yaml()
            roster.parse_roster(text, path)
            folder, name = os.path.split(path)
            tmp = os.path.join(folder, f".{name}.tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)

        commands.save_roster = save


@variant("orchestrator-in-minimal")
class OrchestratorInMinimal(Fleet):
    """The minimal preset gets an orchestrator: there is no preset without one."""

    def init(self, profile: str, write: bool, force: bool) -> None:
        real = commands.load_profile

        def load(name: str) -> roster.Roster:
            loaded = real(name)
            if name != "minimal":
                return loaded
            extra = roster.Agent("orchestrator", "pi", roster.ORCHESTRATOR)
            return roster.Roster((extra, *loaded.agents))

        commands.load_profile = load
        super().init(profile, write, force)


@variant("second-orchestrator-accepted")
class SecondOrchestratorAccepted(Fleet):
    """add takes an orchestrator whatever the roster holds."""

    def add(self, name: str, runtime: str, cls: str, start: bool) -> None:
        commands.ORCHESTRATOR = "(no class has this name)"  # add's check looks for this
        super().add(name, runtime, cls, start)


@variant("only-orchestrator-removable")
class OnlyOrchestratorRemovable(Fleet):
    """remove of the only orchestrator needs no --force."""

    def remove(self, name: str, keep_files: bool, force: bool) -> None:
        super().remove(name, keep_files, force=True)


@variant("ps-without-drift")
class PsWithoutDrift(Fleet):
    """ps prints the roster's agents and their units, never a drift line."""

    def say(self, text: str) -> None:
        if not text.startswith(("drift:", "no drift")):
            super().say(text)


@variant("invalid-default-class")
class InvalidDefaultClass(Fleet):
    """An agent added without --class is written, unchecked, with class `Worker`: the
    roster breaks the schema."""

    def add(self, name: str, runtime: str, cls: str, start: bool) -> None:
        if "--class" not in sys.argv:

            def save(path: str, r: roster.Roster) -> None:
                data = r.to_data()
                for agent in data["agents"]:
                    if agent["name"] == name:
                        agent["class"] = "Worker"
                roster.write_atomic(path, yaml.safe_dump(data, sort_keys=False))

            commands.save_roster = save
        super().add(name, runtime, cls, start)


@variant("adds-a-connector-block")
class AddsAConnectorBlock(Fleet):
    """add writes a tmux connector block into a roster that had none."""

    def add(self, name: str, runtime: str, cls: str, start: bool) -> None:
        real = commands.save_roster

        def save(path: str, r: roster.Roster) -> None:
            tmux = roster.Roster(r.agents, r.version, r.transport, {"kind": "tmux"})
            real(path, r if r.connector else tmux)

        commands.save_roster = save
        super().add(name, runtime, cls, start)


def _block(fleet: Fleet) -> dict[str, Any] | None:
    return roster.load_roster(fleet.roster_path).connector


@variant("unknown-kind-is-tmux")
class UnknownKindIsTmux(Fleet):
    """A connector block of a kind it does not know makes the tmux connector."""

    def connector(self, as_json: bool, registry: ConnectorRegistry | None = None) -> None:
        def lenient(path: str) -> roster.Roster:
            with open(path, "rb") as f:
                data = yaml.safe_load(f)
            if (data.get("connector") or {}).get("kind") not in CONNECTOR_KINDS:
                data.pop("connector", None)
            return roster.parse_roster(yaml.safe_dump(data), str(path))

        commands.load_roster = lenient
        super().connector(as_json, registry)


@variant("no-discord-kind")
class NoDiscordKind(Fleet):
    """Its registry knows tmux and matrix only: discord is an unknown kind."""

    def connector(self, as_json: bool, registry: ConnectorRegistry | None = None) -> None:
        if (_block(self) or {}).get("kind") == "discord":
            raise FleetError("unknown connector kind 'discord': expected one of tmux, matrix")
        super().connector(as_json, registry)


@variant("no-block-no-connector")
class NoBlockNoConnector(Fleet):
    """A roster without a connector block makes no connector at all."""

    def connector(self, as_json: bool, registry: ConnectorRegistry | None = None) -> None:
        if _block(self) is None:
            raise FleetError("the roster has no connector block: add one (kind: tmux, ...)")
        super().connector(as_json, registry)


@variant("not-implemented-without-kind")
class NotImplementedWithoutKind(Fleet):
    """It has no discord factory, and says so without saying which kind."""

    def connector(self, as_json: bool, registry: ConnectorRegistry | None = None) -> None:
        if (_block(self) or {}).get("kind") == "discord":
            raise FleetError("this connector is not implemented yet")
        super().connector(as_json, registry)


@variant("matrix-user-from-url")
class MatrixUserFromUrl(Fleet):
    """The Matrix connector gets a user id made of the block's localpart and the homeserver
    URL's host, not the block's user_id."""

    def connector(self, as_json: bool, registry: ConnectorRegistry | None = None) -> None:
        import dataclasses
        from urllib.parse import urlsplit

        from mosaic_conformance.connectors import default_registry

        shipped = default_registry()
        registry = default_registry()

        def matrix(config: ConnectorConfig) -> OrchestratorConnector:
            assert config.matrix is not None
            host = urlsplit(config.matrix.homeserver_url).hostname
            user = f"{config.matrix.user_id.split(':', 1)[0]}:{host}"
            changed = dataclasses.replace(config.matrix, user_id=user)
            return shipped.create(dataclasses.replace(config, matrix=changed))

        registry.register("matrix", matrix)
        super().connector(as_json, registry)


# --- branch `fleet`: the tmux side of ps, runner exceptions, a unit never loaded ------------


@variant("ps-asks-systemd-only")
class PsAsksSystemdOnly(Fleet):
    """ps as the reference had it before: systemd's view only, as if every agent had its
    tmux session (the seed lists tmux sessions and panes too)."""

    def ps(self, as_json: bool) -> None:
        real = self._run
        names = roster.load_roster(self.roster_path).names()

        def run(argv: list[str]) -> Completed:
            if argv[:1] == ["tmux"]:
                panes = "".join(f"{agent_session(n)}:0\n" for n in names)
                return Completed(tuple(argv), 0, panes, "")
            return real(argv)

        self._run = run
        super().ps(as_json)


@variant("dies-on-runner-exception")
class DiesOnRunnerException(Fleet):
    """A systemctl that cannot be launched (PermissionError) ends the command with an
    error, as the reference did: `Added a4 ...` then `Error: PermissionError ...`, exit 1."""

    def _attempt(self, argv: list[str]) -> Completed:
        return self._run(argv)


@variant("refuses-remove-of-unloaded-unit")
class RefusesRemoveOfUnloadedUnit(Fleet):
    """Every failed stop refuses the remove, also `not loaded` (exit 5): an agent added
    before `install` can never be removed."""

    def remove(self, name: str, keep_files: bool, force: bool) -> None:
        real = self._run

        def run(argv: list[str]) -> Completed:
            done = real(argv)
            if argv[:3] == ["systemctl", "--user", "stop"] and done.returncode == 5:
                return Completed(done.argv, 1, done.stdout, done.stderr)
            return done

        self._run = run
        super().remove(name, keep_files, force)


def main() -> int:
    name, *argv = sys.argv[1:]
    commands_fleet = VARIANTS[name]
    cli.Fleet = commands_fleet  # type: ignore[misc]
    return cli.fleet_main(argv, prog=f"broken-fleet {name}")


if __name__ == "__main__":
    sys.exit(main())
