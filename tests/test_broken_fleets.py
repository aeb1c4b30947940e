"""Proof that the fleet suites catch defects: each broken variant of the reference fails
exactly the requirements it breaks, each in the test planned to catch it, in its call phase,
for the planted reason (a setup error is no catch); every fleet requirement has such a
variant (and the reference itself passes everything: the fleet guide's first runnable
block)."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from conformance_report import Report, caught_as_planted, read_report

from mosaic_conformance.catalogue import CATALOGUE

pytest_plugins = ["pytester"]

BROKEN = Path(__file__).parent / "broken_fleets.py"


@dataclass(frozen=True, slots=True)
class Catch:
    """How a planted defect must be caught: this test fails, in its call phase, saying this."""

    test: str  # the test function's name
    fragment: str  # words of its failure message


C = Catch
SYM1 = C("test_add_enables_the_unit", "did not run `systemctl --user enable")
SYM2_NO_WARNING = C("test_failed_enable_on_add_is_a_warning", "no warning naming")
SYM5_NO_WARNING = C("test_failed_disable_on_remove_is_a_warning", "no warning naming")
SYM6_AFTER_REBOOT = C("test_only_rostered_agents_come_back_after_a_reboot", "enabled agent units")
SYM6_MACHINE = "test_enabled_units_follow_the_roster"
R5_3_ACCEPTED = C("test_corrupted_preset_fails_init_and_writes_nothing", "init accepted a preset")
CONN_REGISTRY = "CONN.1,CONN.2,CONN.3"

# variant -> each requirement its defect must fail (and no other), and how
CATCHES: dict[str, dict[str, Catch]] = {
    "no-enable-on-add": {"SYM.1": SYM1, "SYM.2": SYM2_NO_WARNING, "SYM.6": SYM6_AFTER_REBOOT},
    "enable-only-when-starting": {
        "SYM.1": SYM1,
        "SYM.2": SYM2_NO_WARNING,
        "SYM.6": SYM6_AFTER_REBOOT,
    },
    "escaped-unit-on-enable": {"SYM.1": SYM1},
    "fatal-enable-failure": {
        "SYM.2": C("test_failed_enable_on_add_is_a_warning", "a failed enable made add fail"),
        "SYM.6": C(SYM6_MACHINE, "add failed"),
    },
    "no-disable-on-remove": {
        "SYM.3": C(
            "test_remove_stops_disables_and_forgets", "did not run `systemctl --user disable"
        ),
        "SYM.5": SYM5_NO_WARNING,
        "SYM.6": SYM6_AFTER_REBOOT,
    },
    "disable-despite-keep-files": {
        "SYM.4": C("test_remove_keep_files_only_stops", "remove --keep-files disabled"),
        "SYM.6": C(SYM6_MACHINE, "enabled agent units"),
    },
    "fatal-disable-failure": {
        "SYM.5": C("test_failed_disable_on_remove_is_a_warning", "a failed disable made remove"),
        "SYM.6": C(SYM6_MACHINE, "remove failed"),
    },
    "files-kept-on-remove": {
        "SYM.3": C("test_remove_stops_disables_and_forgets", "files made by add are still there")
    },
    "no-start": {"SYM.7": C("test_add_starts_the_unit", "add did not start")},
    "two-orchestrators-in-general": {
        "R5.1": C(
            "test_every_profile_but_minimal_writes_exactly_one_orchestrator",
            "wrote 2 orchestrator(s)",
        ),
        "R5.3": R5_3_ACCEPTED,
    },
    "write-then-validate-init": {
        "R5.3": C("test_corrupted_preset_fails_init_and_writes_nothing", "left files behind")
    },
    "bad-names-accepted": {
        "ROS.3": C("test_unsafe_agent_names_are_refused", "bad input was accepted")
    },
    "unlocked-in-place-writes": {
        "ROS.5": C("test_concurrent_adds_lose_no_agent", "are not in the roster")
    },
    "prints-token-in-errors": {
        "ROS.4": C("test_tokens_never_reach_output_or_files", "a token reached")
    },
    "in-place-writes": {
        "ROS.5": C("test_adds_killed_at_random_points_lose_nothing_reported", "half-written roster")
    },
    # the checks made exact: each variant passed the suite's old check
    "count-not-named": {
        "R5.3": C(
            "test_corrupted_preset_fails_init_and_writes_nothing",
            "does not name the orchestrator count",
        )
    },
    "warning-without-unit": {"SYM.2": SYM2_NO_WARNING, "SYM.5": SYM5_NO_WARNING},
    "usage-only-refusals": {
        "ROS.3": C("test_unsafe_agent_names_are_refused", "does not name the field `name`")
    },
    "unnamed-top-level-error": {
        "ROS.3": C("test_invalid_roster_is_refused", "the error does not name the problem")
    },
    "heartbeat-kept-on-remove": {"SYM.3": C("test_remove_stops_disables_and_forgets", "heartbeat")},
    "holder-not-enabled": {
        "SYM.8": C("test_install_writes_enables_and_lingers", "is not enabled after install")
    },
    "stale-temp-blocks-writes": {
        "ROS.5": C(
            "test_adds_killed_at_random_points_lose_nothing_reported",
            "kills mid-write the roster cannot take an add",
        )
    },
    # the requirements no variant had shown failing before
    "orchestrator-in-minimal": {
        "R5.2": C("test_minimal_profile_has_no_orchestrator", "minimal wrote orchestrators")
    },
    "second-orchestrator-accepted": {
        "R5.4": C("test_second_orchestrator_is_refused", "a second orchestrator was accepted")
    },
    "only-orchestrator-removable": {
        "R5.5": C("test_removing_the_only_orchestrator_needs_force", "removed without --force")
    },
    "ps-without-drift": {
        "SYM.9": C("test_ps_reports_an_enabled_unit_outside_the_roster", "ps does not report")
    },
    "invalid-default-class": {"ROS.1": C("test_class_defaults_to_worker", "breaks the schema")},
    "adds-a-connector-block": {
        "ROS.2": C("test_roster_without_connector_keeps_working", "added a connector block")
    },
    "unknown-kind-is-tmux": {
        "CONN.1": C("test_an_unknown_kind_is_refused_naming_it", "the fleet made a tmux connector")
    },
    "no-discord-kind": {
        "CONN.1": C("test_each_of_the_three_kinds_is_known", "did not make a discord connector")
    },
    "no-block-no-connector": {
        "CONN.2": C("test_a_roster_without_a_block_makes_the_tmux_connector", "made no connector")
    },
    "not-implemented-without-kind": {
        "CONN.3": C(
            "test_a_kind_without_a_factory_is_not_implemented_naming_it",
            "does not name the kind 'discord'",
        )
    },
    "matrix-user-from-url": {
        "CONN.3": C("test_the_block_reaches_the_matrix_connector_unchanged", "not authenticated")
    },
    # the tmux side of ps, runner exceptions, a unit never loaded (issue 16)
    "ps-asks-systemd-only": {
        "SYM.9": C(
            "test_ps_reports_a_running_agent_whose_tmux_session_is_missing",
            "ps does not report unpaned0",
        )
    },
    "dies-on-runner-exception": {
        "SYM.2": C(
            "test_an_enable_that_cannot_be_launched_on_add_is_a_warning",
            "add failed when systemctl could not be launched",
        ),
        "SYM.5": C(
            "test_a_disable_that_cannot_be_launched_on_remove_is_a_warning",
            "remove failed when systemctl could not be launched",
        ),
    },
    "refuses-remove-of-unloaded-unit": {
        "SYM.3": C(
            "test_remove_of_an_agent_whose_unit_was_never_loaded",
            "remove refused an agent whose unit was never loaded",
        )
    },
}
# variant -> the requirement ids its defect must fail, and no other
EXPECTED = {variant: set(catches) for variant, catches in CATCHES.items()}

# Variants judged on the requirements they name alone (--conformance-only): each undoes one
# thing that only tests of those requirements look at, and a whole suite per variant would
# cost minutes; the variants above show, whole, that the suites fail nothing they should not.
ALONE = {
    "count-not-named": "R5.3",
    "warning-without-unit": "SYM.2,SYM.5",
    "usage-only-refusals": "ROS.3",
    "unnamed-top-level-error": "ROS.3",
    "heartbeat-kept-on-remove": "SYM.3",
    "holder-not-enabled": "SYM.8",
    "stale-temp-blocks-writes": "ROS.5",
    "orchestrator-in-minimal": "R5.2",
    "second-orchestrator-accepted": "R5.4",
    "only-orchestrator-removable": "R5.5",
    "ps-without-drift": "SYM.9",
    "invalid-default-class": "ROS.1",
    "adds-a-connector-block": "ROS.2",
    "unknown-kind-is-tmux": CONN_REGISTRY,
    "no-discord-kind": CONN_REGISTRY,
    "no-block-no-connector": CONN_REGISTRY,
    "not-implemented-without-kind": CONN_REGISTRY,
    "matrix-user-from-url": CONN_REGISTRY,
    "ps-asks-systemd-only": "SYM.9",
    "dies-on-runner-exception": "SYM.2,SYM.5",
    "refuses-remove-of-unloaded-unit": "SYM.3",
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
# judged in every run; a generator runs where it is the test planned to catch the variant.
GENERATORS = (
    "test_generated_agent_names",
    "test_generated_rosters",
    "test_adds_killed_at_random_points_lose_nothing_reported",
    "test_enabled_units_follow_the_roster",
)


def run_suite(pytester: pytest.Pytester, variant: str) -> tuple[int, Report]:
    pytester.makeconftest(PROOF_PROFILE)
    planned = {catch.test for catch in CATCHES[variant].values()}
    selection = " and ".join(f"not {test}" for test in GENERATORS if test not in planned)
    only = ALONE.get(variant)
    result = pytester.runpytest_subprocess(
        *("--conformance", "--conformance-strict", "--conformance-report", "out"),
        *("--conformance-fleet-cmd", f"{sys.executable} {BROKEN} {variant}"),
        *("--conformance-fleet-profiles-env", "MOSAIC_FLEET_PROFILES"),
        *("--hypothesis-profile", "mosaic-proof", "-p", "no:cacheprovider"),
        *(("-k", selection) if selection else ()),
        *(("--conformance-only", only) if only else ()),
    )
    return result.ret, read_report(pytester.path / "out")


def as_planted(report: Report, variant: str) -> list[str]:
    """How the run's verdict on ``variant`` differs from the plan: other requirements failed,
    a planned catch missed (another test, another phase, other words), or a test that ended
    in an error (nothing judged there, so nothing of it may count)."""
    failed = report.with_outcome("failed")
    problems = [
        f"{rid} failed too: {reason}"
        for rid, reason in report.reasons(failed - EXPECTED[variant]).items()
    ]
    for rid, catch in CATCHES[variant].items():
        problems += caught_as_planted(report, rid, catch.test, catch.fragment)
    problems += [
        f"{t.name} ended in an error ({t.phase}): {t.message[:300]}"
        for entry in report.requirements.values()
        for t in entry.results
        if t.outcome == "error"
    ]
    return problems


# a whole suite run each; generous, since a loaded machine may be several times slower
pytestmark = pytest.mark.timeout(1800)


# Judged with the same whole-suite run in tests/test_secrets.py, which also checks that no
# output and no report shows the token the variant prints.
JUDGED_IN_TEST_SECRETS = "prints-token-in-errors"


@pytest.mark.parametrize("variant", [v for v in CATCHES if v != JUDGED_IN_TEST_SECRETS])
def test_suite_fails_a_broken_fleet_on_exactly_its_requirements(
    pytester: pytest.Pytester, variant: str
) -> None:
    ret, report = run_suite(pytester, variant)
    problems = as_planted(report, variant)
    assert not problems, "\n".join(problems)
    assert ret == 1


def test_every_fleet_requirement_is_shown_failing() -> None:
    """Each requirement the fleet suites judge has a variant planted to fail it."""
    fleet = {rid for rid, req in CATALOGUE.items() if req.subject == "fleet"}
    shown = {rid for catches in CATCHES.values() for rid in catches}
    assert sorted(fleet - shown) == []


def test_the_reference_is_judged_whole_and_strictly_by_the_fleet_guide() -> None:
    """The reference's own whole-suite run is the fleet guide's first runnable block (run as
    written by tests/test_docs.py): strict, so any requirement it misses fails that test.
    One such run is enough; this keeps the block what it must be."""
    guide = (Path(__file__).parent.parent / "docs" / "validating-a-fleet.md").read_text()
    first = guide.split("<!-- runnable -->\n```sh\n", 1)[1].split("\n", 1)[0]
    assert first == "pytest --conformance --conformance-strict -p no:cacheprovider -q"


def test_a_fleet_that_does_nothing_passes_no_requirement(pytester: pytest.Pytester) -> None:
    """`false` as the fleet: nothing it did can meet a requirement (issue 15's acceptance)."""
    result = pytester.runpytest_subprocess(
        *("--conformance", "--conformance-report", "out", "-p", "no:cacheprovider"),
        *("--conformance-fleet-cmd", "false"),
    )
    report = read_report(pytester.path / "out")
    assert report.with_outcome("passed") == set(), report.reasons(report.with_outcome("passed"))
    assert report.with_outcome("failed") >= {"R5.1", "SYM.1", "ROS.1", "CONN.2"}
    assert result.ret == 1
