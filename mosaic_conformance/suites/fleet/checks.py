"""What the fleet suites look for, phrased once; failures explain themselves."""

from __future__ import annotations

import re

from mosaic_conformance.backends import Backend, Call
from mosaic_conformance.contract import agent_unit
from mosaic_conformance.harness import FleetUnderTest, Result, schema_problems

WORKER = ("--runtime", "codex", "--class", "worker")


def systemctl_calls(backend: Backend, verb: str, unit: str) -> list[Call]:
    """``systemctl --user VERB ... UNIT`` calls (options anywhere, several units allowed)."""
    found = []
    for call in backend.calls("systemctl"):
        words = [a for a in call.argv[1:] if not a.startswith("-")]
        if "--user" in call.argv and words[:1] == [verb] and unit in words[1:]:
            found.append(call)
    return found


def calls_text(backend: Backend) -> str:
    calls = backend.calls()
    return "\n".join(f"    {c}" for c in calls) if calls else "    (none)"


def explain(result: Result, backend: Backend, problem: str) -> str:
    return f"{problem}\n{result}\n  system calls:\n{calls_text(backend)}"


def add(fleet: FleetUnderTest, name: str, *extra: str) -> Result:
    return fleet.run("add", name, *WORKER, *extra)


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


def drift_lines(result: Result, name: str) -> list[str]:
    """Lines of ``ps`` output that mention ``name`` and say something is off."""
    mention = re.compile(rf"(?<![\w.-]){re.escape(name)}(?![\w-])")
    return [
        line
        for line in result.output.splitlines()
        if mention.search(line) and DRIFT_WORDS.search(line)
    ]


__all__ = ["agent_unit"]
