"""The plugin itself, through real pytest runs on small synthetic suites (pytester).

Each case plants a suite of its own (``synthetic_suites``), so it controls exactly which
requirement passes, fails, errs or is not judged. A synthetic suite covers a few requirements
only: the cases that want a verdict of "passed" judge just those (``--conformance-only``);
the others would be *not judged*, and the gate *incomplete*.
"""

from __future__ import annotations

import json
import os
import sys
import textwrap
from pathlib import Path
from xml.etree import ElementTree

import pytest
from synthetic_suites import plant_suite

from mosaic_conformance.harness.plugin.options import OPTIONS
from mosaic_conformance.harness.plugin.verdict import EXIT_ERROR, EXIT_INCOMPLETE

pytest_plugins = ["pytester"]


def make_suite(pytester: pytest.Pytester, **tests: str) -> None:
    """``tests``: test name -> body; each body starts with its marker line(s)."""
    source = "import pytest\nfrom mosaic_conformance.harness import outcomes\n\n" + "\n\n".join(
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
HARNESS_ERROR = """
@pytest.mark.requirement("SYM.3")
def test():
    raise outcomes.HarnessError("the suite could not arrange the unit's state")
"""
SETUP_ERROR = """
@pytest.fixture
def broken_server():
    raise RuntimeError("the homeserver did not become ready")

@pytest.mark.requirement("SYM.4")
def test(broken_server):
    pass
"""
SUBJECT_FAILS_IN_SETUP = """
@pytest.fixture
def installed():
    outcomes.fail_subject("a setup step of this test failed: fleet install -> exit 1")

@pytest.mark.requirement("SYM.8")
def test(installed):
    pass
"""
UNSUPPORTED = """
@pytest.mark.requirement("R5.2")
def test():
    outcomes.unsupported("the fleet declares no profile folder")
"""
PLAIN_SKIP = """
@pytest.mark.requirement("ROS.1")
def test():
    pytest.skip("some reason of the user's")
"""
UNAVAILABLE = """
@pytest.fixture(scope="session")
def engine():
    outcomes.unavailable("no container engine answers (start one, or install podman)")

@pytest.mark.requirement("SYM.6")
def test(engine):
    pass
"""


def report(pytester: pytest.Pytester) -> dict:  # type: ignore[type-arg]
    return json.loads((pytester.path / "out" / "conformance.json").read_text())


def outcomes(pytester: pytest.Pytester) -> dict[str, str]:
    return {r["id"]: r["outcome"] for r in report(pytester)["requirements"]}


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest(
        "--conformance", "--conformance-report", "out", "-p", "no:cacheprovider", *args
    )


# --- the verdict --------------------------------------------------------------------------


def test_must_failure_gates_and_is_reported(pytester: pytest.Pytester) -> None:
    make_suite(pytester, test_ok=PASS_MUST, test_bad=FAIL_MUST)
    result = run(pytester)
    assert result.ret == 1
    result.stdout.fnmatch_lines(
        [
            "*mosaic conformance*",
            "R5.3*MUST*FAILED*init wrote a malformed roster*",
            "SYM.1*MUST*PASSED*",
            "gate: FAILED (R5.3)*",
        ]
    )
    data = report(pytester)
    assert (data["gate"], data["exit_status"], data["gating"]) == ("failed", 1, ["R5.3"])
    by_id = {r["id"]: r for r in data["requirements"]}
    assert by_id["R5.3"]["outcome"] == "failed"
    (result_of,) = by_id["R5.3"]["results"]
    assert (result_of["outcome"], result_of["phase"]) == ("failed", "call")
    assert "malformed" in result_of["message"]
    assert by_id["R5.1"]["outcome"] == "not-judged"  # no test of it here
    assert by_id["CONN.4"]["outcome"] == "not-applicable"  # no connector under test
    assert data["judged"]["backend"] == "fake"
    md = (pytester.path / "out" / "conformance.md").read_text()
    assert md.index("## Failures") < md.index("## All requirements")
    assert "init wrote a malformed roster" in md
    assert "> A non-minimal preset" in md


def test_a_run_that_judged_all_it_set_out_to_passes(pytester: pytest.Pytester) -> None:
    make_suite(pytester, test_ok=PASS_MUST, test_skipped=UNSUPPORTED)
    result = run(pytester, "--conformance-only", "SYM.1,R5.2")
    assert result.ret == 0
    assert {k: outcomes(pytester)[k] for k in ("SYM.1", "R5.2", "R5.1")} == {
        "SYM.1": "passed",
        "R5.2": "skipped",  # the subject lacks the capability: not a failure, not a gap
        "R5.1": "not-judged",
    }
    data = report(pytester)
    assert (data["gate"], data["partial"]) == ("passed", True)
    result.stdout.fnmatch_lines(["gate: passed (partial*"])


def test_a_must_not_judged_makes_the_gate_incomplete(pytester: pytest.Pytester) -> None:
    make_suite(pytester, test_ok=PASS_MUST, test_plain_skip=PLAIN_SKIP)
    result = run(pytester, "--conformance-only", "SYM.1,ROS.1")
    assert result.ret == EXIT_INCOMPLETE
    assert outcomes(pytester)["ROS.1"] == "not-judged"
    assert report(pytester)["not_judged"] == ["ROS.1"]
    result.stdout.fnmatch_lines(
        ["ROS.1*NOT-JUDGED*some reason of the user's*", "gate: INCOMPLETE*"]
    )


def test_a_deselected_or_unreached_must_is_not_passed(pytester: pytest.Pytester) -> None:
    """``-k``, ``-x`` and ``--maxfail`` leave requirements unjudged: the gate says so."""
    make_suite(pytester, test_should=FAIL_SHOULD, test_ok=PASS_MUST, test_bad=FAIL_MUST)
    selected = run(pytester, "--conformance-only", "SYM.1,R5.3", "-k", "test_ok")
    assert selected.ret == EXIT_INCOMPLETE
    assert "deselected" in {r["id"]: r for r in report(pytester)["requirements"]}["R5.3"]["reason"]
    stopped = run(pytester, "--conformance-only", "SYM.9,SYM.1", "-x")
    assert stopped.ret == EXIT_INCOMPLETE  # a SHOULD failed; the MUST after it never ran
    assert outcomes(pytester)["SYM.1"] == "not-judged"


def test_a_harness_error_is_an_error_not_the_subjects_failure(pytester: pytest.Pytester) -> None:
    make_suite(pytester, test_error=HARNESS_ERROR, test_setup=SETUP_ERROR, test_ok=PASS_MUST)
    result = run(pytester, "--conformance-only", "SYM.1,SYM.3,SYM.4")
    assert result.ret == EXIT_ERROR
    judged = outcomes(pytester)
    assert (judged["SYM.3"], judged["SYM.4"], judged["SYM.1"]) == ("error", "error", "passed")
    data = report(pytester)
    assert data["errors"] == ["SYM.3", "SYM.4"]
    by_id = {r["id"]: r for r in data["requirements"]}
    assert by_id["SYM.4"]["results"][0]["phase"] == "setup"
    result.stdout.fnmatch_lines(["SYM.3*ERROR*not judged*could not arrange*", "gate: ERROR*"])


def test_a_failure_beside_an_error_still_fails_the_gate(pytester: pytest.Pytester) -> None:
    make_suite(pytester, test_error=HARNESS_ERROR, test_bad=FAIL_MUST)
    assert run(pytester).ret == 1
    assert report(pytester)["errors"] == ["SYM.3"]


def test_the_subject_failing_a_fixtures_step_is_a_failure(pytester: pytest.Pytester) -> None:
    make_suite(pytester, test_install=SUBJECT_FAILS_IN_SETUP)
    assert run(pytester, "--conformance-only", "SYM.8").ret == 1
    (entry,) = [r for r in report(pytester)["requirements"] if r["id"] == "SYM.8"]
    assert (entry["outcome"], entry["results"][0]["phase"]) == ("failed", "setup")


def test_an_unavailable_component_is_an_error_with_one_reason(pytester: pytest.Pytester) -> None:
    make_suite(pytester, test_boot=UNAVAILABLE, test_ok=PASS_MUST)
    result = run(pytester, "--conformance-only", "SYM.1,SYM.6")
    assert result.ret == EXIT_ERROR
    assert outcomes(pytester)["SYM.6"] == "error"
    assert result.stdout.str().count("unavailable: no container engine answers") == 1
    allowed = run(pytester, "--conformance-only", "SYM.1,SYM.6", "--conformance-allow-unavailable")
    assert allowed.ret == 0
    assert outcomes(pytester)["SYM.6"] == "skipped"
    assert report(pytester)["partial"] is True


def test_should_failure_gates_only_with_strict(pytester: pytest.Pytester) -> None:
    make_suite(pytester, test_ok=PASS_MUST, test_should=FAIL_SHOULD)
    assert run(pytester, "--conformance-only", "SYM.1,SYM.9").ret == 0
    assert outcomes(pytester)["SYM.9"] == "failed"
    assert report(pytester)["gate"] == "passed"
    assert run(pytester, "--conformance-only", "SYM.1,SYM.9", "--strict").ret == 1


def test_expectations_turn_failures_into_xfail_and_flag_unexpected_passes(
    pytester: pytest.Pytester,
) -> None:
    make_suite(pytester, test_ok=PASS_MUST, test_bad=FAIL_MUST)
    pytester.makefile(
        ".yaml", expect='R5.3: "the seed writes first (#612)"\nSYM.1: "not enabled yet"\n'
    )
    only = ("--conformance-only", "R5.3,SYM.1")
    result = run(pytester, *only, "--conformance-expect", "expect.yaml")
    assert result.ret == 0
    assert {k: outcomes(pytester)[k] for k in ("R5.3", "SYM.1")} == {
        "R5.3": "xfailed",
        "SYM.1": "xpassed",
    }
    result.stdout.fnmatch_lines(["SYM.1*XPASSED*take it out of the expectations file*"])
    assert run(pytester, *only, "--conformance-expect", "expect.yaml", "--strict").ret == 1


def test_skip_option_leaves_requirements_out_and_rejects_unknown_ids(
    pytester: pytest.Pytester,
) -> None:
    make_suite(pytester, test_ok=PASS_MUST, test_bad=FAIL_MUST)
    assert run(pytester, "--conformance-only", "SYM.1,R5.3", "--conformance-skip", "R5.3").ret == 0
    assert outcomes(pytester)["R5.3"] == "not-judged"
    result = run(pytester, "--conformance-skip", "R5.3,XX.1")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*unknown requirement id(s) XX.1*"])


def test_only_option_judges_just_those_requirements(pytester: pytest.Pytester) -> None:
    both = """
@pytest.mark.requirement("SYM.1", "SYM.9")
def test():
    pass
"""
    make_suite(pytester, test_ok=PASS_MUST, test_bad=FAIL_MUST, test_both=both)
    assert run(pytester, "--conformance-only", "SYM.9").ret == 0
    judged = outcomes(pytester)
    assert (judged["SYM.9"], judged["R5.3"]) == ("passed", "not-judged")
    assert run(pytester, "--conformance-only", "R5.3", "--conformance-only", "SYM.9").ret == 1
    result = run(pytester, "--conformance-only", "R5.3,XX.1")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--conformance-only: unknown requirement id(s) XX.1*"])
    foreign = run(pytester, "--conformance-only", "CONN.4")
    assert foreign.ret == pytest.ExitCode.USAGE_ERROR  # a connector requirement, no connector
    foreign.stderr.fnmatch_lines(["*CONN.4 judge(s) a part this run does not test*"])


def test_a_node_id_given_selects_as_in_pytest(pytester: pytest.Pytester) -> None:
    make_suite(pytester, test_ok=PASS_MUST, test_bad=FAIL_MUST)
    result = run(pytester, "--conformance-only", "SYM.1", "test_synthetic.py::test_ok")
    assert result.ret == 0
    result.assert_outcomes(passed=1)
    unknown = run(pytester, "test_synthetic.py::test_nope", "nosuchfile.py")
    assert unknown.ret == pytest.ExitCode.USAGE_ERROR
    unknown.stderr.fnmatch_lines(["*'nosuchfile.py' is neither a file here nor a test*"])


@pytest.mark.parametrize("args", [("--co",), ("--fixtures",), ("-k", "nosuchtest")])
def test_no_verdict_where_nothing_was_meant_to_be_judged(
    pytester: pytest.Pytester, args: tuple[str, ...]
) -> None:
    make_suite(pytester, test_ok=PASS_MUST)
    result = run(pytester, *args)
    assert "gate:" not in result.stdout.str()
    assert not (pytester.path / "out").exists()


# --- usage errors, at start, once -----------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--conformance-connector-factory", "nosuch:make"), "*cannot load it: No module named*"),
        (("--conformance-connector-factory", "os:sep"), "*os:sep: not callable*"),
        (("--conformance-connector-factory", "os"), "*expected 'module:attribute'*"),
        (("--conformance-connector-cmd", ""), "*--conformance-connector-cmd is empty*"),
        (("--conformance-connector-cmd", "/no/such/prog"), "*'/no/such/prog' does not exist*"),
        (("--conformance-fleet-cmd", ""), "*--conformance-fleet-cmd is empty*"),
        (("--conformance-fleet-cmd", "nosuchprog fleet"), "*'nosuchprog' is not a program*"),
        (("--conformance-fleet-cmd", "mosaic 'fleet"), "*cannot split it like a shell*"),
        (
            ("--conformance-connector", "matrix", "--conformance-homeserver-url", "localhost"),
            "*not an http(s) URL with a host*",
        ),
        (("--conformance-seed", "soon"), "*'soon' is not a seed*"),
    ],
)
def test_bad_settings_are_one_usage_error_before_anything_runs(
    pytester: pytest.Pytester, args: tuple[str, ...], message: str
) -> None:
    make_suite(pytester, test_ok=PASS_MUST)
    result = run(pytester, *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])
    assert "Traceback" not in result.stdout.str() + result.stderr.str()


