"""SYM: what `fleet add` enables, `fleet remove` disables, so nothing resurrects at boot."""

from __future__ import annotations

import pytest

from mosaic_conformance.contract import HOLDER_UNIT, agent_unit
from mosaic_conformance.harness import FleetUnderTest

from .checks import add, drift_lines, explain, systemctl_calls


@pytest.mark.requirement("SYM.1")
@pytest.mark.parametrize("start", [True, False], ids=["start", "no-start"])
def test_add_enables_the_unit(installed: FleetUnderTest, start: bool) -> None:
    fleet, backend = installed, installed.backend
    unit = agent_unit("sym1")
    result = add(fleet, "sym1", *([] if start else ["--no-start"]))
    assert result.exit_code == 0, explain(result, backend, "add failed")
    assert systemctl_calls(backend, "enable", unit), explain(
        result, backend, f"add did not run `systemctl --user enable {unit}`"
    )
    assert unit in backend.state().enabled, explain(
        result, backend, f"{unit} is not enabled after add"
    )


@pytest.mark.requirement("SYM.2")
def test_failed_enable_on_add_is_a_warning(installed: FleetUnderTest) -> None:
    fleet, backend = installed, installed.backend
    unit = agent_unit("sym2")
    backend.inject_failure("enable", unit, 1, f"Failed to enable unit {unit}: Access denied")
    result = add(fleet, "sym2", "--no-start")
    assert result.exit_code == 0, explain(result, backend, "a failed enable made add fail")
    assert "sym2" in fleet.roster_names(), explain(result, backend, "sym2 is not in the roster")
    assert unit in result.stderr, explain(result, backend, f"no warning naming {unit} on stderr")


@pytest.mark.requirement("SYM.3")
def test_remove_stops_disables_and_forgets(installed: FleetUnderTest) -> None:
    fleet, backend = installed, installed.backend
    unit = agent_unit("sym3")
    before_add = fleet.snapshot()
    fleet.ok("add", "sym3", "--runtime", "codex", "--class", "worker")
    agent_files = [p for p in before_add.added(fleet.snapshot()) if p != str(fleet.roster_path)]
    result = fleet.run("remove", "sym3")
    assert result.exit_code == 0, explain(result, backend, "remove failed")
    assert systemctl_calls(backend, "stop", unit), explain(result, backend, f"{unit} not stopped")
    assert systemctl_calls(backend, "disable", unit), explain(
        result, backend, f"remove did not run `systemctl --user disable {unit}`"
    )
    state = backend.state()
    assert unit not in state.enabled, explain(result, backend, f"{unit} is still enabled")
    assert unit not in state.active, explain(result, backend, f"{unit} is still running")
    assert "sym3" not in fleet.roster_names(), explain(result, backend, "sym3 is still rostered")
    left = [p for p in agent_files if p in fleet.snapshot().files]
    assert not left, explain(
        result, backend, "files made by add are still there:\n  " + "\n  ".join(left)
    )


@pytest.mark.requirement("SYM.4")
def test_remove_keep_files_only_stops(installed: FleetUnderTest) -> None:
    fleet, backend = installed, installed.backend
    unit = agent_unit("sym4")
    before_add = fleet.snapshot()
    fleet.ok("add", "sym4", "--runtime", "codex", "--class", "worker")
    after_add = fleet.snapshot()
    agent_files = [p for p in before_add.added(after_add) if p != str(fleet.roster_path)]
    result = fleet.run("remove", "sym4", "--keep-files")
    assert result.exit_code == 0, explain(result, backend, "remove --keep-files failed")
    assert systemctl_calls(backend, "stop", unit), explain(result, backend, f"{unit} not stopped")
    assert not systemctl_calls(backend, "disable", unit), explain(
        result, backend, f"remove --keep-files disabled {unit}"
    )
    state = backend.state()
    assert unit in state.enabled, explain(result, backend, f"{unit} is no longer enabled")
    assert unit not in state.active, explain(result, backend, f"{unit} is still running")
    gone = [p for p in agent_files if p not in fleet.snapshot().files]
    assert not gone, explain(
        result, backend, "remove --keep-files deleted:\n  " + "\n  ".join(gone)
    )


