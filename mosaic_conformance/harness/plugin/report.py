"""The JSON and Markdown reports of a run, and the run's facts in its JUnit XML.

Pure functions over the verdict's values (``verdict.py``), but for the writing of files.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ...secrets import redact
from ..outcomes import ERROR, FAILED
from .verdict import Gate, RequirementResult, TestOutcome, short_test

# Forges cap a comment at 65536 characters (GitHub); tracebacks go first when one would not fit.
MAX_COMMENT_CHARS = 60000
COUNTED = ("passed", "failed", "error", "not-judged", "xfailed", "xpassed", "skipped")


# --- files ------------------------------------------------------------------------------


def write_reports(
    folder: Path,
    meta: dict[str, Any],
    gate: Gate,
    results: list[RequirementResult],
    outcomes: Mapping[str, TestOutcome],
) -> list[Path]:
    """``conformance.json`` and ``conformance.md`` in ``folder``; their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    allow = bool(meta.get("allow_unavailable"))
    document = {
        **meta,
        **gate_json(gate),
        "summary": counts(results),
        "requirements": [requirement_json(r, outcomes, allow) for r in results],
    }
    json_path, md_path = folder / "conformance.json", folder / "conformance.md"
    json_path.write_text(redact(json.dumps(document, indent=2)) + "\n", encoding="utf-8")
    md_path.write_text(redact(markdown(meta, gate, results, outcomes)), encoding="utf-8")
    return [json_path, md_path]


def gate_json(gate: Gate) -> dict[str, Any]:
    return {
        "gate": gate.status,
        "exit_status": gate.exit_code,
        "gating": list(gate.failing),
        "errors": list(gate.errors),
        "not_judged": list(gate.unjudged),
        "partial": gate.partial,
    }


def requirement_json(
    result: RequirementResult, outcomes: Mapping[str, TestOutcome], allow_unavailable: bool
) -> dict[str, Any]:
    r = result.requirement
    return {
        "id": r.id,
        "level": r.level.value,
        "subject": r.subject,
        "title": r.text,
        "outcome": result.outcome,
        "reason": result.reason,
        "tests": list(result.tests),
        "results": [outcomes[t].to_json(allow_unavailable) for t in result.tests if t in outcomes],
    }


def counts(results: list[RequirementResult]) -> dict[str, int]:
    found: dict[str, int] = {}
    for r in results:
        found[r.outcome] = found.get(r.outcome, 0) + 1
    return found


def add_junit_properties(path: Path, properties: Mapping[str, str]) -> None:
    """``<property>`` tags on every ``<testsuite>`` of a JUnit XML file that pytest wrote.

    pytest's public way in, the ``record_testsuite_property`` fixture, does not work under
    xdist; so the file is amended once pytest has written it."""
    tree = ET.parse(path)
    root = tree.getroot()
    suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
    for suite in suites:
        node = suite.find("properties")
        if node is None:
            node = ET.Element("properties")
            suite.insert(0, node)
        for name, value in properties.items():
            ET.SubElement(node, "property", name=name, value=redact(value))
    tree.write(path, encoding="utf-8", xml_declaration=True)


def markdown(
    meta: dict[str, Any],
    gate: Gate,
    results: list[RequirementResult],
    outcomes: Mapping[str, TestOutcome],
) -> str:
    """A report that reads on its own, e.g. as a review comment: the verdict in one line, then
    what was judged where, each failure and error with its requirement and shortest
    reproduction, then every requirement."""
    lines = ["# Mosaic conformance report", "", _summary(gate, results), ""]
    lines += [f"- {name}: `{value}`" for name, value in meta.get("judged", {}).items() if value]
    lines.append(
        f"- judged against requirement catalogue {meta['catalogue_version']} by "
        f"mosaic-conformance {meta['version']}, seed {meta['seed']}"
        + (" (strict: SHOULDs gate too)" if meta.get("strict") else "")
    )
    failing = [r for r in results if r.outcome in ("failed", "xpassed", "error")]
    sections = [_failure_section(r, outcomes) for r in failing]
    budget = MAX_COMMENT_CHARS - sum(len(text) for text, _ in sections) - 200 * len(results)
    if failing:
        lines += ["", "## Failures", ""]
    for text, traceback in sections:
        lines.append(text)
        if traceback and len(traceback) <= budget:
            lines.append(traceback)
            budget -= len(traceback)
        elif traceback:
            lines += ["(traceback left out to keep this report short; it is in the JUnit XML)", ""]
    lines += [
        "",
        "## All requirements",
        "",
        "| id | level | outcome | reason |",
        "|---|---|---|---|",
    ]
    for r in results:
        reason = r.reason.replace("|", "\\|")
        lines.append(
            f"| {r.requirement.id} | {r.requirement.level.value} | {r.outcome} | {reason} |"
        )
    return "\n".join(lines) + "\n"


def _summary(gate: Gate, results: list[RequirementResult]) -> str:
    """``**FAILED** (SYM.1, R5.3): 17 passed, 2 failed of 19 requirements in scope``."""
    in_scope = [r for r in results if r.outcome != "not-applicable"]
    found = counts(in_scope)
    shown = ", ".join(f"{found[o]} {o}" for o in COUNTED if o in found)
    return f"**{gate.summary()}**: {shown} of {len(in_scope)} requirements in scope"


def _failure_section(
    result: RequirementResult, outcomes: Mapping[str, TestOutcome]
) -> tuple[str, str]:
    """The section of one failing requirement, and its traceback (shown if there is room)."""
    req = result.requirement
    what = {
        "failed": "failed",
        "error": "not judged: the toolkit or the environment failed",
        "xpassed": "passed, but was expected to fail",
    }[result.outcome]
    lines = [f"### {req.id} ({req.level.value}): {what}", "", f"> {req.text}", ""]
    kind = ERROR if result.outcome == "error" else FAILED
    failed = [
        t
        for nodeid in result.tests
        if (t := outcomes.get(nodeid)) and t.outcome == "failed" and t.kind == kind
    ]
    if not failed:
        return "\n".join([*lines, result.reason, ""]), ""
    first = failed[0]
    lines += [f"`{short_test(first.nodeid)}`", "", _fenced(first.message or first.reason), ""]
    if len(failed) > 1:
        others = ", ".join(f"`{short_test(t.nodeid)}`" for t in failed[1:])
        lines += [f"Also failed: {others}.", ""]
    lines += [f"Run it alone: add `-k {_test_function(first.nodeid)}` to the same command.", ""]
    traceback = ""
    if first.detail.strip() not in ("", first.message.strip()):
        traceback = "\n".join(
            [
                "<details><summary>traceback</summary>",
                "",
                _fenced(first.detail),
                "",
                "</details>",
                "",
            ]
        )
    return "\n".join(lines), traceback


def _test_function(nodeid: str) -> str:
    """``test_x`` of ``dir/test_file.py::test_x[param]``: a ``-k`` that selects it."""
    return nodeid.rsplit("::", 1)[-1].split("[", 1)[0]


def _fenced(text: str, lines: int = 60) -> str:
    kept = text.rstrip().splitlines()[-lines:]
    return "```text\n" + "\n".join(kept).replace("```", "'''") + "\n```"
