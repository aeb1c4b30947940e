"""How long one `fleet add` holds a file of the roster's folder open for writing, against how
long the add takes: why ROS.5's kills at random points seldom land in a write, and its kills
aimed at the write are needed.

    python benchmarks/roster_write_window.py [--runs 5] [--agents 800]

For each run: the add's wall time, and the span from the first to the last moment a poll of
``/proc`` (``harness.fleet.files_being_written``) saw it writing, with the number of polls
that saw it. The reference fleet, on the fake backend, a roster of ``--agents`` agents.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import yaml

from mosaic_conformance.harness.fleet import FleetUnderTest, files_being_written
from mosaic_conformance.harness.plugin import REFERENCE_FLEET
from mosaic_conformance.harness.systems.fake import FakeSession


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--agents", type=int, default=800)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        session = FakeSession(Path(tmp) / "session")
        session.start()
        fleet = FleetUnderTest(REFERENCE_FLEET, Path(tmp) / "home", session.open(Path(tmp) / "sys"))
        agents = [{"name": "orchestrator", "runtime": "pi", "class": "orchestrator"}]
        agents += [{"name": f"old{i:04d}", "runtime": "codex"} for i in range(args.agents)]
        fleet.plant_roster(yaml.safe_dump({"version": 1, "transport": "tmux", "agents": agents}))
        folder = fleet.roster_path.parent
        totals, windows = [], []
        for run in range(args.runs):
            started = time.perf_counter()
            proc = fleet.spawn("add", f"new{run}", "--runtime", "codex", "--no-start")
            seen: list[float] = []
            while proc.poll() is None:
                if files_being_written(proc.pid, folder):
                    seen.append(time.perf_counter())
            total = time.perf_counter() - started
            if proc.returncode != 0:
                raise SystemExit(f"fleet add failed with exit status {proc.returncode}")
            window = seen[-1] - seen[0] if seen else 0.0
            totals.append(total)
            windows.append(window)
            print(
                f"run {run}: add {total * 1000:7.1f} ms, writing seen for {window * 1000:5.2f} ms "
                f"({len(seen)} polls)"
            )
        print(
            f"median: add {statistics.median(totals) * 1000:.1f} ms, writing "
            f"{statistics.median(windows) * 1000:.2f} ms "
            f"({statistics.median(windows) / statistics.median(totals):.2%} of the add)"
        )
    session.close()


if __name__ == "__main__":
    main()
