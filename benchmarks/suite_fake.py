"""The fleet suites on the fake backend, against the reference fleet: where the time goes.

    python benchmarks/suite_fake.py [--runs 1] [-- extra pytest args]

Prints the suite's wall time, the time the fleet under test was running (concurrent runs
counted once), the harness's own share of the wall time, the number of fleet invocations,
and the mean cost of one stand-in call (``systemctl --user is-enabled``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mosaic_conformance.harness.systems.fake import FakeSession

STANDIN_CALLS = 200


def suite_once(extra: list[str]) -> tuple[float, dict[str, object]]:
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                "--conformance",
                "--conformance-report",
                tmp,
                "-p",
                "no:cacheprovider",
                "-q",
                *extra,
            ],
            cwd=tmp,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            check=False,
        )
        wall = time.perf_counter() - started
        report = json.loads((Path(tmp) / "conformance.json").read_text())
    if done.returncode != 0:
        sys.exit(f"the suite failed (exit {done.returncode}); see pytest --conformance")
    return wall, report


def standin_call_ms() -> float:
    with tempfile.TemporaryDirectory() as tmp:
        session = FakeSession(Path(tmp) / "session")
        session.start()
        backend = session.open(Path(tmp) / "root")
        env = {**os.environ, **backend.environ()}
        costs = []
        for _ in range(STANDIN_CALLS):
            started = time.perf_counter()
            subprocess.run(
                ["systemctl", "--user", "is-enabled", "mosaic-agent@a.service"],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                check=False,
            )
            costs.append(time.perf_counter() - started)
        return statistics.fmean(costs) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("extra", nargs="*", help="more pytest arguments (after --)")
    args = parser.parse_args()
    for run in range(1, args.runs + 1):
        wall, report = suite_once(args.extra)
        inside = float(report["fleet_seconds"])  # type: ignore[arg-type]
        print(
            f"run {run}: suite wall {wall:6.1f} s   fleet running {inside:6.1f} s   "
            f"harness share {100 * (wall - inside) / wall:5.1f} %   "
            f"fleet invocations {report['fleet_invocations']}"
        )
    print(f"one stand-in call (mean of {STANDIN_CALLS}): {standin_call_ms():.2f} ms")


if __name__ == "__main__":
    main()
