"""The plugin itself, through real pytest runs on small synthetic suites (pytester).

Each case plants a suite of its own (``synthetic_suites``), so it controls exactly which
requirement passes or fails.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from xml.etree import ElementTree

import pytest
from synthetic_suites import plant_suite

pytest_plugins = ["pytester"]


def make_suite(pytester: pytest.Pytester, **tests: str) -> None:
    """``tests``: test name -> body; each body starts with its marker line(s)."""
    source = "import pytest\n\n" + "\n\n".join(
        textwrap.dedent(body).strip().replace("def test(", f"def {name}(", 1)
        for name, body in tests.items()
    )
    plant_suite(pytester, source + "\n")


PASS_MUST = """
@pytest.mark.requirement("SYM.1")
def test():
    pass
"""
FAIL_MUST = """
@pytest.mark.requirement("R5.3")
def test():
    assert False, "init wrote a malformed roster"
"""
FAIL_SHOULD = """
@pytest.mark.requirement("SYM.9")
def test():
    assert False, "ps reports no drift"
"""


def report(pytester: pytest.Pytester) -> dict:  # type: ignore[type-arg]
    return json.loads((pytester.path / "out" / "conformance.json").read_text())


def outcomes(pytester: pytest.Pytester) -> dict[str, str]:
    return {r["id"]: r["outcome"] for r in report(pytester)["requirements"]}


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest(
        "--conformance", "--conformance-report", "out", "-p", "no:cacheprovider", *args
    )


def test_must_failure_gates_and_is_reported(pytester: pytest.Pytester) -> None:
    make_suite(pytester, test_ok=PASS_MUST, test_bad=FAIL_MUST)
    result = run(pytester)
    assert result.ret == 1
    result.stdout.fnmatch_lines(
        [
            "*mosaic conformance*",
            "R5.3*MUST*FAILED*init wrote a malformed roster*",
            "SYM.1*MUST*PASSED*",
            "gate: FAILED: R5.3*",
        ]
    )
    data = report(pytester)
    assert data["gate"] == "failed"
    assert data["catalogue_version"]
    by_id = {r["id"]: r for r in data["requirements"]}
    assert by_id["R5.3"]["outcome"] == "failed"
    assert by_id["R5.3"]["tests"]
    assert "malformed" in by_id["R5.3"]["reason"]
    assert by_id["R5.1"]["outcome"] == "skipped"  # no test of it ran here
    assert {"backend", "fleet_cmd", "requirements"} <= data.keys()
    md = (pytester.path / "out" / "conformance.md").read_text()
    assert md.index("## Failures") < md.index("## All requirements")
    assert "init wrote a malformed roster" in md
    assert "> A non-minimal preset" in md


def test_should_failure_gates_only_with_strict(pytester: pytest.Pytester) -> None:
    make_suite(pytester, test_ok=PASS_MUST, test_should=FAIL_SHOULD)
    assert run(pytester).ret == 0
    assert outcomes(pytester)["SYM.9"] == "failed"
    assert report(pytester)["gate"] == "passed"
    assert run(pytester, "--strict").ret == 1


def test_expectations_turn_failures_into_xfail_and_flag_unexpected_passes(
    pytester: pytest.Pytester,
) -> None:
    make_suite(pytester, test_ok=PASS_MUST, test_bad=FAIL_MUST)
    pytester.makefile(
        ".yaml", expect='R5.3: "the seed writes first (#612)"\nSYM.1: "not enabled yet"\n'
    )
    result = run(pytester, "--conformance-expect", "expect.yaml")
    assert result.ret == 0
    assert {k: outcomes(pytester)[k] for k in ("R5.3", "SYM.1")} == {
        "R5.3": "xfailed",
        "SYM.1": "xpassed",
    }
    result.stdout.fnmatch_lines(["SYM.1*XPASSED*take it out of the expectations file*"])
    assert run(pytester, "--conformance-expect", "expect.yaml", "--strict").ret == 1


def test_bad_expectations_file_is_a_usage_error(pytester: pytest.Pytester) -> None:
    make_suite(pytester, test_ok=PASS_MUST)
    pytester.makefile(".yaml", expect="R9.9: nope\nSYM.1: ''\n")
    result = run(pytester, "--conformance-expect", "expect.yaml")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*'R9.9' is not a requirement id*SYM.1: the reason must be*"])


def test_skip_option_reports_skipped_and_rejects_unknown_ids(pytester: pytest.Pytester) -> None:
    make_suite(pytester, test_ok=PASS_MUST, test_bad=FAIL_MUST)
    assert run(pytester, "--conformance-skip", "R5.3").ret == 0
    assert outcomes(pytester)["R5.3"] == "skipped"
    assert "--conformance-skip" in report(pytester)["requirements"][2]["reason"]
    result = run(pytester, "--conformance-skip", "R5.3,XX.1")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*unknown requirement id(s) XX.1*"])


@pytest.mark.parametrize(
    ("marker", "message"),
    [
        ("", "no @pytest.mark.requirement"),
        ('@pytest.mark.requirement("SYM.99")', "unknown requirement id(s) SYM.99"),
    ],
)
def test_suite_test_without_a_known_id_is_refused(
    pytester: pytest.Pytester, marker: str, message: str
) -> None:
    make_suite(pytester, test_ok=PASS_MUST, test_unmarked=f"{marker}\ndef test():\n    pass\n")
    result = run(pytester)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*test_unmarked: {message}*"])


def test_list_prints_the_catalogue_and_runs_nothing(pytester: pytest.Pytester) -> None:
    make_suite(pytester, test_bad=FAIL_MUST)
    (pytester.path / "suites" / "connector").mkdir()
    result = pytester.runpytest("--conformance-list")
    assert result.ret == 0
    result.stdout.fnmatch_lines(
        [
            "*requirement catalogue*",
            "R5.3*MUST*A non-minimal preset*",
            "*fleet/test_synthetic.py::test_bad",
            "CONN.12*SHOULD*",
        ]
    )
    result.stdout.fnmatch_lines(["*no tests ran*"])


def test_only_option_judges_just_those_requirements(pytester: pytest.Pytester) -> None:
    both = """
