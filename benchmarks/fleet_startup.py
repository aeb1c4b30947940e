"""The reference fleet's start against Python's own: `mosaic fleet add NAME --no-start` and
`mosaic fleet ps` next to `python -c 'import yaml'`, from an installed wheel.

    python benchmarks/fleet_startup.py [--runs 21]

The wheel is built from this checkout and installed (not editable) into a folder of its own,
found first on PYTHONPATH; its dependencies are this interpreter's. systemctl, loginctl and
tmux are /bin/true, so the figures are the fleet's own start and work, not systemd's. Each
fleet command and `import yaml` run in turn (A B A B ...), and the ratio is taken pair by
pair; the medians are printed, wall time and CPU time (the process and its children).
Each `add` starts from the same small roster (the general profile), put back between runs.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parent.parent


def install_wheel(folder: Path) -> Path:
    """Build the wheel and install it into ``folder``; return its `mosaic` script."""
    quiet = {"stdout": subprocess.DEVNULL, "check": True}
    pip = [sys.executable, "-m", "pip", "-q", "--disable-pip-version-check"]
    subprocess.run([*pip, "wheel", "--no-deps", "-w", folder / "dist", CHECKOUT], **quiet)
    (wheel,) = (folder / "dist").glob("*.whl")
    target = folder / "site"
    subprocess.run([*pip, "install", "--no-deps", "--target", target, wheel], **quiet)
    return target / "bin" / "mosaic"


def timed(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the process and its children)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return wall, cpu


def compare(label: str, fleet: list[str], env: dict[str, str], runs: int, reset: object) -> None:
    bare = [sys.executable, "-c", "import yaml"]
    rows = []
    for _ in range(runs + 1):  # the first pair warms the caches and is not counted
        if callable(reset):
            reset()
        rows.append((timed(fleet, env), timed(bare, env)))
    rows = rows[1:]
    for index, what in ((0, "wall"), (1, "cpu ")):
        a = statistics.median(r[0][index] for r in rows) * 1000
        b = statistics.median(r[1][index] for r in rows) * 1000
        ratio = statistics.median(r[0][index] / r[1][index] for r in rows)
        print(f"{label:26s} {what} {a:6.1f} ms   import yaml {b:6.1f} ms   ratio {ratio:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=21)
    runs = parser.parse_args().runs
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        mosaic = install_wheel(folder)
        stand_ins = folder / "stand-ins"
        stand_ins.mkdir()
        for name in ("systemctl", "loginctl", "tmux"):
            (stand_ins / name).symlink_to(shutil.which("true") or "/bin/true")
        home = folder / "home"
        env = {
            **os.environ,
            "PYTHONPATH": str(folder / "site"),
            "PATH": f"{stand_ins}{os.pathsep}{os.environ['PATH']}",
            "MOSAIC_HOME": str(home),
        }
        subprocess.run(
            [mosaic, "fleet", "init", "--write"], env=env, check=True, stdout=subprocess.DEVNULL
        )
        subprocess.run([mosaic, "fleet", "ps"], env=env, stdout=subprocess.DEVNULL)  # caches
        roster = home / "fleet" / "roster.yaml"
        general = roster.read_bytes()

        def reset() -> None:
            roster.write_bytes(general)

        add = [str(mosaic), "fleet", "add", "bench0", "--runtime", "codex", "--no-start"]
        compare("fleet add NAME --no-start", add, env, runs, reset)
        compare("fleet ps", [str(mosaic), "fleet", "ps"], env, runs, None)


if __name__ == "__main__":
    main()
