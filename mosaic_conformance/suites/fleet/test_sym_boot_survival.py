"""SYM: what `fleet add` enables, `fleet remove` disables, so nothing resurrects at boot.

Each test judges one requirement: a starting state that another requirement would produce
(an enabled, running unit before a remove, say) is arranged by the suite itself through
``backend.systemctl``, so a fleet that breaks SYM.1 fails SYM.1, not SYM.4 as well.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from mosaic_conformance.contract import (
    AGENT_TEMPLATE,
    HOLDER_UNIT,
    TMUX_SOCKET,
    agent_session,
    agent_unit,
    heartbeat_path,
)
from mosaic_conformance.harness.fleet import FleetUnderTest
from mosaic_conformance.harness.outcomes import HarnessError
from mosaic_conformance.harness.systems import Backend

from .checks import WORKER, drift_lines


def arrange(backend: Backend, name: str, *, enabled: bool, active: bool) -> None:
    """Put ``name``'s unit into the given state, whatever the fleet did to it."""
    unit = agent_unit(name)
    for wanted, on, off in ((enabled, "enable", "disable"), (active, "start", "stop")):
        done = backend.systemctl(on if wanted else off, unit)
        if done.returncode != 0:  # the system, not the fleet: nothing is judged
            raise HarnessError(f"the suite could not {on if wanted else off} {unit}: {done.stderr}")


def added(
    fleet: FleetUnderTest, name: str, *, enabled: bool = True, active: bool = True
) -> list[str]:
    """Add ``name``, set its unit's state, and return the files the add created."""
    before = fleet.snapshot()
    fleet.ok("add", name, *WORKER, "--no-start")
    arrange(fleet.backend, name, enabled=enabled, active=active)
    return [p for p in before.added(fleet.snapshot()) if p != str(fleet.roster_path)]


@pytest.mark.requirement("SYM.1")
@pytest.mark.parametrize(
    ("name", "start"),
    # a name with every character a unit instance may hold but letters: the unit is the
    # agent's own, not a name escaped for tmux or for systemd's paths
    [("sym1", True), ("sym1", False), ("sym1.b-c_2", True)],
    ids=["start", "no-start", "dotted-name"],
)
def test_add_enables_the_unit(installed: FleetUnderTest, name: str, start: bool) -> None:
    unit = agent_unit(name)
    result = installed.run("add", name, *WORKER, *([] if start else ["--no-start"]))
    assert result.exit_code == 0, f"add failed\n{result}"
    assert result.ran("systemctl", "enable", unit), (
        f"add did not run `systemctl --user enable {unit}`\n{result}"
    )
    assert unit in installed.backend.state().enabled, f"{unit} is not enabled after add\n{result}"


@pytest.mark.requirement("SYM.2")
def test_failed_enable_on_add_is_a_warning(installed: FleetUnderTest) -> None:
    unit = agent_unit("sym2")
    # systemctl's own words do not name the unit: a line that does is the fleet's warning
    installed.backend.inject_failure("enable", unit, 1, "Failed to enable unit: Access denied")
    result = installed.run("add", "sym2", *WORKER, "--no-start")
    assert result.exit_code == 0, f"a failed enable made add fail\n{result}"
    assert "sym2" in installed.roster_names(), f"sym2 is not in the roster\n{result}"
    assert unit in result.stderr, f"no warning naming {unit} on stderr\n{result}"


@pytest.mark.requirement("SYM.3")
def test_remove_stops_disables_and_forgets(installed: FleetUnderTest) -> None:
    unit = agent_unit("sym3")
    agent_files = added(installed, "sym3")
    # the heartbeat, as the running agent keeps it (a fleet's add need not make it)
    beat = installed.home / heartbeat_path("sym3")
    beat.parent.mkdir(parents=True, exist_ok=True)
    beat.write_text("2026-01-01T00:00:00Z\n")
    result = installed.run("remove", "sym3")
    assert result.exit_code == 0, f"remove failed\n{result}"
    assert result.ran("systemctl", "stop", unit), f"remove did not stop {unit}\n{result}"
    assert result.ran("systemctl", "disable", unit), (
        f"remove did not run `systemctl --user disable {unit}`\n{result}"
    )
    state = installed.backend.state()
    assert unit not in state.enabled, f"{unit} is still enabled\n{result}"
    assert unit not in state.active, f"{unit} is still running\n{result}"
    assert "sym3" not in installed.roster_names(), f"sym3 is still in the roster\n{result}"
    left = [p for p in agent_files if p in installed.snapshot().files]
    assert not left, "files made by add are still there:\n  " + "\n  ".join(left) + f"\n{result}"
    assert not beat.exists(), f"the agent's heartbeat {beat} is still there\n{result}"