@pytest.mark.requirement("SYM.1", "SYM.9")
def test():
    pass
"""
    make_suite(pytester, test_ok=PASS_MUST, test_bad=FAIL_MUST, test_both=both)
    assert run(pytester, "--conformance-only", "SYM.9").ret == 0
    judged = outcomes(pytester)
    assert (judged["SYM.9"], judged["R5.3"]) == ("passed", "skipped")
    assert judged["SYM.1"] == "passed"  # test_both judges it too, and ran for SYM.9
    reasons = {r["id"]: r["reason"] for r in report(pytester)["requirements"]}
    assert "--conformance-only SYM.9" in reasons["R5.3"]
    assert run(pytester, "--conformance-only", "R5.3", "--conformance-only", "SYM.9").ret == 1
    result = run(pytester, "--conformance-only", "R5.3,XX.1")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--conformance-only: unknown requirement id(s) XX.1*"])


@pytest.mark.parametrize("profile", ["mosaic-ci", "mosaic-thorough"])
def test_the_suites_hypothesis_profiles_can_be_chosen(
    pytester: pytest.Pytester, profile: str
) -> None:
    make_suite(pytester, test_ok=PASS_MUST)
    # A fresh interpreter: Hypothesis keeps profiles registered by earlier in-process runs.
    result = pytester.runpytest_subprocess("--conformance", "--hypothesis-profile", profile)
    assert result.ret == 0, result.stdout.str() + result.stderr.str()


def test_junitxml_carries_requirement_ids(pytester: pytest.Pytester) -> None:
    make_suite(pytester, test_ok=PASS_MUST, test_bad=FAIL_MUST)
    run(pytester, "--junitxml", "junit.xml")
    xml = (pytester.path / "junit.xml").read_text()
    assert '<property name="requirement" value="R5.3"' in xml


def test_junitxml_says_which_editions_judged(pytester: pytest.Pytester) -> None:
    from mosaic_conformance import __version__
    from mosaic_conformance.catalogue import CATALOGUE_VERSION

    make_suite(pytester, test_ok=PASS_MUST)
    run(pytester, "--junitxml", "junit.xml")
    suite = ElementTree.parse(pytester.path / "junit.xml").getroot().find("testsuite")
    assert suite is not None
    properties = {p.get("name"): p.get("value") for p in suite.iterfind("properties/property")}
    assert properties["mosaic_conformance_version"] == __version__
    assert properties["catalogue_version"] == CATALOGUE_VERSION
    assert properties["backend"] == "fake"


def test_secrets_are_redacted_from_reports(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MATRIX_ACCESS_TOKEN", "syt_very_secret_value")
    make_suite(
        pytester,
        test_leak="""
        @pytest.mark.requirement("ROS.4")
        def test():
            import os
            assert False, "leaked " + os.environ["MATRIX_ACCESS_TOKEN"]
    """,
    )
    result = run(pytester, "--junitxml", "junit.xml")
    for path in (Path("out/conformance.json"), Path("out/conformance.md"), Path("junit.xml")):
        assert "syt_very_secret_value" not in (pytester.path / path).read_text(), path
    assert "syt_very_secret_value" not in result.stdout.str()


def test_without_conformance_the_plugin_stays_out_of_the_way(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_plain():\n    pass\n")
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    assert "mosaic conformance" not in result.stdout.str()


def test_xdist_gives_the_same_verdict(pytester: pytest.Pytester) -> None:
    pytest.importorskip("xdist")
    make_suite(pytester, test_ok=PASS_MUST, test_bad=FAIL_MUST, test_should=FAIL_SHOULD)
    result = pytester.runpytest_subprocess(
        "--conformance",
        "--conformance-report",
        "out",
        "-n",
        "2",
        "-p",
        "no:cacheprovider",
        "--junitxml",
        "junit.xml",
    )
    assert result.ret == 1
    assert {k: outcomes(pytester)[k] for k in ("R5.3", "SYM.1", "SYM.9")} == {
        "R5.3": "failed",
        "SYM.1": "passed",
        "SYM.9": "failed",
    }
    assert '<property name="catalogue_version"' in (pytester.path / "junit.xml").read_text()


@pytest.mark.parametrize("seconds", ["0", "-5", "soon", "nan"])
def test_a_recovery_wait_that_is_not_positive_seconds_is_a_usage_error(
    pytester: pytest.Pytester, seconds: str
) -> None:
    result = pytester.runpytest("--conformance-connector-recovery-wait", seconds)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [f"*--conformance-connector-recovery-wait: {seconds!r} is not a number of seconds above 0*"]
    )
