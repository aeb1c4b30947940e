"""Proof that the fleet suites catch defects: each broken variant of the reference fails
exactly the requirements it breaks, every requirement judged (and the reference itself passes
everything: the fleet guide's first runnable block)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from conformance_report import caught_as_planted, read_report

pytest_plugins = ["pytester"]

BROKEN = Path(__file__).parent / "broken_fleets.py"

# variant -> the requirement ids its defect must fail (and no other)
EXPECTED = {
    "no-enable-on-add": {"SYM.1", "SYM.2", "SYM.6"},
    "enable-only-when-starting": {"SYM.1", "SYM.2", "SYM.6"},
    "fatal-enable-failure": {"SYM.2", "SYM.6"},
    "no-disable-on-remove": {"SYM.3", "SYM.5", "SYM.6"},
    "disable-despite-keep-files": {"SYM.4", "SYM.6"},
    "fatal-disable-failure": {"SYM.5", "SYM.6"},
    "files-kept-on-remove": {"SYM.3"},
    "no-start": {"SYM.7"},
    "two-orchestrators-in-general": {"R5.1", "R5.3"},
    "write-then-validate-init": {"R5.3"},
    "bad-names-accepted": {"ROS.3"},
    "unlocked-in-place-writes": {"ROS.5"},
    "prints-token-in-errors": {"ROS.4"},
    "in-place-writes": {"ROS.5"},
}


# For the broken variants: the suites' own `mosaic-ci` cases (the same derandomised examples)
# without shrinking a failure, which only makes its report shorter and costs a state machine
# on a broken fleet many more fleet calls.
PROOF_PROFILE = """
from hypothesis import HealthCheck, Phase, settings

settings.register_profile(
    "mosaic-proof",
    max_examples=5,
    stateful_step_count=8,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
    phases=[Phase.explicit, Phase.generate],
)
"""


# The suites' generators (generated input, killed writers, the state machine) cost half of a
# run. Each requirement they judge also has tests of its own, so every requirement is still
# judged in every run; a generator runs where the variant breaks the requirement it aims at.
GENERATORS = {
    "ROS.3": ("test_generated_agent_names", "test_generated_rosters"),
    "ROS.5": ("test_adds_killed_at_random_points_lose_nothing_reported",),
    "SYM.6": ("test_enabled_units_follow_the_roster",),
}


def run_suite(pytester: pytest.Pytester, variant: str) -> tuple[int, dict[str, dict[str, str]]]:
    pytester.makeconftest(PROOF_PROFILE)
    selection = " and ".join(
        f"not {test}"
        for rid, tests in GENERATORS.items()
        if rid not in EXPECTED[variant]
        for test in tests
    )
    result = pytester.runpytest_subprocess(
        *("--conformance", "--conformance-strict", "--conformance-report", "out"),
        *("--conformance-fleet-cmd", f"{sys.executable} {BROKEN} {variant}"),
        *("--conformance-fleet-profiles-env", "MOSAIC_FLEET_PROFILES"),
        *("--hypothesis-profile", "mosaic-proof", "-p", "no:cacheprovider"),
        *(("-k", selection) if selection else ()),
    )
    report = json.loads((pytester.path / "out" / "conformance.json").read_text())
    return result.ret, {r["id"]: r for r in report["requirements"]}


# a whole suite run each; generous, since a loaded machine may be several times slower
pytestmark = pytest.mark.timeout(1800)


# Judged with the same whole-suite run in tests/test_secrets.py, which also checks that no
# output and no report shows the token the variant prints.
JUDGED_IN_TEST_SECRETS = "prints-token-in-errors"


@pytest.mark.parametrize("variant", [v for v in EXPECTED if v != JUDGED_IN_TEST_SECRETS])
def test_suite_fails_a_broken_fleet_on_exactly_its_requirements(
    pytester: pytest.Pytester, variant: str
) -> None:
    ret, requirements = run_suite(pytester, variant)
    failed = {rid for rid, r in requirements.items() if r["outcome"] == "failed"}
    unexpected = {rid: requirements[rid]["reason"] for rid in failed ^ EXPECTED[variant]}
    assert failed == EXPECTED[variant], f"failed {sorted(failed)}; differences: {unexpected}"
    assert ret == 1


def test_the_reference_is_judged_whole_and_strictly_by_the_fleet_guide() -> None:
    """The reference's own whole-suite run is the fleet guide's first runnable block (run as
    written by tests/test_docs.py): strict, so any requirement it misses fails that test.
    One such run is enough; this keeps the block what it must be."""
    guide = (Path(__file__).parent.parent / "docs" / "validating-a-fleet.md").read_text()
    first = guide.split("<!-- runnable -->\n```sh\n", 1)[1].split("\n", 1)[0]
    assert first == "pytest --conformance --conformance-strict -p no:cacheprovider -q"


# --- branch `fleet`: each variant judged on its requirement alone (--conformance-only): it
# differs from the reference only where the new tests look, and the reference's own strict
# whole-suite run (the fleet guide's first block) passes them all.

FLEET_BRANCH_CATCHES = {
    # variant: [(requirement, the test meant to catch it, a fragment of its message)]
    "ps-asks-systemd-only": [
        (
            "SYM.9",
            "test_ps_reports_a_running_agent_whose_tmux_session_is_missing",
            "ps does not report unpaned0",
        )
    ],
    "dies-on-runner-exception": [
        (
            "SYM.2",
            "test_an_enable_that_cannot_be_launched_on_add_is_a_warning",
            "add failed when systemctl could not be launched",
        ),
        (
            "SYM.5",
            "test_a_disable_that_cannot_be_launched_on_remove_is_a_warning",
            "remove failed when systemctl could not be launched",
        ),
    ],
    "refuses-remove-of-unloaded-unit": [
        (
            "SYM.3",
            "test_remove_of_an_agent_whose_unit_was_never_loaded",
            "remove refused an agent whose unit was never loaded",
        )
    ],
}


@pytest.mark.parametrize("variant", FLEET_BRANCH_CATCHES)
def test_the_new_checks_catch_their_variant(pytester: pytest.Pytester, variant: str) -> None:
    catches = FLEET_BRANCH_CATCHES[variant]
    only = sorted({rid for rid, _, _ in catches})
    result = pytester.runpytest_subprocess(
        *("--conformance", "--conformance-strict", "--conformance-report", "out"),
        *("--conformance-fleet-cmd", f"{sys.executable} {BROKEN} {variant}"),
        *("--conformance-only", ",".join(only), "-p", "no:cacheprovider"),
    )
    report = read_report(pytester.path / "out")
    assert report.with_outcome("failed") == set(only), report.reasons(set(report.requirements))
    for rid, test, fragment in catches:
        assert not caught_as_planted(report, rid, test, fragment)
    assert result.ret == 1