@pytest.mark.requirement("SYM.4")
def test_remove_keep_files_only_stops(installed: FleetUnderTest) -> None:
    unit = agent_unit("sym4")
    agent_files = added(installed, "sym4")
    result = installed.run("remove", "sym4", "--keep-files")
    assert result.exit_code == 0, f"remove --keep-files failed\n{result}"
    assert result.ran("systemctl", "stop", unit), f"remove did not stop {unit}\n{result}"
    assert not result.ran("systemctl", "disable", unit), (
        f"remove --keep-files disabled {unit}\n{result}"
    )
    state = installed.backend.state()
    assert unit in state.enabled, f"{unit} is no longer enabled\n{result}"
    assert unit not in state.active, f"{unit} is still running\n{result}"
    gone = [p for p in agent_files if p not in installed.snapshot().files]
    assert not gone, "remove --keep-files deleted:\n  " + "\n  ".join(gone) + f"\n{result}"


@pytest.mark.requirement("SYM.5")
def test_failed_disable_on_remove_is_a_warning(installed: FleetUnderTest) -> None:
    unit = agent_unit("sym5")
    added(installed, "sym5", active=False)
    installed.backend.inject_failure("disable", unit, 1, "Failed to disable unit: Access denied")
    result = installed.run("remove", "sym5")
    assert result.exit_code == 0, f"a failed disable made remove fail\n{result}"
    assert "sym5" not in installed.roster_names(), f"sym5 is still in the roster\n{result}"
    assert unit in result.stderr, f"no warning naming {unit} on stderr\n{result}"


@pytest.mark.requirement("SYM.6")
def test_only_rostered_agents_come_back_after_a_reboot(installed: FleetUnderTest) -> None:
    fleet, backend = installed, installed.backend
    for name in ("keep1", "gone1", "keep2", "gone2"):
        fleet.ok("add", name, *WORKER)
    fleet.ok("remove", "gone1")
    fleet.ok("add", "late1", "--runtime", "claude", "--class", "worker", "--no-start")
    fleet.ok("remove", "gone2")
    backend.boot()
    rostered = set(fleet.roster_names())
    state = backend.state()
    assert state.enabled_agents == rostered, (
        f"enabled agent units {sorted(state.enabled_agents)} != roster {sorted(rostered)}"
    )
    assert state.active_agents == rostered, (
        f"after a reboot, running agents {sorted(state.active_agents)} != roster {sorted(rostered)}"
    )


@pytest.mark.requirement("SYM.7")
def test_add_starts_the_unit(installed: FleetUnderTest) -> None:
    unit = agent_unit("sym7")
    result = installed.run("add", "sym7", *WORKER)
    assert result.exit_code == 0, f"add failed\n{result}"
    started = result.ran("systemctl", "start", unit) or [
        c for c in result.ran("systemctl", "enable", unit) if "--now" in c.argv
    ]
    assert started, f"add did not start {unit}\n{result}"
    assert unit in installed.backend.state().active, f"{unit} is not running\n{result}"


@pytest.mark.requirement("SYM.7")
def test_add_no_start_does_not_start(installed: FleetUnderTest) -> None:
    unit = agent_unit("sym7q")
    result = installed.run("add", "sym7q", *WORKER, "--no-start")
    assert result.exit_code == 0, f"add --no-start failed\n{result}"
    assert unit not in installed.backend.state().active, f"add --no-start started {unit}\n{result}"


@pytest.mark.requirement("SYM.7")
def test_failed_start_is_an_error(installed: FleetUnderTest) -> None:
    unit = agent_unit("sym7f")
    installed.backend.inject_failure("start", unit, 1, f"Job for {unit} failed.")
    result = installed.run("add", "sym7f", *WORKER)
    assert result.exit_code != 0, f"add exited 0 though the start failed\n{result}"


