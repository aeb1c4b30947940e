"""The Markdown report reads on its own, as a review comment: the verdict in its first line,
then each failure with its requirement and the shortest reproduction, secrets masked."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from synthetic_suites import plant_suite

from mosaic_conformance.catalogue import CATALOGUE
from mosaic_conformance.harness.outcomes import FAILED, NOT_RUN
from mosaic_conformance.harness.plugin.report import MAX_COMMENT_CHARS, markdown
from mosaic_conformance.harness.plugin.verdict import (
    Expectations,
    RequirementResult,
    Scope,
    gate,
    judge,
)
from mosaic_conformance.harness.plugin.verdict import TestOutcome as Outcome

pytest_plugins = ["pytester"]

# A suite test worded as the real ones are: the message is the reproduction.
FAILING_SUITE = """
import os
import pytest

@pytest.mark.requirement("SYM.1")
def test_add_enables_the_unit():
    calls = []
    assert calls, (
        "add did not run `systemctl --user enable mosaic-agent@a.service`\\n"
        "$ fleet add a --runtime codex --class worker  -> exit 0\\n"
        "  stdout: Added a, token " + os.environ["DISCORD_BOT_TOKEN"] + "\\n"
        "  its system calls: none"
    )

@pytest.mark.requirement("SYM.3")
@pytest.mark.parametrize("keep", ["one", "two"])
def test_remove(keep):
    pytest.fail(f"remove left files behind ({keep})", pytrace=False)

@pytest.mark.requirement("SYM.4")
def test_ok():
    pass
"""

META: dict[str, Any] = {
    "version": "0.1.0",
    "catalogue_version": "1.0",
    "judged": {"fleet": "mosaic fleet", "backend": "fake"},
    "strict": False,
    "seed": 1,
}
FLEET = Scope(("fleet",))


def run_failing_suite(pytester: pytest.Pytester) -> str:
    plant_suite(pytester, FAILING_SUITE)
    pytester.runpytest("--conformance", "--conformance-report", "out", "-p", "no:cacheprovider")
    return (pytester.path / "out" / "conformance.md").read_text()


def test_the_report_leads_with_the_verdict_and_the_reproduction(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DISCORD_BOT_TOKEN", "discord-secret-token-value")
    md = run_failing_suite(pytester)
    lines = md.splitlines()
    assert lines[0] == "# Mosaic conformance report"
    assert lines[2].startswith("**FAILED (SYM.1, SYM.3)**: ")
    assert "1 passed, 2 failed" in lines[2]
    assert "- fleet: `the bundled reference fleet" in md
    assert "requirement catalogue 1.1 by mosaic-conformance" in md
    failures = md[md.index("## Failures") : md.index("## All requirements")]
    assert failures.index("### SYM.1 (MUST): failed") < failures.index("### SYM.3")
    assert "> `fleet add NAME` runs `systemctl --user enable" in failures
    # the reproduction as the suite worded it, without pytest's re-evaluated assert
    assert "```text\nadd did not run `systemctl --user enable mosaic-agent@a.service`\n" in (
        failures
    )
    assert "$ fleet add a --runtime codex --class worker  -> exit 0" in failures
    assert "assert []" not in failures.split("<details>")[0]
    assert "Run it alone: add `-k test_add_enables_the_unit` to the same command." in failures
    assert "Also failed: `test_synthetic.py::test_remove[two]`." in failures
    assert "<details><summary>traceback</summary>" in failures
    assert "discord-secret-token-value" not in md
    assert "***" in failures


def outcome(nodeid: str, rid: str, state: str = "failed", **fields: str) -> Outcome:
    test = Outcome(nodeid, [rid])
    test.outcome = state  # type: ignore[assignment]
    test.kind = {"failed": FAILED, "skipped": NOT_RUN}.get(state)
    for name, value in fields.items():
        setattr(test, name, value)
    return test


def verdict(
    tests: list[Outcome], scope: Scope = FLEET, expectations: Expectations | None = None
) -> list[RequirementResult]:
    collected = {t.nodeid: t.requirements for t in tests}
    outcomes = {t.nodeid: t for t in tests}
    return judge(scope, collected, outcomes, expectations or Expectations({}))


def test_a_passing_run_says_so_first() -> None:
    tests = [outcome("fleet/t.py::test_a", "SYM.1", "passed")]
    scope = Scope(("fleet",), only=frozenset({"SYM.1"}))
    results = verdict(tests, scope)
    md = markdown(META, gate(results, False), results, {t.nodeid: t for t in tests})
    in_scope = sum(r.outcome != "not-applicable" for r in results)
    assert md.splitlines()[2] == (
        f"**passed (partial: requirements were left out)**: 1 passed, {in_scope - 1} "
        f"not-judged of {in_scope} requirements in scope"
    )
    assert "## Failures" not in md


def test_a_run_that_judged_nothing_does_not_say_passed() -> None:
    tests = [outcome("fleet/t.py::test_a", "SYM.1", "skipped", reason="no engine")]
    results = verdict(tests)
    md = markdown(META, gate(results, False), results, {t.nodeid: t for t in tests})
    assert md.splitlines()[2].startswith("**INCOMPLETE (not judged: R5.1, R5.2, ")


def test_an_unexpected_pass_is_listed_with_what_to_do() -> None:
    tests = [outcome("fleet/t.py::test_a", "SYM.2", "xpassed", reason="SYM.2: not yet")]
    results = verdict(tests, expectations=Expectations({"SYM.2": "not yet"}))
    md = markdown(META, gate(results, True), results, {t.nodeid: t for t in tests})
    assert "### SYM.2 (MUST): passed, but was expected to fail" in md
    assert "take it out of the expectations file" in md


def test_tracebacks_give_way_so_that_the_report_fits_in_a_comment() -> None:
    big = "\n".join(f"traceback line {i} " + "x" * 200 for i in range(60))
    tests = [
        outcome(f"fleet/t.py::test_{rid}", rid, message=f"{rid} broke", detail=big)
        for rid in CATALOGUE
        if rid.startswith(("SYM", "ROS", "R5"))
    ]
    results = verdict(tests)
    md = markdown(META, gate(results, False), results, {t.nodeid: t for t in tests})
    assert len(md) <= MAX_COMMENT_CHARS
    assert md.count("<details>") >= 1
    assert "traceback left out to keep this report short" in md
    for rid in ("R5.1", "SYM.9", "ROS.5"):  # every failure keeps its reproduction
        assert f"{rid} broke" in md


def test_the_written_report_is_redacted_as_a_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whatever reached a failure's text, the files mask the tokens (a last line of defence)."""
    from mosaic_conformance.harness.plugin.report import write_reports

    tests = [outcome("fleet/t.py::test_a", "SYM.1", message="token syt_abcdef in output")]
    results = verdict(tests)
    monkeypatch.setenv("MATRIX_ACCESS_TOKEN", "syt_abcdef")
    written = write_reports(
        tmp_path, META, gate(results, False), results, {t.nodeid: t for t in tests}
    )
    assert [p.name for p in written] == ["conformance.json", "conformance.md"]
    assert "token *** in output" in written[1].read_text()
    assert "syt_abcdef" not in written[0].read_text() + written[1].read_text()
