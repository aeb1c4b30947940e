"""The layout holds: the shipped library (fleet, connectors, contract) imports nothing of the
harness that judges it, as the import contract in pyproject.toml says; and the contract
check itself catches a wrong-way import."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")

pytestmark = pytest.mark.skipif(not LINT_IMPORTS.exists(), reason="import-linter is not installed")


def lint_imports(project: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT_IMPORTS), "--config", str(project / "pyproject.toml"), "--no-cache"],
        cwd=project,
        env={"PYTHONPATH": str(project), "PATH": ""},
        capture_output=True,
        text=True,
        check=False,
    )


def test_the_library_imports_nothing_of_the_harness() -> None:
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 kept, 0 broken" in result.stdout


def test_the_contract_catches_a_wrong_way_import(tmp_path: Path) -> None:
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    shutil.copytree(
        ROOT / "mosaic_conformance",
        tmp_path / "mosaic_conformance",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    types = tmp_path / "mosaic_conformance" / "connectors" / "types.py"
    types.write_text(types.read_text() + "\nfrom ..harness import outcomes  # the wrong way\n")
    result = lint_imports(tmp_path)
    assert result.returncode != 0
    assert "BROKEN" in result.stdout
    assert "mosaic_conformance.connectors.types -> mosaic_conformance.harness.outcomes" in (
        result.stdout
    )