@pytest.mark.requirement("SYM.5")
def test_failed_disable_on_remove_is_a_warning(installed: FleetUnderTest) -> None:
    fleet, backend = installed, installed.backend
    unit = agent_unit("sym5")
    fleet.ok("add", "sym5", "--runtime", "codex", "--class", "worker", "--no-start")
    backend.inject_failure("disable", unit, 1, f"Failed to disable unit {unit}: Access denied")
    result = fleet.run("remove", "sym5")
    assert result.exit_code == 0, explain(result, backend, "a failed disable made remove fail")
    assert "sym5" not in fleet.roster_names(), explain(result, backend, "sym5 is still rostered")
    assert unit in result.stderr, explain(result, backend, f"no warning naming {unit} on stderr")


@pytest.mark.requirement("SYM.6")
def test_only_rostered_agents_come_back_after_a_reboot(installed: FleetUnderTest) -> None:
    fleet, backend = installed, installed.backend
    for name in ("keep1", "gone1", "keep2", "gone2"):
        fleet.ok("add", name, "--runtime", "codex", "--class", "worker")
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
    fleet, backend = installed, installed.backend
    unit = agent_unit("sym7")
    result = add(fleet, "sym7")
    assert result.exit_code == 0, explain(result, backend, "add failed")
    assert systemctl_calls(backend, "start", unit) or any(
        "--now" in c.argv for c in systemctl_calls(backend, "enable", unit)
    ), explain(result, backend, f"add did not start {unit}")
    assert unit in backend.state().active, explain(result, backend, f"{unit} is not running")


@pytest.mark.requirement("SYM.7")
def test_add_no_start_does_not_start(installed: FleetUnderTest) -> None:
    fleet, backend = installed, installed.backend
    unit = agent_unit("sym7q")
    result = add(fleet, "sym7q", "--no-start")
    assert result.exit_code == 0, explain(result, backend, "add --no-start failed")
    assert unit not in backend.state().active, explain(
        result, backend, f"add --no-start started {unit}"
    )


@pytest.mark.requirement("SYM.7")
def test_failed_start_is_an_error(installed: FleetUnderTest) -> None:
    fleet, backend = installed, installed.backend
    unit = agent_unit("sym7f")
    backend.inject_failure("start", unit, 1, f"Job for {unit} failed.")
    result = add(fleet, "sym7f")
    assert result.exit_code != 0, explain(result, backend, "add exited 0 though start failed")


@pytest.mark.requirement("SYM.8")
def test_install_writes_enables_and_lingers(fleet: FleetUnderTest) -> None:
    backend = fleet.backend
    fleet.ok("init", "--profile", "general", "--write")
    result = fleet.run("install")
    assert result.exit_code == 0, explain(result, backend, "install failed")
    state = backend.state()
    assert {"mosaic-agent@.service", HOLDER_UNIT} <= state.unit_files, explain(
        result, backend, f"unit files missing; installed: {sorted(state.unit_files)}"
    )
    rostered = set(fleet.roster_names())
    assert state.enabled_agents == rostered, explain(
        result,
        backend,
        f"enabled agents {sorted(state.enabled_agents)} != roster {sorted(rostered)}",
    )
    assert state.linger, explain(result, backend, f"linger is off for {backend.user}")


@pytest.mark.requirement("SYM.9")
def test_ps_reports_an_enabled_unit_outside_the_roster(installed: FleetUnderTest) -> None:
    fleet, backend = installed, installed.backend
    fleet.ok("add", "ghost0", "--runtime", "codex", "--class", "worker")
    fleet.ok("remove", "ghost0", "--keep-files")  # leaves the unit enabled
    result = fleet.run("ps")
    assert result.exit_code == 0, explain(result, backend, "ps failed")
    assert drift_lines(result, "ghost0"), explain(
        result, backend, f"ps does not report {agent_unit('ghost0')}: enabled, not in the roster"
    )


@pytest.mark.requirement("SYM.9")
def test_ps_reports_rostered_agents_not_enabled_or_not_running(installed: FleetUnderTest) -> None:
    fleet, backend = installed, installed.backend
    fleet.ok("add", "idle0", "--runtime", "codex", "--class", "worker", "--no-start")
    fleet.ok("add", "busy0", "--runtime", "codex", "--class", "worker")
    backend.inject_failure("enable", agent_unit("lost0"))
    fleet.ok("add", "lost0", "--runtime", "codex", "--class", "worker", "--no-start")
    result = fleet.run("ps")
    assert result.exit_code == 0, explain(result, backend, "ps failed")
    assert drift_lines(result, "idle0"), explain(
        result, backend, "idle0 is not shown as not running"
    )
    assert drift_lines(result, "lost0"), explain(
        result, backend, "lost0 is not shown as not enabled"
    )
    assert not drift_lines(result, "busy0"), explain(
        result, backend, "busy0 is enabled and running, yet ps reports drift for it"
    )
