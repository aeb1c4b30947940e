"""What the systemd backend costs here: prints seconds for each step.

    python benchmarks/suite_systemd.py [--cold] [--suite] [--repeat 5]

- image: finding the cached image; with ``--cold``, also a build from nothing (a copy of the
  recipe under its own tag, removed afterwards, so the real cache is untouched);
- session start: container up, systemd booted, the test user made;
- open: one fresh system (a new login) per test;
- forwarded call: one ``systemctl --user`` through the shim, spawned from Python;
- restart to units back: ``boot()`` with three enabled agents and linger, until ``state()``
  shows them running again;
- with ``--suite``: the fleet suites' wall time against the reference, ``-n 2``.
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

import docker

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
        print(f"{label:<38} {values[0]:8.3f} s")
    else:
        print(
            f"{label:<38} median {statistics.median(values):7.3f} s   "
            f"min {min(values):7.3f}   max {max(values):7.3f}   (n={len(values)})"
        )


def image_costs(client: docker.DockerClient, cold: bool) -> None:
    recipe = Recipe.from_context()
    if cold:
        fresh = Recipe(recipe.suite, recipe.packages, f"{recipe.dockerfile}\n# {uuid.uuid4()}")
        show("image build, cold", [seconds(lambda: ensure_image(client, fresh))])
        client.images.remove(fresh.tag)
    ensure_image(client, recipe)
    show("image, cached", [seconds(lambda: ensure_image(client, recipe))])


def backend_costs(repeat: int) -> None:
    shared = Path(tempfile.mkdtemp(prefix="mosaic-bench-"))
    session = SystemdSession(shared / "session", {"shared": str(shared)})
    try:
        show("session start (boot to ready)", [seconds(session.start)])
        opens, calls, boots = [], [], []
        for i in range(repeat):
            root = shared / f"t{i}"
            opens.append(seconds(lambda root=root: session.open(root)))
            backend = session.open(root)
            backend.unit_dir.mkdir(parents=True, exist_ok=True)
            (backend.unit_dir / "mosaic-agent@.service").write_text(TEMPLATE)
            env = {**os.environ, **backend.environ()}

            def call(*argv: str, env: dict[str, str] = env) -> None:
                subprocess.run(argv, env=env, check=True, capture_output=True)

            calls.append(seconds(lambda: call("systemctl", "--user", "daemon-reload")))
            call("systemctl", "--user", "enable", "--now", *AGENTS)
            call("loginctl", "enable-linger", backend.user)
            for _ in range(4):
                calls.append(seconds(lambda: call("systemctl", "--user", "is-active", *AGENTS)))

            def restart(backend: SystemdBackend = backend) -> None:
                backend.boot()
                assert backend.state().active == set(AGENTS), "the agents did not come back"

            boots.append(seconds(restart))
        show("open (a fresh system per test)", opens)
        show("forwarded call", calls)
        show("restart to units back", boots)
    finally:
        show("session close", [seconds(session.close)])


def suite_wall_time() -> None:
    with tempfile.TemporaryDirectory(prefix="mosaic-bench-suite-") as where:
        argv = [sys.executable, "-m", "pytest", "--conformance", "--conformance-backend", "systemd"]
        argv += ["-n", "2", "-q", "-p", "no:cacheprovider"]
        exits = []
        took = seconds(
            lambda: exits.append(
                subprocess.run(argv, cwd=where, check=False, capture_output=True).returncode
            )
        )
        show(f"fleet suites, reference, -n 2 (exit {exits[0]})", [took])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cold", action="store_true", help="also build the image from nothing")
    parser.add_argument("--suite", action="store_true", help="also time the fleet suites")
    parser.add_argument("--repeat", type=int, default=5, help="tests to simulate (default 5)")
    args = parser.parse_args()
    client = docker.from_env()
    image_costs(client, args.cold)
    backend_costs(args.repeat)
    if args.suite:
        suite_wall_time()


if __name__ == "__main__":
    main()
