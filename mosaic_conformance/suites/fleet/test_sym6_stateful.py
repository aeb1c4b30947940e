"""SYM.6 as a state machine: any sequence of adds, removes and reboots keeps the enabled
``mosaic-agent@`` units exactly where a model of the requirements says they must be."""

from __future__ import annotations

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from mosaic_conformance.contract import agent_unit
from mosaic_conformance.harness.fleet import FleetUnderTest, busy_seconds, schema_problems
from mosaic_conformance.harness.plugin import Settings
from mosaic_conformance.harness.systems import BackendSession

from .checks import WORKER, explain

NAMES = st.sampled_from(["a1", "a2", "a3", "a4"])  # few names, so adds and removes collide


@pytest.mark.requirement("SYM.6")
def test_enabled_units_follow_the_roster(
    conformance: Settings,
    backend_session: BackendSession,
    tmp_path_factory: pytest.TempPathFactory,
    request: pytest.FixtureRequest,
    machine_settings: settings,
) -> None:
    fleets: list[FleetUnderTest] = []

    class BootSurvival(RuleBasedStateMachine):
        """Model: ``rostered`` is the roster; ``enabled`` is what must start at boot — the
        roster, plus agents removed with --keep-files, minus injected enable failures, plus
        injected disable failures."""

        def __init__(self) -> None:
            super().__init__()
            root = tmp_path_factory.mktemp("sym6")
            self.fleet = FleetUnderTest(
                conformance.fleet_cmd,
                root / "home",
                backend_session.open(root / "system"),
                conformance.profiles_env,
            )
            fleets.append(self.fleet)
            self.fleet.ok("init", "--profile", "minimal", "--write")
            self.fleet.ok("install")
            self.rostered = set(self.fleet.roster_names())
            self.enabled = set(self.rostered)

        @rule(name=NAMES, start=st.booleans(), enable_fails=st.booleans())
        def add(self, name: str, start: bool, enable_fails: bool) -> None:
            backend = self.fleet.backend
            if enable_fails:
                backend.inject_failure("enable", agent_unit(name))
            result = self.fleet.run("add", name, *WORKER, *([] if start else ["--no-start"]))
            backend.clear_failures()
            if name in self.rostered:
                assert result.exit_code != 0, explain(result, "a duplicate was added")
                return
            assert result.exit_code == 0, explain(result, "add failed")
            self.rostered.add(name)
            if not enable_fails:
                self.enabled.add(name)

        @precondition(lambda self: self.rostered)
        @rule(data=st.data(), keep_files=st.booleans(), disable_fails=st.booleans())
        def remove(self, data: st.DataObject, keep_files: bool, disable_fails: bool) -> None:
            name = data.draw(st.sampled_from(sorted(self.rostered)), label="name")
            backend = self.fleet.backend
            if disable_fails:
                backend.inject_failure("disable", agent_unit(name))
            result = self.fleet.run("remove", name, *(["--keep-files"] if keep_files else []))
            backend.clear_failures()
            assert result.exit_code == 0, explain(result, "remove failed")
            self.rostered.discard(name)
            if not keep_files and not disable_fails:
                self.enabled.discard(name)

        @rule()
        def reboot(self) -> None:
            self.fleet.backend.boot()
            active = self.fleet.backend.state().active_agents
            assert active == self.enabled, (
                f"after a reboot the running agents are {sorted(active)}, expected "
                f"{sorted(self.enabled)} (roster {sorted(self.rostered)})"
            )

        @invariant()
        def enabled_units_match_the_model(self) -> None:
            enabled = self.fleet.backend.state().enabled_agents
            assert enabled == self.enabled, (
                f"enabled agent units {sorted(enabled)}, expected {sorted(self.enabled)} "
                f"(roster {sorted(self.rostered)})\nlast command:\n{self.fleet.history[-1]}"
            )

        @invariant()
        def roster_matches_the_model(self) -> None:
            roster = self.fleet.roster()
            assert not schema_problems(roster), schema_problems(roster)
            assert set(self.fleet.roster_names()) == self.rostered, (
                f"roster {self.fleet.roster_names()}, expected {sorted(self.rostered)}"
            )

    try:
        run_state_machine_as_test(BootSurvival, settings=machine_settings)
    finally:
        history = [r for f in fleets for r in f.history]
        request.node.user_properties.append(("fleet_calls", len(history)))
        request.node.user_properties.append(("fleet_seconds", busy_seconds(history)))
