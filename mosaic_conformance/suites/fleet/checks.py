"""What the fleet suites look for, phrased once; failures explain themselves."""

from __future__ import annotations

import re

from mosaic_conformance.harness.fleet import FleetUnderTest, Result, schema_problems

WORKER = ("--runtime", "codex", "--class", "worker")
# A valid roster with exactly one orchestrator (never mutate it: copy first).
ONE_ORCHESTRATOR = {
    "version": 1,
    "transport": "tmux",
    "agents": [
        {"name": "orchestrator", "runtime": "pi", "class": "orchestrator"},
        {"name": "coder0", "runtime": "codex", "class": "worker"},
    ],
}


def assert_valid_roster(fleet: FleetUnderTest, after: Result) -> None:
    __tracebackhide__ = True
    roster = fleet.roster()
    assert roster is not None, f"no roster at {fleet.roster_path} after:\n{after}"
    problems = schema_problems(roster)
    assert not problems, (
        f"the roster written by `fleet {after.args[0]}` breaks the schema:\n  "
        + "\n  ".join(problems)
        + f"\n{after}"
    )


def names_the_field(fleet: FleetUnderTest, result: Result, *words: str) -> bool:
    """Whether the error output names one of ``words`` (case-insensitively). The test's own
    folders are cut out first: their names hold the test's name, and so its words."""
    text = result.output.replace(str(fleet.home.parent), "<tmp>").lower()
    return any(w.lower() in text for w in words)


DRIFT_WORDS = re.compile(
    r"drift|not enabled|disabled|not running|inactive|stopped|dead|failed|not in the roster",
    re.IGNORECASE,
)


def drift_lines(fleet: FleetUnderTest, result: Result, name: str) -> list[str]:
    """Lines of ``ps`` output that mention ``name`` and say something is off."""
    mention = re.compile(rf"(?<![\w.-]){re.escape(name)}(?![\w-])")
    output = result.output.replace(str(fleet.home.parent), "<tmp>")
    return [
        line for line in output.splitlines() if mention.search(line) and DRIFT_WORDS.search(line)
    ]


def explain(result: Result, problem: str) -> str:
    return f"{problem}\n{result}"