@pytest.mark.requirement("SYM.8")
def test_install_writes_enables_and_lingers(fleet: FleetUnderTest) -> None:
    fleet.ok("init", "--profile", "general", "--write")
    result = fleet.run("install")
    assert result.exit_code == 0, f"install failed\n{result}"
    state = fleet.backend.state()
    assert {AGENT_TEMPLATE, HOLDER_UNIT} <= state.unit_files, (
        f"unit files missing; installed: {sorted(state.unit_files)}\n{result}"
    )
    rostered = set(fleet.roster_names())
    assert state.enabled_agents == rostered, (
        f"enabled agents {sorted(state.enabled_agents)} != roster {sorted(rostered)}\n{result}"
    )
    assert HOLDER_UNIT in state.enabled, f"{HOLDER_UNIT} is not enabled after install\n{result}"
    assert state.linger, f"linger is off for {fleet.backend.user}\n{result}"


@pytest.mark.requirement("SYM.9")
def test_ps_reports_an_enabled_unit_outside_the_roster(installed: FleetUnderTest) -> None:
    arrange(installed.backend, "ghost0", enabled=True, active=False)
    result = installed.run("ps")
    assert result.exit_code == 0, f"ps failed\n{result}"
    assert drift_lines(installed, result, "ghost0"), (
        f"ps does not report {agent_unit('ghost0')}: enabled, not in the roster\n{result}"
    )


@pytest.mark.requirement("SYM.9")
def test_ps_reports_rostered_agents_not_enabled_or_not_running(installed: FleetUnderTest) -> None:
    added(installed, "idle0", enabled=True, active=False)
    added(installed, "lost0", enabled=False, active=True)
    added(installed, "busy0", enabled=True, active=True)
    result = installed.run("ps")
    assert result.exit_code == 0, f"ps failed\n{result}"
    assert drift_lines(installed, result, "idle0"), f"idle0 is not shown as not running\n{result}"
    assert drift_lines(installed, result, "lost0"), f"lost0 is not shown as not enabled\n{result}"
    assert not drift_lines(installed, result, "busy0"), (
        f"busy0 is enabled and running, yet ps reports drift for it\n{result}"
    )


# --- the tmux side of drift, runner exceptions, a unit never loaded ----------------------
# (branch `fleet`: new tests only; the checks above are the fleet suite's own.)


def fleet_tmux(backend: Backend, *args: str) -> subprocess.CompletedProcess[str]:
    """``tmux -L mosaic ARGS`` on the backend's system: the fleet's tmux server."""
    env = {**os.environ, **backend.environ()}
    argv = ["tmux", "-L", TMUX_SOCKET, *args]
    return subprocess.run(argv, env=env, capture_output=True, text=True, check=False)


def arrange_session(backend: Backend, name: str, *, present: bool) -> None:
    """Give agent ``name`` its tmux session on the fleet's server, or take it away."""
    session = agent_session(name)
    there = fleet_tmux(backend, "has-session", "-t", f"={session}").returncode == 0
    if present and not there:
        done = fleet_tmux(backend, "new-session", "-d", "-s", session)
    elif there and not present:
        done = fleet_tmux(backend, "kill-session", "-t", f"={session}")
    else:
        return
    if done.returncode != 0:
        raise HarnessError(f"the suite could not arrange tmux session {session}: {done.stderr}")


@pytest.mark.requirement("SYM.9")
def test_ps_reports_a_running_agent_whose_tmux_session_is_missing(
    installed: FleetUnderTest,
) -> None:
    added(installed, "paned0", enabled=True, active=True)
    added(installed, "unpaned0", enabled=True, active=True)
    arrange_session(installed.backend, "paned0", present=True)  # the server runs
    arrange_session(installed.backend, "unpaned0", present=False)
    result = installed.run("ps")
    assert result.exit_code == 0, f"ps failed\n{result}"
    assert drift_lines(installed, result, "unpaned0"), (
        f"ps does not report unpaned0: its unit runs, its tmux session "
        f"{agent_session('unpaned0')!r} on socket {TMUX_SOCKET!r} is missing\n{result}"
    )
    assert not drift_lines(installed, result, "paned0"), (
        f"paned0 runs in its tmux session, yet ps reports drift for it\n{result}"
    )


