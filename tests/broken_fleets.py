"""Deliberately broken variants of the reference fleet: the suites must catch every one.

Never shipped. Run as ``python broken_fleets.py VARIANT COMMAND ...``; each variant is the
reference with one defect, written as a subclass that undoes one thing the reference does.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from mosaic_conformance.contract import agent_session
from mosaic_conformance.fleet import cli, commands, profiles, roster
from mosaic_conformance.fleet.commands import Completed, Fleet, FleetError

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
    return bool(folder) and (Path(folder) / f"{name}.yaml").exists()


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
        def no_lock(path: Path) -> Any:
            yield

        def in_place(path: Path, text: str) -> None:
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

        def in_place(path: Path, r: roster.Roster) -> None:
            with open(path, "w", encoding="utf-8") as f:
                yaml.safe_dump(r.to_data(), f, sort_keys=False)

        commands.save_roster = in_place
        super().add(name, runtime, cls, start)


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
