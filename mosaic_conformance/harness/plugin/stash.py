"""Where a conformance run keeps its state: one object in ``config.stash``, found by the fixtures
and hooks (a light module: an unrelated pytest run imports it, and nothing else of ours)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from .run import ConformanceRun
    from .settings import Settings

run_key: pytest.StashKey[ConformanceRun] = pytest.StashKey()


def conformance_settings(config: pytest.Config) -> Settings:
    """The settings of this conformance run (for ``pytest_generate_tests`` and the like)."""
    run = config.stash.get(run_key, None)
    if run is None:
        raise pytest.UsageError(
            "the mosaic-conformance fixtures need a conformance run: pass --conformance"
        )
    return run.settings


def record_fact(config: pytest.Config, name: str, value: str) -> None:
    """Say what a component of this run is (an image, an engine, a homeserver's version): it
    goes into the report's account of where the subject was judged."""
    run = config.stash.get(run_key, None)
    if run is not None:
        run.facts[name] = value