def unlaunchable_path(fleet: FleetUnderTest, folder: Path, *, after: str | None = None) -> str:
    """The fleet's PATH, on which ``systemctl`` cannot be launched (its exec fails: not
    executable), from the start or once it has run verb ``after``; every other program is
    found as before. Folders that hold another systemctl are shadowed by folders of links to
    all their other programs, since an exec that fails tries the next folder of PATH."""
    path = fleet.environ()["PATH"].split(os.pathsep)
    real = shutil.which("systemctl", path=os.pathsep.join(path))
    if real is None:
        raise HarnessError(f"no systemctl on the fleet's PATH to plant one before: {path}")
    entries = []
    for index, entry in enumerate(path):
        if not (entry and os.path.isfile(os.path.join(entry, "systemctl"))):
            entries.append(entry)
            continue
        shadow = folder / f"shadow{index}"
        shadow.mkdir(parents=True)
        for name in os.listdir(entry):
            if name != "systemctl":
                (shadow / name).symlink_to(os.path.join(entry, name))
        entries.append(str(shadow))
    planted = folder / "bin" / "systemctl"
    planted.parent.mkdir(parents=True)
    if after is None:
        planted.write_text("#!/bin/sh\nexit 0\n")
    else:
        planted.write_text(
            "#!/bin/sh\n"
            f"# systemctl, until it has run `{after}` once; then it can no longer be launched\n"
            f'{shlex.quote(str(real))} "$@"\n'
            "status=$?\n"
            f'case " $* " in *" {after} "*) chmod a-x "$0" ;; esac\n'
            'exit "$status"\n'
        )
        planted.chmod(0o755)
    return os.pathsep.join([str(planted.parent), *entries])


@pytest.mark.requirement("SYM.2")
def test_an_enable_that_cannot_be_launched_on_add_is_a_warning(
    installed: FleetUnderTest, tmp_path: Path
) -> None:
    unit = agent_unit("sym2x")
    env = {"PATH": unlaunchable_path(installed, tmp_path / "path")}
    result = installed.run("add", "sym2x", *WORKER, "--no-start", env=env)
    assert result.exit_code == 0, (
        f"add failed when systemctl could not be launched for the enable\n{result}"
    )
    assert "sym2x" in installed.roster_names(), f"sym2x is not in the roster\n{result}"
    assert unit in result.stderr, f"no warning naming {unit} on stderr\n{result}"


@pytest.mark.requirement("SYM.5")
def test_a_disable_that_cannot_be_launched_on_remove_is_a_warning(
    installed: FleetUnderTest, tmp_path: Path
) -> None:
    unit = agent_unit("sym5x")
    added(installed, "sym5x", active=False)
    env = {"PATH": unlaunchable_path(installed, tmp_path / "path", after="stop")}
    result = installed.run("remove", "sym5x", env=env)
    assert result.exit_code == 0, (
        f"remove failed when systemctl could not be launched after the stop\n{result}"
    )
    assert "sym5x" not in installed.roster_names(), f"sym5x is still in the roster\n{result}"
    assert unit in result.stderr, f"no warning naming {unit} on stderr\n{result}"


@pytest.mark.requirement("SYM.3")
def test_remove_of_an_agent_whose_unit_was_never_loaded(installed: FleetUnderTest) -> None:
    """systemd's answer to a `stop` of a unit it never loaded (a remove before `install`,
    say): exit 5, `Unit ... not loaded.`. Nothing runs under that name, so there is nothing
    to stop: the agent must still be removed (its disable works here, so that only the stop
    is judged)."""
    unit = agent_unit("sym3n")
    added(installed, "sym3n", enabled=True, active=False)
    installed.backend.inject_failure(
        "stop", unit, 5, f"Failed to stop {unit}: Unit {unit} not loaded."
    )
    result = installed.run("remove", "sym3n")
    assert result.exit_code == 0, f"remove refused an agent whose unit was never loaded\n{result}"
    assert "sym3n" not in installed.roster_names(), f"sym3n is still in the roster\n{result}"
    assert unit not in installed.backend.state().enabled, f"{unit} is still enabled\n{result}"
