"""R5: a fleet has exactly one orchestrator (the `minimal` preset has none)."""

from __future__ import annotations

import pytest
import yaml

from mosaic_conformance.harness.fleet import FleetUnderTest
from mosaic_conformance.harness.plugin import conformance_settings

from .checks import ONE_ORCHESTRATOR, WORKER, assert_valid_roster, names_the_count

pytestmark = pytest.mark.usefixtures("backend")


def orchestrators(fleet: FleetUnderTest) -> list[str]:
    agents = (fleet.roster() or {}).get("agents") or []
    return [a.get("name") for a in agents if a.get("class", "worker") == "orchestrator"]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "profile" in metafunc.fixturenames:
        profiles = [p for p in conformance_settings(metafunc.config).profiles if p != "minimal"]
        metafunc.parametrize("profile", profiles or ["general"])


@pytest.mark.requirement("R5.1")
def test_every_profile_but_minimal_writes_exactly_one_orchestrator(
    fleet: FleetUnderTest, profile: str
) -> None:
    result = fleet.run("init", "--profile", profile, "--write")
    assert result.exit_code == 0, f"init of profile {profile!r} failed:\n{result}"
    assert_valid_roster(fleet, result)
    found = orchestrators(fleet)
    assert len(found) == 1, (
        f"profile {profile!r} wrote {len(found)} orchestrator(s) {found}, expected exactly 1\n"
        f"{result}"
    )


@pytest.mark.requirement("R5.2")
def test_minimal_profile_has_no_orchestrator(fleet: FleetUnderTest) -> None:
    result = fleet.run("init", "--profile", "minimal", "--write")
    assert result.exit_code == 0, f"init of the minimal profile failed:\n{result}"
    assert_valid_roster(fleet, result)
    assert orchestrators(fleet) == [], f"minimal wrote orchestrators {orchestrators(fleet)}"


def _corrupted_general(orchestrator_count: int) -> dict[str, object]:
    agents = [
        {"name": f"orch{i}", "runtime": "pi", "class": "orchestrator"}
        for i in range(orchestrator_count)
    ]
    agents += [{"name": "coder0", "runtime": "codex", "class": "worker"}]
    return {"version": 1, "transport": "tmux", "agents": agents}


@pytest.fixture
def profiles_folder(fleet: FleetUnderTest) -> FleetUnderTest:
    if not fleet.profiles_env:
        pytest.skip(
            "the fleet declares no profile folder variable (--conformance-fleet-profiles-env), "
            "so no corrupted preset can be planted"
        )
    return fleet


@pytest.mark.requirement("R5.3")
@pytest.mark.parametrize("count", [0, 2])
def test_corrupted_preset_fails_init_and_writes_nothing(
    profiles_folder: FleetUnderTest, count: int
) -> None:
    fleet = profiles_folder
    fleet.plant_profile("general", _corrupted_general(count))
    before = fleet.snapshot()
    result = fleet.run("init", "--profile", "general", "--write")
    assert result.exit_code != 0, f"init accepted a preset with {count} orchestrators:\n{result}"
    assert names_the_count(fleet, result, count, "orchestrator"), (
        f"the error does not name the orchestrator count ({count}):\n{result}"
    )
    changes = before.changes(fleet.snapshot())
    assert not changes, (
        "init failed but left files behind (a malformed roster?):\n  "
        + "\n  ".join(changes)
        + f"\n{result}"
    )


@pytest.mark.requirement("R5.3")
def test_corrupted_preset_leaves_an_earlier_roster_untouched(
    profiles_folder: FleetUnderTest,
) -> None:
    fleet = profiles_folder
    fleet.ok("init", "--profile", "minimal", "--write")
    earlier = fleet.roster_path.read_bytes()
    before = fleet.snapshot()
    fleet.plant_profile("general", _corrupted_general(2))
    result = fleet.run("init", "--profile", "general", "--write", "--force")
    assert result.exit_code != 0, f"init --force accepted a preset with 2 orchestrators:\n{result}"
    assert fleet.roster_path.read_bytes() == earlier, (
        f"the earlier roster was changed by a failed init:\n{result}"
    )
    assert not before.changes(fleet.snapshot()), "a failed init changed files"


@pytest.fixture
def one_orchestrator(fleet: FleetUnderTest) -> FleetUnderTest:
    """An installed fleet with exactly one orchestrator, whatever the fleet's presets hold
    (R5.4 and R5.5 are judged apart from R5.1)."""
    fleet.plant_roster(yaml.safe_dump(ONE_ORCHESTRATOR, sort_keys=False))
    fleet.ok("install")
    return fleet


@pytest.mark.requirement("R5.4")
def test_second_orchestrator_is_refused(one_orchestrator: FleetUnderTest) -> None:
    fleet = one_orchestrator
    before = fleet.snapshot()
    state = fleet.backend.state()
    result = fleet.run("add", "orch2", "--runtime", "pi", "--class", "orchestrator", "--no-start")
    assert result.exit_code != 0, f"a second orchestrator was accepted:\n{result}"
    assert "orch2" not in fleet.roster_names(), "the refused orchestrator is in the roster"
    assert not before.changes(fleet.snapshot()), "a refused add changed files"
    assert fleet.backend.state() == state, "a refused add changed systemd"


@pytest.mark.requirement("R5.5")
def test_removing_the_only_orchestrator_needs_force(one_orchestrator: FleetUnderTest) -> None:
    fleet = one_orchestrator
    (only,) = orchestrators(fleet)
    before = fleet.snapshot()
    state = fleet.backend.state()
    refused = fleet.run("remove", only)
    assert refused.exit_code != 0, f"the only orchestrator was removed without --force:\n{refused}"
    assert only in fleet.roster_names(), "the orchestrator left the roster"
    assert not before.changes(fleet.snapshot()), "a refused remove changed files"
    assert fleet.backend.state() == state, "a refused remove changed systemd"
    forced = fleet.run("remove", only, "--force")
    assert forced.exit_code == 0, f"remove --force of the orchestrator failed:\n{forced}"
    assert only not in fleet.roster_names()


@pytest.mark.requirement("R5.4")
def test_refused_orchestrator_does_not_block_workers(one_orchestrator: FleetUnderTest) -> None:
    """The refusal is about the class, not a broken roster: a worker still gets in."""
    fleet = one_orchestrator
    fleet.run("add", "orch2", "--runtime", "pi", "--class", "orchestrator", "--no-start")
    result = fleet.run("add", "helper0", *WORKER, "--no-start")
    assert result.exit_code == 0, f"a worker could not be added after a refusal:\n{result}"
    assert "helper0" in fleet.roster_names()
