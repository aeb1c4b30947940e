"""``mosaic-conformance requirements`` takes its requirement-to-test map from the plugin's own
collection, whatever folder it runs in."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

# Runs the command with the plugin pointed at a planted suites folder (argv[1]).
PLANTED = """
import pathlib, sys
import mosaic_conformance.harness.plugin.selection as selection
selection.SUITES_DIR = pathlib.Path(sys.argv[1])
from mosaic_conformance.harness import cli
sys.exit(cli.main(["requirements"]))
"""

# Markers the plugin sees but a reading of decorators alone does not: a module's
# ``pytestmark``, a class's marker on its methods, a marker inside ``pytest.param``.
MARKED_OTHERWISE = """
import pytest

pytestmark = pytest.mark.requirement("R5.2")

def test_module_marked():
    pass

@pytest.mark.requirement("SYM.1")
class TestEnable:
    def test_one(self):
        pass

@pytest.mark.parametrize("x", [pytest.param(1, marks=pytest.mark.requirement("ROS.2"))])
def test_param(x):
    pass
"""


def run_requirements(cwd: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *argv],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def row(page: str, rid: str) -> str:
    return next(line for line in page.splitlines() if line.startswith(f"| {rid} |"))


def plant(folder: Path, source: str) -> Path:
    suites = folder / "suites"
    (suites / "fleet").mkdir(parents=True)
    (suites / "connector").mkdir()
    (suites / "fleet" / "test_planted.py").write_text(source)
    return suites


def test_the_map_is_what_the_plugin_collects(tmp_path: Path) -> None:
    suites = plant(tmp_path, MARKED_OTHERWISE)
    proc = run_requirements(tmp_path, "-c", PLANTED, str(suites))
    assert proc.returncode == 0, proc.stderr
    page = proc.stdout
    planted = "fleet/test_planted.py"
    assert row(page, "R5.2").endswith(
        f"| `{planted}::TestEnable::test_one`<br>`{planted}::test_module_marked`"
        f"<br>`{planted}::test_param` |"
    )
    assert row(page, "SYM.1").endswith("| `fleet/test_planted.py::TestEnable::test_one` |")
    assert row(page, "ROS.2").endswith("| `fleet/test_planted.py::test_param` |")
    assert row(page, "R5.1").endswith("| - |")


def test_an_unmarked_suite_test_is_a_clear_error(tmp_path: Path) -> None:
    suites = plant(tmp_path, "def test_unmarked():\n    pass\n")
    proc = run_requirements(tmp_path, "-c", PLANTED, str(suites))
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert "mosaic-conformance requirements: collecting the suites failed" in proc.stderr
    assert "test_planted.py::test_unmarked: no @pytest.mark.requirement(...)" in proc.stderr


def test_the_folder_it_runs_in_changes_nothing(tmp_path: Path) -> None:
    """A user's project with its own pytest configuration, conftest and PYTEST_ADDOPTS."""
    (tmp_path / "pytest.ini").write_text("[pytest]\naddopts = --no-such-option\n")
    (tmp_path / "conftest.py").write_text("raise RuntimeError('the user conftest was loaded')\n")
    shipped = subprocess.run(
        [sys.executable, "-m", "mosaic_conformance.harness.cli", "requirements"],
        cwd=tmp_path,
        env={**os.environ, "PYTEST_ADDOPTS": "--no-such-option-either"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert shipped.returncode == 0, shipped.stderr
    page = (Path(__file__).parent.parent / "docs" / "requirements.md").read_text("utf-8")
    assert shipped.stdout == page
    assert sorted(p.name for p in tmp_path.iterdir()) == ["conftest.py", "pytest.ini"]


def test_help_names_no_file_of_the_repository() -> None:
    """An installed user has no docs/ folder."""
    proc = run_requirements(Path.cwd(), "-m", "mosaic_conformance.harness.cli", "--help")
    assert proc.returncode == 0
    assert "requirements" in proc.stdout
    assert "docs/" not in proc.stdout
