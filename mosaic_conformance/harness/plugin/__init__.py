"""``pytest --conformance``: run the shipped suites and judge, requirement by requirement.

Shaped like pytest's own plugins: the options (``options.py``, each also an ini value), then
``pytest_configure``, which checks the settings once (``settings.py``) and registers the
:class:`~.run.ConformanceRun` that keeps the run's state and gives the verdict
(``verdict.py``, ``report.py``). The fixtures a test builds on are in ``fixtures.py``.

Without ``--conformance`` the plugin only declares its options and its marker: installing the
package costs an unrelated pytest run nothing (the heavy modules load on demand). Disable it
with ``-p no:mosaic-conformance``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from . import options
from .stash import conformance_settings, record_fact, run_key

if TYPE_CHECKING:
    from .settings import Settings

__all__ = ["Settings", "conformance_settings", "record_fact", "run_key"]

# The fixtures the suites and users build on (a plugin of their own, loaded with this one).
pytest_plugins = ["mosaic_conformance.harness.plugin.fixtures"]

HYPOTHESIS_CACHE = "mosaic-conformance/hypothesis"  # under $XDG_CACHE_HOME: not the user's folder


def __getattr__(name: str) -> object:
    if name == "Settings":  # for annotations at run time, without importing settings early
        from .settings import Settings

        return Settings
    raise AttributeError(name)


def pytest_addoption(parser: pytest.Parser, pluginmanager: pytest.PytestPluginManager) -> None:
    options.add_options(parser)


# Before Hypothesis's own pytest_configure, which loads `--hypothesis-profile`.
@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "requirement(*ids): the catalogue requirement(s) a conformance test judges"
    )
    if not (options.value(config, "") or options.value(config, "list")):
        return
    from .run import ConformanceRun
    from .selection import selected_paths, suite_paths
    from .settings import build

    settings = build(config)
    _prepare_hypothesis(config, settings.seed)
    if config.args_source is pytest.Config.ArgsSource.ARGS and not settings.listing:
        config.args[:] = selected_paths(config.args, settings, config.invocation_params.dir)
    else:
        config.args[:] = suite_paths(settings)
    run = ConformanceRun(config, settings)
    config.stash[run_key] = run
    config.pluginmanager.register(run, "mosaic-conformance-run")


def pytest_report_header(config: pytest.Config) -> list[str] | None:
    run = config.stash.get(run_key, None)
    return run.header() if run is not None else None


def pytest_unconfigure(config: pytest.Config) -> None:
    run = config.stash.get(run_key, None)
    if run is not None:
        del config.stash[run_key]
        config.pluginmanager.unregister(run)


def _prepare_hypothesis(config: pytest.Config, seed: int) -> None:
    """The suites' Hypothesis profiles, for ``--hypothesis-profile``: ``mosaic-ci`` (the
    default: few examples, drawn from the run's seed) and ``mosaic-thorough``; every draw
    seeded by ``--conformance-seed`` unless ``--hypothesis-seed`` says otherwise; Hypothesis's
    files kept in the user's cache folder, not in the folder the run started in."""
    from hypothesis import HealthCheck, core, settings
    from hypothesis.configuration import set_hypothesis_home_dir

    base = settings(deadline=None, suppress_health_check=list(HealthCheck), database=None)
    settings.register_profile("mosaic-ci", base, max_examples=5, stateful_step_count=8)
    settings.register_profile("mosaic-thorough", base, max_examples=60, stateful_step_count=25)
    settings.load_profile("mosaic-ci")  # --hypothesis-profile, loaded after this, wins
    if config.getoption("hypothesis_seed", None) is None:
        core.global_force_seed = seed  # type: ignore[assignment]  # as --hypothesis-seed does
    if not os.environ.get("HYPOTHESIS_STORAGE_DIRECTORY"):
        cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
        set_hypothesis_home_dir(str(cache / HYPOTHESIS_CACHE))
