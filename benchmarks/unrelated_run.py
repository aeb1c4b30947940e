"""What installing mosaic-conformance costs a pytest run that has nothing to do with it.

    python benchmarks/unrelated_run.py [--runs 10] [--wheel DIST.whl] [--no-bytecode-cache]

Makes three fresh virtualenvs (pytest alone; pytest and Hypothesis; the toolkit's wheel,
built from this checkout unless given), then runs a one-test project's ``pytest -q`` in each,
and in the toolkit's with each remedy docs/validating-a-fleet.md names, in turn (one run of
each, then again), and prints each one's median CPU and wall seconds. CPU seconds (user +
system of the finished pytest process) are the steadier figure on a shared machine.

pytest rewrites the assertions of every module of a distribution that has a pytest plugin
(Hypothesis's and the toolkit's included) and caches the result as bytecode beside them.
``--no-bytecode-cache`` runs with ``PYTHONDONTWRITEBYTECODE=1``, as many container images
do, where that cache is never written and every run rewrites them again.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ONE_TEST = "def test_one():\n    assert 1 + 1 == 2\n"
QUIET = ("-q", "-p", "no:cacheprovider")


def venv(folder: Path, *packages: str) -> Path:
    subprocess.run([sys.executable, "-m", "venv", str(folder)], check=True)
    pip = [str(folder / "bin" / "python"), "-m", "pip", "install", "-q", *packages]
    subprocess.run(pip, check=True)
    return folder / "bin" / "pytest"


def build_wheel(out: Path) -> Path:
    build = [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(out)]
    subprocess.run([*build, str(ROOT)], check=True, stdout=subprocess.DEVNULL)
    return next(out.glob("*.whl"))


def timed(argv: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float]:
    """Wall and CPU seconds of one run, the CPU as the kernel counted the finished child."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, check=True)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--wheel", type=Path, help="the toolkit's wheel (default: build one)")
    parser.add_argument("--no-bytecode-cache", action="store_true")
    args = parser.parse_args()
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PYTEST_", "VIRTUAL_ENV", "PYTHONDONTWRITEBYTECODE"))
    }
    if args.no_bytecode_cache:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        wheel = args.wheel or build_wheel(tmp / "dist")
        project = tmp / "project"
        project.mkdir()
        (project / "test_one.py").write_text(ONE_TEST)
        pytest_only = venv(tmp / "pytest-only", "pytest")
        with_hypothesis = venv(tmp / "pytest-hypothesis", "pytest", "hypothesis")
        toolkit = venv(tmp / "toolkit", str(wheel))
        no_autoload = {**env, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
        cases: list[tuple[str, list[str], dict[str, str]]] = [
            ("pytest only", [str(pytest_only), *QUIET], env),
            ("pytest + hypothesis", [str(with_hypothesis), *QUIET], env),
            ("mosaic-conformance wheel", [str(toolkit), *QUIET], env),
            (
                "  -p no:hypothesispytest",
                [str(toolkit), *QUIET, "-p", "no:hypothesispytest"],
                env,
            ),
            (
                "  -p no:hypothesispytest -p no:mosaic_conformance",
                [str(toolkit), *QUIET, "-p", "no:hypothesispytest", "-p", "no:mosaic_conformance"],
                env,
            ),
            ("  PYTEST_DISABLE_PLUGIN_AUTOLOAD=1", [str(toolkit), *QUIET], no_autoload),
        ]
        for _, argv, case_env in cases:  # warm-up: the first run of each is not counted
            timed(argv, project, case_env)
        figures: dict[str, list[tuple[float, float]]] = {name: [] for name, _, _ in cases}
        for _ in range(args.runs):
            for name, argv, case_env in cases:
                figures[name].append(timed(argv, project, case_env))
        cache = "never written" if args.no_bytecode_cache else "written"
        print(
            f"a one-test project's `pytest -q`, median of {args.runs} runs each (bytecode {cache}):"
        )
        for name, runs in figures.items():
            walls, cpus = zip(*runs, strict=True)
            print(
                f"{name:<52} cpu {statistics.median(cpus):6.3f} s"
                f"   wall {statistics.median(walls):6.3f} s"
            )


if __name__ == "__main__":
    main()
