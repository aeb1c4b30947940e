"""SYM: what `fleet add` enables, `fleet remove` disables, so nothing resurrects at boot.

Each test judges one requirement: a starting state that another requirement would produce
(an enabled, running unit before a remove, say) is arranged by the suite itself through
``backend.systemctl``, so a fleet that breaks SYM.1 fails SYM.1, not SYM.4 as well.
"""

from __future__ import annotations

import pytest

from mosaic_conformance.contract import AGENT_TEMPLATE, HOLDER_UNIT, agent_unit, heartbeat_path
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
@pytest.mark.parametrize("start", [True, False], ids=["start", "no-start"])
def test_add_enables_the_unit(installed: FleetUnderTest, start: bool) -> None:
    unit = agent_unit("sym1")
    result = installed.run("add", "sym1", *WORKER, *([] if start else ["--no-start"]))
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
