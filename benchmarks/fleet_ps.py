"""What `mosaic fleet ps` costs as the roster grows, and what one `fleet add` costs.

    python benchmarks/fleet_ps.py [--runs 5]

For rosters of 10, 100 and 1000 agents (all installed and enabled on the fake backend): the
median time of `fleet ps` and how many systemctl and tmux processes it spawned (they must not
grow with the roster). Then one `fleet add` against `python -c 'import yaml'` in the same
interpreter, run in turn (A B A B ...), and their ratio pair by pair
(benchmarks/fleet_startup.py measures the start alone, from an installed wheel).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from mosaic_conformance.harness.systems.fake import FakeSession

FLEET = [sys.executable, "-m", "mosaic_conformance.fleet"]


def timed(argv: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    runs = parser.parse_args().runs
    with tempfile.TemporaryDirectory() as tmp:
        session = FakeSession(Path(tmp) / "session")
        session.start()
        for size in (10, 100, 1000):
            root = Path(tmp) / f"n{size}"
            backend = session.open(root / "system")
            env = {**os.environ, **backend.environ(), "MOSAIC_HOME": str(root / "home")}
            agents = [
                {"name": f"a{i:04d}", "runtime": "codex", "class": "worker"} for i in range(size)
            ]
            roster = root / "home" / "fleet" / "roster.yaml"
            roster.parent.mkdir(parents=True)
            roster.write_text(yaml.safe_dump({"version": 1, "transport": "tmux", "agents": agents}))
            subprocess.run([*FLEET, "install"], env=env, check=True, stdout=subprocess.DEVNULL)
            before = {c: len(backend.calls(c)) for c in ("systemctl", "tmux")}
            times = [timed([*FLEET, "ps"], env) for _ in range(runs)]
            spawned = {c: (len(backend.calls(c)) - n) / runs for c, n in before.items()}
            print(
                f"fleet ps, {size:5d} agents: median {statistics.median(times) * 1000:7.1f} ms"
                f"   per ps: {spawned['systemctl']:g} systemctl, {spawned['tmux']:g} tmux"
            )

        backend = session.open(Path(tmp) / "add" / "system")
        env = {**os.environ, **backend.environ(), "MOSAIC_HOME": str(Path(tmp) / "add" / "h")}
        subprocess.run([*FLEET, "init", "--write"], env=env, check=True, stdout=subprocess.DEVNULL)
        subprocess.run([*FLEET, "install"], env=env, check=True, stdout=subprocess.DEVNULL)
        pairs = []
        for i in range(runs * 2):
            add = timed([*FLEET, "add", f"b{i}", "--runtime", "codex"], env)
            bare = timed([sys.executable, "-c", "import yaml"], env)
            pairs.append((add, bare))
        adds, bares = zip(*pairs, strict=True)
        ratios = [a / b for a, b in pairs]
        print(
            f"fleet add: median {statistics.median(adds) * 1000:6.1f} ms   "
            f"python -c 'import yaml': median {statistics.median(bares) * 1000:6.1f} ms   "
            f"ratio median {statistics.median(ratios):.2f} "
            f"(min {min(ratios):.2f}, max {max(ratios):.2f})"
        )


if __name__ == "__main__":
    main()
