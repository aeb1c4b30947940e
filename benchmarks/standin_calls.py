"""What one call to a fake stand-in costs: prints mean and p95 per call, in milliseconds.

    python benchmarks/standin_calls.py [--calls 200]

Each call is timed from Python (``subprocess.run``, as a fleet in any language spawns it);
the same harness timing ``/bin/true`` shows the floor that spawning alone costs here. A second
figure runs the calls from one ``sh`` loop, which leaves Python's spawn overhead out. The
fake's tmux is the real one behind a recording wrapper: the real tmux's own figure shows what
the wrapper adds. Last, what the harness's own questions cost (``state()``, ``close()``).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from mosaic_conformance.harness.systems.fake import FakeBackend, FakeSession

TEMPLATE = "[Unit]\nDescription=Agent %i\n[Service]\nExecStart=/bin/true\n"
TEMPLATE += "[Install]\nWantedBy=default.target\n"
MESSAGE = "please rebase on main and run the whole test suite before you push, thanks"


def timed(argv: Sequence[str], env: dict[str, str], calls: int) -> list[float]:
    """Seconds per call of ``argv``, each spawned from Python."""
    costs = []
    for _ in range(calls):
        start = time.perf_counter()
        subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        costs.append(time.perf_counter() - start)
    return costs


def in_sh_loop(command: str, env: dict[str, str], calls: int) -> float:
    """Seconds per call of ``command`` run ``calls`` times by one sh loop."""
    loop = f'i=0; while [ "$i" -lt {calls} ]; do {command} >/dev/null 2>&1; i=$((i + 1)); done'
    start = time.perf_counter()
    subprocess.run(["sh", "-c", loop], env=env, check=True)
    return (time.perf_counter() - start) / calls


def report(label: str, costs: list[float], looped: float | None = None) -> None:
    ms = sorted(c * 1000 for c in costs)
    p95 = ms[min(len(ms) - 1, round(0.95 * (len(ms) - 1)))]
    extra = f"   sh loop {looped * 1000:6.2f}" if looped is not None else ""
    print(f"{label:<44} mean {statistics.fmean(ms):7.2f}   p95 {p95:7.2f}{extra}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200, help="calls per figure")
    calls = parser.parse_args().calls

    with tempfile.TemporaryDirectory() as tmp:
        session = FakeSession(Path(tmp) / "session")
        session.start()
        try:
            measure(session, Path(tmp), calls)
        finally:
            session.close()  # ends the tmux servers


def measure(session: FakeSession, tmp: Path, calls: int) -> None:
    fake: FakeBackend = session.open(tmp / "root")
    (fake.unit_dir / "mosaic-agent@.service").write_text(TEMPLATE)
    env = {**os.environ, **fake.environ()}
    units = [f"mosaic-agent@a{i}.service" for i in range(1000)]
    subprocess.run(["systemctl", "--user", "-q", "enable", *units[:500]], env=env, check=True)
    subprocess.run(["systemctl", "--user", "start", *units[:250]], env=env, check=True)
    subprocess.run(["tmux", "new-session", "-d", "-s", "agent", "cat"], env=env, check=True)
    real_tmux = [fake.tmux, "-S", str(fake.tmux_servers()[0])]

    print(f"per call, milliseconds ({calls} calls each)")
    report("/bin/true (spawn floor)", timed(["/bin/true"], env, calls))
    figures = [
        ("systemctl --user is-enabled UNIT", ["systemctl", "--user", "is-enabled", units[0]]),
        ("systemctl --user is-active UNIT", ["systemctl", "--user", "is-active", units[0]]),
        ("tmux has-session -t agent", ["tmux", "has-session", "-t", "agent"]),
        ("  the real tmux alone", [*real_tmux, "has-session", "-t", "agent"]),
        (
            "tmux send-keys -t agent MESSAGE Enter",
            ["tmux", "send-keys", "-t", "agent", MESSAGE, "Enter"],
        ),
    ]
    for label, argv in figures:
        command = " ".join(f"'{a}'" for a in argv)
        report(label, timed(argv, env, calls), in_sh_loop(command, env, calls))

    enable = ["systemctl", "--user", "enable", "--now"]
    report(
        "systemctl --user enable --now (new unit)",
        [timed([*enable, f"mosaic-agent@n{i}.service"], env, 1)[0] for i in range(calls)],
    )
    show = ["systemctl", "--user", "show", "-p", "ActiveState,UnitFileState", *units]
    listed = ["systemctl", "--user", "list-units", "--all", "--plain", "mosaic-agent@*"]
    print("one call for 1000 units, milliseconds (10 calls each)")
    report("systemctl --user show -p ActiveState,...", timed(show, env, 10))
    report("systemctl --user list-units --all ...", timed(listed, env, 10))

    print("the harness's own questions, milliseconds (10 calls each)")
    report("state() of 1000 units", [seconds(fake.state) for _ in range(10)])
    report("close() with one tmux server", [closing(session, tmp) for _ in range(10)])


def seconds(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def closing(session: FakeSession, tmp: Path) -> float:
    """Seconds for close() of a fresh system whose fleet started one tmux server."""
    with tempfile.TemporaryDirectory(dir=tmp) as root:
        fake = session.open(Path(root))
        env = {**os.environ, **fake.environ()}
        subprocess.run(["tmux", "new-session", "-d", "-s", "agent"], env=env, check=True)
        return seconds(fake.close)


if __name__ == "__main__":
    main()
