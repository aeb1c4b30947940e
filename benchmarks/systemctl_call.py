"""What one ``systemctl --user`` call of the fleet costs on each backend, in milliseconds.

    python benchmarks/systemctl_call.py [--calls 100] [--engine docker] [--engine podman]

Each call is spawned from Python, as a fleet in any language spawns it, through the shim on
the backend's ``PATH``: the fake backend's stand-in; the systemd backend through its channel;
the systemd backend through a plain ``exec`` of the engine (the way before the channel), on
each engine that runs here. The calls take turns (fake, channel, exec, fake, ...), so a
machine whose speed drifts moves every figure alike. ``/bin/true`` shows the spawn floor.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from mosaic_conformance.harness.systems import Backend, BackendUnavailable
from mosaic_conformance.harness.systems.fake import FakeSession
from mosaic_conformance.harness.systems.systemd import SystemdSession

ARGV = ("systemctl", "--user", "is-enabled", "mosaic-agent@a.service")


def caller(backend: Backend, argv: tuple[str, ...] = ARGV) -> Callable[[], float]:
    env = {**os.environ, **backend.environ()}

    def one() -> float:
        started = time.perf_counter()
        subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return time.perf_counter() - started

    return one


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=100, help="calls per figure")
    parser.add_argument("--engine", action="append", help="docker, podman (default: both)")
    args = parser.parse_args()
    engines = args.engine or ["docker", "podman"]
    shared = Path(tempfile.mkdtemp(prefix="mc-bench-"))
    sessions: list[FakeSession | SystemdSession] = []
    figures: dict[str, Callable[[], float]] = {}
    try:
        fake = FakeSession(shared / "fake-session")
        sessions.append(fake)
        fake.start()
        figures["/bin/true (spawn floor)"] = caller(fake.open(shared / "true"), ("/bin/true",))
        figures["fake stand-in"] = caller(fake.open(shared / "fake"))
        for engine in engines:
            for use_channel in (True, False):
                how = "channel" if use_channel else "exec"
                options = {"shared": str(shared), "engine": engine, "channel": use_channel}
                session = SystemdSession(shared / f"{engine}-{how}", options)
                sessions.append(session)
                try:
                    session.start()
                except BackendUnavailable as exc:
                    print(f"{engine}: cannot run here ({exc})")
                    break
                backend = session.open(shared / f"{engine}-{how}-root")
                figures[f"systemd on {engine}, {how}"] = caller(backend)
        costs: dict[str, list[float]] = {label: [] for label in figures}
        for _ in range(args.calls):
            for label, one in figures.items():
                costs[label].append(one())
        print(f"one `{' '.join(ARGV)}`, milliseconds ({args.calls} calls each, in turns)")
        for label, seconds in costs.items():
            ms = sorted(s * 1000 for s in seconds)
            p95 = ms[min(len(ms) - 1, round(0.95 * (len(ms) - 1)))]
            print(
                f"{label:<34} median {statistics.median(ms):7.2f}   "
                f"mean {statistics.fmean(ms):7.2f}   p95 {p95:7.2f}"
            )
    finally:
        for session in sessions:
            session.close()


if __name__ == "__main__":
    main()
