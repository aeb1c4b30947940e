"""Small suites of a test's own, which the plugin runs in place of the shipped ones, so that
each pytester case controls exactly which requirement passes or fails."""

from __future__ import annotations

import pytest

# Points the plugin at the pytester folder's suites/ for the run.
CONFTEST = """
import pathlib
import mosaic_conformance.harness.plugin.selection as plugin
_shipped = plugin.SUITES_DIR
plugin.SUITES_DIR = pathlib.Path(__file__).parent / "suites"

def pytest_unconfigure(config):  # in-process runs share the module with later tests
    plugin.SUITES_DIR = _shipped
"""


def plant_suite(pytester: pytest.Pytester, source: str) -> None:
    """Make ``source`` the fleet suite of the runs in ``pytester``'s folder."""
    pytester.makeconftest(CONFTEST)
    fleet = pytester.path / "suites" / "fleet"
    fleet.mkdir(parents=True)
    (fleet / "test_synthetic.py").write_text(source)
