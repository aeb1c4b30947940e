"""Run order and shared caches for the toolkit's own tests.

The tests that run a whole suite (half a minute to three minutes each) go first, so that under
xdist the short tests fill the workers' last minutes instead of a long run starting last and
holding up the end (longest first is the classic scheduling rule).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

LONG_RUNS_FIRST = (  # modules, longest single tests first
    "test_systemd_broken_fleets.py",
    "test_broken_fleets.py",
    "test_broken_connectors.py",
    "test_ci_recipes.py",
    "test_docs.py",
    "test_secrets.py",
    "test_cleanup.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        name = item.path.name
        return LONG_RUNS_FIRST.index(name) if name in LONG_RUNS_FIRST else len(LONG_RUNS_FIRST)

    items.sort(key=rank)  # stable: each module keeps its own order


@pytest.fixture(scope="session", autouse=True)
def shared_hypothesis_storage(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The suites that pytester runs start in fresh folders, where Hypothesis would build its
    Unicode tables again (3 s of CPU per process); one folder for this whole run keeps them.
    The suites' profiles keep no example database, so no run can replay another's cases."""
    run_root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        run_root = run_root.parent  # the workers' folders share their parent
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HYPOTHESIS_STORAGE_DIRECTORY", str(run_root / "hypothesis"))
        yield


@pytest.fixture(scope="session")
def built_dists(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The sdist of this checkout, and the wheel built from it, as ``python -m build`` makes
    them (without an isolated build environment: hatchling comes from the test extra)."""
    pytest.importorskip("build", reason="pip install build hatchling: builds the package")
    pytest.importorskip("hatchling", reason="pip install build hatchling: builds the package")
    out = tmp_path_factory.mktemp("dist")
    root = Path(__file__).resolve().parent.parent
    proc = subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(root)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, f"the build failed:\n{proc.stdout}{proc.stderr}"
    (wheel,) = out.glob("*.whl")
    (sdist,) = out.glob("*.tar.gz")
    return {"wheel": wheel, "sdist": sdist}
