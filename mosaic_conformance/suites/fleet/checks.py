"""What the fleet suites look for, phrased once; failures explain themselves."""

from __future__ import annotations

import re
from collections.abc import Iterable

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


def own_words(fleet: FleetUnderTest, result: Result, given: Iterable[str] = ()) -> str:
    """The output of ``result`` without what would name a field by accident: the roster's
    path (it holds `roster`), the test's own folders (their names hold the test's name), the
    input it was ``given`` (a bad name may hold `name`), and a usage synopsis (it names every
    argument, so it names no problem)."""
    text = result.output.replace(str(fleet.roster_path), "<file>")
    text = text.replace(str(fleet.home.parent), "<tmp>")
    for value in sorted((g for g in given if g), key=len, reverse=True):
        text = text.replace(value, "<input>")
    kept, in_usage = [], False
    for line in text.splitlines():
        in_usage = line.lower().startswith("usage:") or (in_usage and line[:1].isspace())
        if not in_usage:
            kept.append(line)
    return "\n".join(kept)


def names_the_field(
    fleet: FleetUnderTest, result: Result, *words: str, given: Iterable[str] = ()
) -> bool:
    """Whether the fleet's own words (:func:`own_words`) name one of ``words``,
    case-insensitively."""
    text = own_words(fleet, result, given).lower()
    return any(w.lower() in text for w in words)


NUMBER_WORDS = {0: ("zero", "none"), 1: ("one",), 2: ("two",), 3: ("three",)}


def names_the_count(fleet: FleetUnderTest, result: Result, count: int, noun: str) -> bool:
    """Whether a line of the fleet's own words that mentions ``noun`` states ``count``: as a
    number of its own (not a digit of a path, a version or a longer number), in words, or
    as `no NOUN` for zero."""
    forms = [rf"(?<![\w.]){count}(?!\w|\.\d)"]
    forms += [rf"\b{word}\b" for word in NUMBER_WORDS.get(count, ())]
    if count == 0:
        forms.append(rf"\bno {re.escape(noun)}")
    number = re.compile("|".join(forms), re.IGNORECASE)
    lines = own_words(fleet, result).splitlines()
    return any(number.search(line) for line in lines if noun in line.lower())


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
