"""The figures of the reliability tests, read from the JUnit XML of a conformance run.

The suites record what they tried as test properties: generated cases, concurrent and killed
adds, roster reads, operator messages, connector sends, faults injected, fleet invocations.
This prints them per test, with the test's outcome, for docs/reliability.md:

    pytest --conformance --hypothesis-profile mosaic-thorough --junitxml fleet.xml
    pytest --conformance --conformance-connector matrix --junitxml matrix.xml
    python benchmarks/reliability_figures.py fleet.xml matrix.xml
"""

from __future__ import annotations

import argparse
import xml.etree.ElementTree as ET
from pathlib import Path

FIGURES = (
    "cases",
    "concurrent_adds",
    "adds_killed",
    "adds_hunted",
    "kills_mid_write",
    "adds_reported",
    "roster_reads",
    "operator_messages",
    "connector_sends",
    "faults_planned",
    "faults_injected",
    "answers_lost",
    "reads_held",
    "values_looked_at",
    "messages_lost",
    "messages_doubled",
    "posted_while_down",
    "delivered",
    "duplicated",
    "lost",
    "fleet_calls",
)


def rows(junit: Path) -> list[tuple[str, str, dict[str, str]]]:
    found = []
    for case in ET.parse(junit).getroot().iter("testcase"):
        properties = {p.get("name", ""): p.get("value", "") for p in case.iter("property")}
        figures = {k: properties[k] for k in FIGURES if k in properties}
        if not figures:
            continue
        outcome = next(
            (child.tag for child in case if child.tag in ("failure", "error", "skipped")),
            "passed",
        )
        found.append((case.get("name", "?"), outcome, figures))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("junit", nargs="+", type=Path)
    args = parser.parse_args()
    for junit in args.junit:
        print(f"# {junit.name}")
        totals: dict[str, int] = {}
        for name, outcome, figures in rows(junit):
            shown = ", ".join(f"{k} {v}" for k, v in figures.items())
            print(f"{name:<70} {outcome:<8} {shown}")
            for key, value in figures.items():
                if value.isdigit():
                    totals[key] = totals.get(key, 0) + int(value)
        print("total: " + ", ".join(f"{k} {v}" for k, v in totals.items()))


if __name__ == "__main__":
    main()
