"""What the systemd backend costs here, and how its suite compares with the fake one.

    python benchmarks/suite_systemd.py [--engine docker] [--engine podman] [--cold]
                                       [--steps] [--suite] [--rounds 1] [-- pytest args]

- ``--steps`` (the default without ``--suite``): per engine, finding the image (``--cold``:
  also a build from nothing, under a tag of its own, removed afterwards); session start
  (container up, systemd booted, the user made, the channel answering); ``open`` (a fresh
  system per test); a restart until three lingering agents run again; session close.
- ``--suite``: the fleet suites against the reference, on the fake backend and on the
  systemd backend on each engine, the same tests in the same run, taking turns for
  ``--rounds`` rounds, serial unless pytest args say otherwise; then each systemd suite's
  wall time over the fake one's (the target is at most 1.5).

The per-call cost of one ``systemctl`` is ``benchmarks/systemctl_call.py``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from mosaic_conformance.harness.systems import BackendUnavailable
from mosaic_conformance.harness.systems.engine import find_engine
from mosaic_conformance.harness.systems.systemd import SystemdBackend, SystemdSession
from mosaic_conformance.harness.systems.systemd_image import Recipe, ensure_image

TEMPLATE = "[Service]\nExecStart=/bin/sleep infinity\n[Install]\nWantedBy=default.target\n"
AGENTS = [f"mosaic-agent@bench{i}.service" for i in range(3)]


def seconds(step: Callable[[], object]) -> float:
    start = time.perf_counter()
    step()
    return time.perf_counter() - start


def show(label: str, values: list[float]) -> None:
    if len(values) == 1:
        print(f"{label:<46} {values[0]:8.3f} s")
    else:
        print(
            f"{label:<46} median {statistics.median(values):7.3f} s   "
            f"min {min(values):7.3f}   max {max(values):7.3f}   (n={len(values)})"
        )


def step_costs(engine_name: str, cold: bool, repeat: int) -> None:
    engine = find_engine(engine_name)
    print(f"-- {engine_name}: {engine.describe()}")
    recipe = Recipe.from_context()
    if cold:
        fresh = Recipe(recipe.suite, recipe.packages, f"{recipe.dockerfile}\n# {uuid.uuid4()}")
        show("image build, cold", [seconds(lambda: ensure_image(engine, fresh))])
        engine.command("rmi", fresh.tag)
    show("image, cached", [seconds(lambda: ensure_image(engine, recipe))])
    shared = Path(tempfile.mkdtemp(prefix="mc-bench-"))
    session = SystemdSession(shared / "session", {"shared": str(shared), "engine": engine_name})
    try:
        show("session start (boot to the channel answering)", [seconds(session.start)])
        opens, boots = [], []
        for i in range(repeat):
            root = shared / f"t{i}"
            opens.append(seconds(lambda root=root: session.open(root)))
            backend = session.open(root)
            (backend.unit_dir / "mosaic-agent@.service").write_text(TEMPLATE)
            env = {**os.environ, **backend.environ()}
            for argv in (
                ["systemctl", "--user", "daemon-reload"],
                ["systemctl", "--user", "enable", "--now", *AGENTS],
                ["loginctl", "enable-linger", backend.user],
            ):
                subprocess.run(argv, env=env, check=True, capture_output=True)

            def restart(backend: SystemdBackend = backend) -> None:
                backend.boot()
                assert backend.state().active == set(AGENTS), "the agents did not come back"

            boots.append(seconds(restart))
        show("open (a fresh system per test)", opens)
        show("restart until the agents run again", boots)
    finally:
        show("session close", [seconds(session.close)])


def suite_once(backend: str, engine: str, extra: list[str]) -> tuple[float, int]:
    argv = [sys.executable, "-m", "pytest", "--conformance", "-q", "-p", "no:cacheprovider"]
    argv += ["--conformance-backend", backend]
    if backend == "systemd":
        argv += ["--conformance-container-engine", engine]
    argv += extra or ["-n", "0"]
    with tempfile.TemporaryDirectory(prefix="mc-bench-suite-") as where:
        started = time.perf_counter()
        done = subprocess.run(argv, cwd=where, check=False, capture_output=True)
        return time.perf_counter() - started, done.returncode


def suite_ratio(engines: list[str], rounds: int, extra: list[str]) -> None:
    runs = [("fake", "")] + [("systemd", e) for e in engines]
    walls: dict[tuple[str, str], list[float]] = {run: [] for run in runs}
    for _ in range(rounds):
        for backend, engine in runs:
            wall, code = suite_once(backend, engine, extra)
            if code != 0:
                sys.exit(f"the {backend} {engine} suite failed (exit {code})")
            walls[(backend, engine)].append(wall)
    args = " ".join(extra or ["-n", "0"])
    print(f"-- the fleet suites against the reference ({args}), taking turns, {rounds} round(s)")
    for (backend, engine), values in walls.items():
        show(f"suite wall, {backend} {engine}".rstrip(), values)
    fake = statistics.median(walls[("fake", "")])
    for engine in engines:
        ratio = statistics.median(walls[("systemd", engine)]) / fake
        print(f"{'systemd on ' + engine + ' / fake':<46} {ratio:8.2f}  (target: at most 1.5)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--engine", action="append", help="docker, podman (default: both)")
    parser.add_argument("--cold", action="store_true", help="also build the image from nothing")
    parser.add_argument("--steps", action="store_true", help="time the backend's steps")
    parser.add_argument("--suite", action="store_true", help="fake vs systemd suite wall time")
    parser.add_argument("--rounds", type=int, default=1, help="suite rounds (default 1)")
    parser.add_argument("--repeat", type=int, default=5, help="tests to simulate (default 5)")
    parser.add_argument("extra", nargs="*", help="pytest arguments for the suites (after --)")
    args = parser.parse_args()
    engines = []
    for name in args.engine or ["docker", "podman"]:
        try:
            find_engine(name)
            engines.append(name)
        except BackendUnavailable as exc:
            print(f"-- {name}: skipped ({exc})")
    if args.steps or not args.suite:
        for name in engines:
            step_costs(name, args.cold, args.repeat)
    if args.suite:
        suite_ratio(engines, args.rounds, args.extra)


if __name__ == "__main__":
    main()
