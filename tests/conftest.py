"""Run order: the tests that run a whole suite (half a minute to three minutes each) go first,
so that under xdist the short tests fill the workers' last minutes instead of a long run
starting last and holding up the end (longest first is the classic scheduling rule)."""

from __future__ import annotations

import pytest

LONG_RUNS_FIRST = (  # modules, longest single tests first
    "test_systemd_broken_fleets.py",
    "test_broken_fleets.py",
    "test_broken_connectors.py",
    "test_docs.py",
    "test_secrets.py",
    "test_cleanup.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        name = item.path.name
        return LONG_RUNS_FIRST.index(name) if name in LONG_RUNS_FIRST else len(LONG_RUNS_FIRST)

    items.sort(key=rank)  # stable: each module keeps its own order
