"""``--conformance-list``: the requirement catalogue and the tests that judge each requirement."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from ...catalogue import CATALOGUE, CATALOGUE_VERSION


def test_name(item: pytest.Item, suites_dir: Path) -> str:
    """The test without its parameters, relative to the suites: ``fleet/test_sym.py::test_x``."""
    path = Path(str(item.path))
    try:
        shown = path.relative_to(suites_dir).as_posix()
    except ValueError:
        shown = path.name
    name = getattr(item, "originalname", None) or item.name
    cls = getattr(item, "cls", None)
    return f"{shown}::{cls.__name__ + '::' if cls else ''}{name}"


def write(reporter: Any, covering: Mapping[str, Sequence[str]]) -> None:
    reporter.write_sep("=", f"requirement catalogue {CATALOGUE_VERSION}")
    for req in CATALOGUE.values():
        tests = sorted(set(covering.get(req.id, [])))
        reporter.write_line(f"{req.id:<8} {req.level.value:<6} {req.subject:<9} {req.text}")
        for test in tests or ["(no test)"]:
            reporter.write_line(f"{'':25} {test}")
