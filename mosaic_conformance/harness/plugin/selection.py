"""What a run collects and how each collected test is treated: pure decisions, acted on by the
plugin's hooks (as pytest's ``skipping.py`` does with ``evaluate_skip_marks``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from ...catalogue import CATALOGUE
from .settings import Settings

# The suites shipped in the wheel.
SUITES_DIR = Path(__file__).parent.parent.parent / "suites"


@dataclass(frozen=True, slots=True)
class Decision:
    """How one collected test is run."""

    problem: str | None = None  # it judges no catalogue requirement: a usage error
    skip: str | None = None  # not run: none of its requirements was selected
    xfail: str | None = None  # run, expected to fail (the expectations file)


def decide(ids: Sequence[str], settings: Settings) -> Decision:
    if not ids:
        return Decision(problem="no @pytest.mark.requirement(...)")
    unknown = [i for i in ids if i not in CATALOGUE]
    if unknown:
        return Decision(problem=f"unknown requirement id(s) {', '.join(unknown)}")
    if not any(settings.selected(i) for i in ids):
        return Decision(skip=f"not judged: not selected ({', '.join(ids)})")
    return Decision(xfail=settings.expectations.reason_for(ids))


def suite_paths(settings: Settings) -> list[str]:
    return [str(SUITES_DIR / suite) for suite in settings.suites]


def selected_paths(args: Sequence[str], settings: Settings, invocation_dir: Path) -> list[str]:
    """What to collect for the positional arguments the user gave: each one as pytest takes it
    where it names a file or folder that exists (a node id pytest printed, a test of the user's
    own), else the test of that name in the suites of this run (``test_x.py::test_y``,
    ``fleet/test_x.py``)."""
    chosen = []
    for arg in args:
        path, sep, rest = arg.partition("::")
        if (invocation_dir / path).exists():
            chosen.append(arg)
            continue
        found = [
            root / path
            for root in (SUITES_DIR, *(SUITES_DIR / s for s in settings.suites))
            if (root / path).exists()
        ]
        if not found:
            suites = ", ".join(settings.suites)
            raise pytest.UsageError(
                f"{arg!r} is neither a file here nor a test of the conformance suites of this "
                f"run ({suites}); see --conformance-list for their tests"
            )
        chosen.append(f"{found[0]}{sep}{rest}")
    return chosen