@pytest.mark.parametrize("seconds", ["0", "-5", "soon", "nan"])
def test_a_recovery_wait_that_is_not_positive_seconds_is_a_usage_error(
    pytester: pytest.Pytester, seconds: str
) -> None:
    result = run(
        pytester,
        *("--conformance-connector", "discord"),
        *("--conformance-connector-recovery-wait", seconds),
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [f"*--conformance-connector-recovery-wait: {seconds!r} is not a number of seconds above 0*"]
    )


def test_bad_expectations_file_is_a_usage_error(pytester: pytest.Pytester) -> None:
    make_suite(pytester, test_ok=PASS_MUST)
    pytester.makefile(".yaml", expect="R9.9: nope\nSYM.1: ''\n")
    result = run(pytester, "--conformance-expect", "expect.yaml")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*'R9.9' is not a requirement id*SYM.1: the reason must be*"])


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


# --- every option in an ini file too ------------------------------------------------------


def test_every_option_has_an_ini_equivalent(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--help")
    text = result.stdout.str()
    missing = [o.dest for o in OPTIONS if f"{o.dest} (" not in text]
    assert not missing, f"options without an ini value: {missing}"


def test_ini_values_are_used_and_checked(pytester: pytest.Pytester) -> None:
    make_suite(pytester, test_ok=PASS_MUST, test_bad=FAIL_MUST)
    pytester.makeini(
        "[pytest]\nconformance = true\nconformance_only = SYM.1\nconformance_report = out\n"
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    assert result.ret == 0
    assert outcomes(pytester)["R5.3"] == "not-judged"
    pytester.makeini("[pytest]\nconformance = true\nconformance_backend = systemdd\n")
    bad = pytester.runpytest("-p", "no:cacheprovider")
    assert bad.ret == pytest.ExitCode.USAGE_ERROR
    bad.stderr.fnmatch_lines(["*conformance_backend*'systemdd' is not one of fake, systemd*"])


# --- a good citizen -----------------------------------------------------------------------


def test_a_projects_own_options_named_like_ours_do_not_collide(pytester: pytest.Pytester) -> None:
    names = ("--backend", "--connector", "--homeserver", "--fleet-cmd", "--strict-mode")
    adds = "".join(f"    parser.addoption({n!r}, default='theirs')\n" for n in names)
    pytester.makeconftest(f"def pytest_addoption(parser):\n{adds}")
    pytester.makepyfile(
        "def test_theirs(request):\n    assert request.config.getoption('backend') == 'x'\n"
    )
    result = pytester.runpytest("-p", "no:cacheprovider", "--backend", "x")
    result.assert_outcomes(passed=1)


def test_the_header_names_what_is_judged(pytester: pytest.Pytester) -> None:
    make_suite(pytester, test_ok=PASS_MUST)
    result = run(pytester, "--conformance-only", "SYM.1", "--conformance-seed", "42")
    result.stdout.fnmatch_lines(
        [
            "mosaic-conformance * (requirement catalogue *), seed 42",
            "judging the fleet: the bundled reference fleet *, on the fake backend",
        ]
    )
    fleet = run(pytester, "--conformance-only", "SYM.1", "--conformance-fleet-cmd", "true fleet")
    fleet.stdout.fnmatch_lines(["judging the fleet: true fleet, on the fake backend"])


def test_without_conformance_the_plugin_stays_out_of_the_way(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_plain():\n    pass\n")
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    assert "mosaic" not in result.stdout.str().replace("mosaic-conformance-", "")


def test_the_plugin_is_disabled_by_the_name_the_header_shows(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest_subprocess("-p", "no:mosaic-conformance", "--conformance")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*unrecognized arguments: --conformance*"])


def test_the_plugin_loads_alone_with_autoload_off(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``PYTEST_DISABLE_PLUGIN_AUTOLOAD=1 -p mosaic-conformance``: pytest-timeout is not
    loaded then; the run goes on without per-test timeouts, and says so."""
    make_suite(pytester, test_ok=PASS_MUST)
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    result = pytester.runpytest_subprocess(
        *("-p", "mosaic-conformance", "--conformance", "--conformance-only", "SYM.1"),
        "-p",
        "no:cacheprovider",
    )
    assert result.ret == 0, result.stdout.str() + result.stderr.str()
    result.stdout.fnmatch_lines(["pytest-timeout is not active*"])


def test_a_run_leaves_no_hypothesis_folder_behind(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    make_suite(
        pytester,
        test_drawn="""
        @pytest.mark.requirement("ROS.3")
        def test():
            from hypothesis import given, strategies as st

            @given(st.text())
            def draw(text):
                pass

            draw()
        """,
    )
    monkeypatch.delenv("HYPOTHESIS_STORAGE_DIRECTORY", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    result = pytester.runpytest_subprocess(
        "--conformance", "--conformance-only", "ROS.3", "-p", "no:cacheprovider"
    )
    assert result.ret == 0, result.stdout.str()
    assert not (pytester.path / ".hypothesis").exists()
    assert (tmp_path / "cache" / "mosaic-conformance" / "hypothesis").is_dir()


def test_the_seed_repeats_every_draw(pytester: pytest.Pytester) -> None:
    make_suite(
        pytester,
        test_drawn="""
        @pytest.mark.requirement("ROS.3")
        def test(conformance):
            import random
            from hypothesis import given, settings, strategies as st

            drawn = [random.Random(conformance.seed).random()]

            @settings(max_examples=3)
            @given(st.integers())
            def draw(n):
                drawn.append(n)

            draw()
            with open("draws.txt", "a") as f:
                f.write(repr(drawn) + "\\n")
        """,
    )

    def draws(*args: str) -> str:
        (pytester.path / "draws.txt").unlink(missing_ok=True)
        result = pytester.runpytest_subprocess(
            "--conformance", "--conformance-only", "ROS.3", "-p", "no:cacheprovider", *args
        )
        assert result.ret == 0, result.stdout.str()
        return (pytester.path / "draws.txt").read_text()

    assert draws("--conformance-seed", "7") == draws("--conformance-seed", "7")
    assert draws("--conformance-seed", "7") != draws("--conformance-seed", "8")


@pytest.mark.parametrize("profile", ["mosaic-ci", "mosaic-thorough"])
def test_the_suites_hypothesis_profiles_can_be_chosen(
    pytester: pytest.Pytester, profile: str
) -> None:
    make_suite(pytester, test_ok=PASS_MUST)
    # A fresh interpreter: Hypothesis keeps profiles registered by earlier in-process runs.
    result = pytester.runpytest_subprocess(
        "--conformance", "--conformance-only", "SYM.1", "--hypothesis-profile", profile
    )
    assert result.ret == 0, result.stdout.str() + result.stderr.str()


def test_list_prints_the_catalogue_and_runs_nothing(pytester: pytest.Pytester) -> None:
    make_suite(pytester, test_bad=FAIL_MUST)
    (pytester.path / "suites" / "connector").mkdir()
    result = pytester.runpytest("--conformance-list")
    assert result.ret == 0
    result.stdout.fnmatch_lines(
        [
            "*requirement catalogue*",
            "R5.3*MUST*fleet*A non-minimal preset*",
            "*fleet/test_synthetic.py::test_bad",
            "CONN.12*SHOULD*connector*",
        ]
    )
    result.stdout.fnmatch_lines(["*no tests ran*"])


# --- reports ------------------------------------------------------------------------------


def test_junitxml_carries_requirement_ids_and_the_runs_facts(pytester: pytest.Pytester) -> None:
    from mosaic_conformance import __version__
    from mosaic_conformance.catalogue import CATALOGUE_VERSION

    make_suite(pytester, test_ok=PASS_MUST, test_bad=FAIL_MUST)
    run(pytester, "--junitxml", "junit.xml", "--conformance-seed", "5")
    xml = (pytester.path / "junit.xml").read_text()
    assert '<property name="requirement" value="R5.3"' in xml
    suite = ElementTree.parse(pytester.path / "junit.xml").getroot().find("testsuite")
    assert suite is not None
    properties = {p.get("name"): p.get("value") for p in suite.iterfind("properties/property")}
    assert properties["mosaic_conformance_version"] == __version__
    assert properties["catalogue_version"] == CATALOGUE_VERSION
    assert properties["judged_backend"] == "fake"
    assert (properties["seed"], properties["gate"]) == ("5", "failed")


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


def test_xdist_gives_the_same_verdict(pytester: pytest.Pytester) -> None:
    pytest.importorskip("xdist")
    make_suite(
        pytester, test_ok=PASS_MUST, test_bad=FAIL_MUST, test_should=FAIL_SHOULD, test_e=UNAVAILABLE
    )
    result = pytester.runpytest_subprocess(
        *("--conformance", "--conformance-report", "out", "-n", "2", "-p", "no:cacheprovider"),
        *("--junitxml", "junit.xml", "-k", "not test_should"),
    )
    assert result.ret == 1
    assert {k: outcomes(pytester)[k] for k in ("R5.3", "SYM.1", "SYM.9", "SYM.6", "R5.1")} == {
        "R5.3": "failed",
        "SYM.1": "passed",
        "SYM.9": "not-judged",  # deselected, and the controller knows it
        "SYM.6": "error",
        "R5.1": "not-judged",
    }
    assert '<property name="catalogue_version"' in (pytester.path / "junit.xml").read_text()


def test_every_option_and_exit_status_is_documented() -> None:
    """The options page lists every option with its ini name, and every exit status."""
    page = (Path(__file__).parent.parent / "docs" / "options.md").read_text()
    for option in OPTIONS:
        assert f"| `{option.flag}" in page, option.flag
        assert f"| `{option.dest}` |" in page, option.dest
    for status in (0, 1, 2, 3, 4, 5, EXIT_ERROR, EXIT_INCOMPLETE):
        assert f"| {status} |" in page, status


def test_the_plugin_costs_an_unrelated_run_no_import_of_its_heavy_parts() -> None:
    code = (
        "import sys, mosaic_conformance.harness.plugin as p, mosaic_conformance.harness.plugin."
        "fixtures; print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('yaml', 'httpx', 'docker', 'libtmux', 'hypothesis', 'jsonschema') or m.startswith("
        "'mosaic_conformance.harness.plugin.settings')))"
    )
    import subprocess

    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=os.environ
    ).stdout
    assert out.strip() == "[]", out
