"""The broken fleets that get enable/disable wrong fail on a real systemd too, on each
container engine (Docker, Podman), naming the same requirement ids as on the fake backend
(``test_broken_fleets.EXPECTED``).

Only the tests of the requirements each variant breaks run (``--conformance-only``: the fake
backend's runs show that nothing else fails; the reference's run here that nothing fails on
systemd that should not), and Hypothesis does not shrink a failing SYM.6 sequence: on a real
systemd each replay costs seconds, and the first failing sequence is enough to name the
requirement.
"""

from __future__ import annotations

import json
import sys

import pytest
from conformance_report import caught_as_planted, read_report
from test_broken_fleets import BROKEN, CATCHES, EXPECTED, PROOF_PROFILE

from mosaic_conformance.harness.systems import BackendUnavailable
from mosaic_conformance.harness.systems.engine import find_engine

pytest_plugins = ["pytester"]

# whole suite runs on a real systemd: minutes on a loaded machine
pytestmark = pytest.mark.timeout(1800)

VARIANTS = (
    "no-enable-on-add",
    "enable-only-when-starting",
    "fatal-enable-failure",
    "no-disable-on-remove",
    "disable-despite-keep-files",
    "fatal-disable-failure",
)
# On Podman, one variant of each kind (a missing enable, a missing disable): the engine's own
# part (restarts, the channel) is the same for all of them, and each run costs most of a minute.
ON_PODMAN = ("no-enable-on-add", "no-disable-on-remove")


@pytest.fixture(scope="module", params=("docker", "podman"))
def engine(request: pytest.FixtureRequest) -> str:
    """The engine's name; its tests are skipped, with the reason, where it cannot run."""
    try:
        find_engine(request.param)
    except BackendUnavailable as exc:
        pytest.skip(str(exc))
    return str(request.param)


def run_on_systemd(
    pytester: pytest.Pytester, engine: str, *args: str
) -> tuple[int, dict[str, dict[str, str]]]:
    """The fleet suite on the systemd backend on ``engine``, two workers: its exit status and
    its report's requirements by id."""
    result = pytester.runpytest_subprocess(
        *("--conformance", "--conformance-strict", "--conformance-backend", "systemd"),
        *("--conformance-container-engine", engine),
        *("--conformance-report", "out", "-p", "no:cacheprovider", "-n", "2"),
        *args,
    )
    report = json.loads((pytester.path / "out" / "conformance.json").read_text())
    return result.ret, {r["id"]: r for r in report["requirements"]}


def test_the_reference_meets_every_fleet_requirement_on_systemd(
    pytester: pytest.Pytester, engine: str
) -> None:
    """The whole fleet suite on a real systemd: SYM.6 across real reboots, SYM.8's linger."""
    ret, requirements = run_on_systemd(pytester, engine)
    fleet = {rid: r for rid, r in requirements.items() if r["subject"] == "fleet"}
    assert {rid: r["reason"] for rid, r in fleet.items() if r["outcome"] != "passed"} == {}
    assert ret == 0


@pytest.mark.parametrize("variant", VARIANTS)
def test_a_broken_fleet_fails_the_same_sym_requirements_on_systemd(
    pytester: pytest.Pytester, engine: str, variant: str
) -> None:
    if engine == "podman" and variant not in ON_PODMAN:
        pytest.skip(f"judged on Docker; on Podman only {', '.join(ON_PODMAN)} run")
    pytester.makeconftest(PROOF_PROFILE)
    expected = {rid for rid in EXPECTED[variant] if rid.startswith("SYM.")}
    ret, _ = run_on_systemd(
        pytester,
        engine,
        *("--conformance-only", ",".join(sorted(expected))),
        *("--hypothesis-profile", "mosaic-proof"),
        *("--conformance-fleet-cmd", f"{sys.executable} {BROKEN} {variant}"),
        *("--conformance-fleet-profiles-env", "MOSAIC_FLEET_PROFILES"),
    )
    report = read_report(pytester.path / "out")
    problems = [f"failed too: {rid}" for rid in report.with_outcome("failed") - expected]
    for rid in sorted(expected):
        catch = CATCHES[variant][rid]
        problems += caught_as_planted(report, rid, catch.test, catch.fragment)
    assert not problems, "\n".join(problems)
    assert ret == 1
