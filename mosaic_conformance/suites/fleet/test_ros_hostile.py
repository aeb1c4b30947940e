"""ROS.3 and ROS.5 under hostile conditions: generated input, and fleets killed mid-write.

Every generated case must end one of two ways: success with a valid roster, or a non-zero
exit that changed nothing on disk or in systemd, with no traceback for the user.
"""

from __future__ import annotations

import random
import subprocess
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import yaml
from hypothesis import assume, given, note
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from mosaic_conformance.harness.fleet import (
    FleetUnderTest,
    kill_group,
    kill_when_writing,
    schema_problems,
)
from mosaic_conformance.harness.outcomes import HarnessError
from mosaic_conformance.harness.plugin import Settings

from .checks import ONE_ORCHESTRATOR, WORKER

# A state machine example runs ~10 fleet commands; a generated input runs one or two.
EXAMPLES_PER_STEP = 4

# --- generated agent names ----------------------------------------------------------------

NAMES = st.one_of(
    st.text(max_size=80),  # anything, unicode and control characters included
    st.text(alphabet=st.sampled_from("aZ09._-@/ ;$`|&*?'\"\\\n\t!~#%^()[]{}<>"), max_size=20),
    st.from_regex(r"-[a-z]{1,5}", fullmatch=True),  # option-like
    st.builds(
        lambda part, n: part * n, st.sampled_from(["a", "..", "é", "a/"]), st.integers(1, 200)
    ),
)


def judge(fleet: FleetUnderTest, act: Callable[[], Any], accepted: Callable[[], bool]) -> None:
    """Run ``act``; it either succeeds (``accepted()`` must then hold) or changes nothing."""
    before, state = fleet.snapshot(), fleet.backend.state()
    result = act()
    note(str(result))
    assert "Traceback (most recent call last)" not in result.output, "a traceback reached the user"
    assert result.exit_code in (0, 1, 2), f"exit status {result.exit_code}\n{result}"
    if result.exit_code == 0:
        problems = schema_problems(fleet.roster())
        assert not problems, f"accepted, and the roster is now invalid: {problems}\n{result}"
        assert accepted(), f"exit 0 but the change is not there\n{result}"
        return
    changes = before.changes(fleet.snapshot())
    assert not changes, f"refused, yet files changed: {changes}\n{result}"
    assert fleet.backend.state() == state, f"refused, yet systemd changed\n{result}"


@pytest.mark.requirement("ROS.3")
def test_generated_agent_names(
    installed: FleetUnderTest, machine_settings: Any, record_figure: Callable[[str, object], None]
) -> None:
    cases = 0

    @hypothesis_settings(
        machine_settings, max_examples=machine_settings.max_examples * EXAMPLES_PER_STEP
    )
    @given(name=NAMES)
    def add_then_remove(name: str) -> None:
        nonlocal cases
        assume("\x00" not in name)  # no argv can carry a NUL byte: the OS refuses, not the fleet
        cases += 1
        judge(
            installed,
            lambda: installed.run("add", *WORKER, "--no-start", "--", name),
            lambda: name in installed.roster_names(),
        )
        if name in installed.roster_names():
            installed.ok("remove", "--", name)

    try:
        add_then_remove()
    finally:
        record_figure("cases", cases)


# --- generated rosters --------------------------------------------------------------------


JUNK = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=6,
)


@st.composite
def mutated_rosters(draw: st.DrawFn) -> bytes:
    """A valid roster, changed one way: a value of the wrong type, a field missing or extra,
    a duplicate, YAML anchors and tags, a huge document, or bytes that are not UTF-8."""
    data: Any = yaml.safe_load(yaml.safe_dump(ONE_ORCHESTRATOR))
    kind = draw(
        st.sampled_from(
            ["replace", "delete", "extra", "duplicate", "anchor", "tag", "huge", "bytes"]
        )
    )
    agent = data["agents"][draw(st.integers(0, 1))]
    if kind == "replace":
        where = draw(
            st.sampled_from(["version", "transport", "agents", "name", "runtime", "class"])
        )
        (data if where in data else agent)[where] = draw(JUNK)
    elif kind == "delete":
        if draw(st.booleans()):
            del data[draw(st.sampled_from(["version", "transport", "agents"]))]
        else:
            del agent[draw(st.sampled_from(["name", "runtime"]))]
    elif kind == "extra":
        (data if draw(st.booleans()) else agent)[draw(st.text(min_size=1, max_size=8))] = draw(JUNK)
    elif kind == "duplicate":
        data["agents"].append(dict(agent))
    text = yaml.safe_dump(data, sort_keys=False)
    if kind == "anchor":
        text = (
            "version: 1\ntransport: tmux\nbase: &a {runtime: codex}\nagents:\n"
            "  - {name: a, <<: *a}\n" + ("  - {name: b, <<: *a}\n" if draw(st.booleans()) else "")
        )
    elif kind == "tag":
        tag = draw(
            st.sampled_from(
                [
                    "!!python/object:os.system",
                    "!!binary",
                    "!!set",
                    "!custom",
                    "!!timestamp",
                    "!!python/name:os.system",
                ]
            )
        )
        text = text.replace("runtime: codex", f"runtime: {tag} codex", 1)
    elif kind == "huge":  # up to ~170 kB: far past any sane roster size
        count = draw(st.integers(1, 5000))
        text = "version: 1\ntransport: tmux\nagents:\n" + "".join(
            f"  - {{name: a{i}, runtime: codex}}\n" for i in range(count)
        )
    raw = text.encode()
    if kind == "bytes":
        at = draw(st.integers(0, len(raw)))
        raw = raw[:at] + draw(st.binary(min_size=1, max_size=4).filter(_not_utf8)) + raw[at:]
    return raw


def _not_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


@pytest.mark.requirement("ROS.3")
def test_generated_rosters(
    fleet: FleetUnderTest, machine_settings: Any, record_figure: Callable[[str, object], None]
) -> None:
    cases = 0
    fleet.ok("init", "--profile", "general", "--write")
    fleet.ok("install")

    @hypothesis_settings(
        machine_settings, max_examples=machine_settings.max_examples * EXAMPLES_PER_STEP
    )
    @given(raw=mutated_rosters())
    def add_to(raw: bytes) -> None:
        nonlocal cases
        cases += 1
        fleet.plant_roster(raw)
        note(repr(raw[:300]))
        judge(
            fleet,
            lambda: fleet.run("add", "newcomer", *WORKER, "--no-start"),
            lambda: "newcomer" in fleet.roster_names(),
        )
        if "newcomer" in fleet.roster_names():
            fleet.ok("remove", "newcomer")

    try:
        add_to()
    finally:
        record_figure("cases", cases)


# --- killed mid-write ---------------------------------------------------------------------

KILLED_ADDS = 16  # killed at random points, AT_ONCE at a time
AT_ONCE = 4
# Adds each killed the moment it is seen writing in the roster's folder, until this many
# kills landed mid-write or this many adds were tried (a busy machine makes it miss some).
HUNTED_KILLS, HUNTED_ADDS = 3, 12
BIG_ROSTER = 800  # agents already there, so that a write takes long enough to be hit


class RosterWatcher:
    """Reads the roster over and over while fleets write it: a reader must only ever see a
    whole roster, the old one or a new one (atomic writes), never a torn one. A read is torn
    when it does not parse, or holds fewer agents than were there before (a file cut at a
    line end still parses). Only parsing, so that reads are many and cheap."""

    def __init__(self, fleet: FleetUnderTest, at_least: int) -> None:
        self.fleet, self.at_least = fleet, at_least
        self.reads = 0
        self.torn: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def __enter__(self) -> RosterWatcher:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _watch(self) -> None:
        while not self._stop.wait(0.001):  # leave the fleets a core to write with
            agents = (self.fleet.roster() or {}).get("agents")
            self.reads += 1
            if not (isinstance(agents, list) and len(agents) >= self.at_least):
                seen = (
                    f"{len(agents)} agents"
                    if isinstance(agents, list)
                    else "no agents list (an empty or unreadable file)"
                )
                if len(self.torn) < 3:
                    self.torn.append(seen[:100])


@pytest.mark.requirement("ROS.5")
def test_adds_killed_at_random_points_lose_nothing_reported(
    installed: FleetUnderTest,
    conformance: Settings,
    record_figure: Callable[[str, object], None],
) -> None:
    """Adds killed at random points (the run's seed draws them), then adds killed while they
    write: a crash leaves a valid roster that keeps every agent reported added, and that the
    next add can still use."""
    fleet = installed
    folder = fleet.roster_path.parent
    roster = fleet.roster() or {}
    roster["agents"] = list(roster.get("agents") or []) + [
        {"name": f"old{i:04d}", "runtime": "codex", "class": "worker"} for i in range(BIG_ROSTER)
    ]
    fleet.plant_roster(yaml.safe_dump(roster, sort_keys=False))
    before = set(fleet.roster_names())
    # how long an add takes AT_ONCE at a time here: kills fall across that whole span
    probes = [f"probe{i}" for i in range(AT_ONCE)]
    with ThreadPoolExecutor(AT_ONCE) as pool:
        typical = max(
            r.seconds for r in pool.map(lambda n: fleet.ok("add", n, *WORKER, "--no-start"), probes)
        )
    chance = random.Random(conformance.seed)
    reported, killed, mid_write = set(), 0, 0
    names = [f"kill{i:02d}" for i in range(KILLED_ADDS)]
    with RosterWatcher(fleet, len(before)) as watcher:
        for batch in range(0, KILLED_ADDS, AT_ONCE):
            running = [
                (n, fleet.spawn("add", n, *WORKER, "--no-start"))
                for n in names[batch : batch + AT_ONCE]
            ]
            deadline = [time.monotonic() + chance.uniform(0, 1.3 * typical) for _ in running]
            for (name, proc), kill_at in sorted(
                zip(running, deadline, strict=True), key=lambda pair: pair[1]
            ):
                try:
                    code = proc.wait(timeout=max(0.0, kill_at - time.monotonic()))
                except subprocess.TimeoutExpired:
                    code, writing = kill_group(proc, folder)
                    killed, mid_write = killed + 1, mid_write + writing
                if code == 0:
                    reported.add(name)
    # A random kill seldom lands in a write (a write is a small part of an add): these do.
    hunted = 0
    while hunted < HUNTED_ADDS and mid_write < HUNTED_KILLS:
        name, hunted = f"hunt{hunted:02d}", hunted + 1
        code, writing = kill_when_writing(fleet.spawn("add", name, *WORKER, "--no-start"), folder)
        killed, mid_write = killed + writing, mid_write + writing
        if code == 0:
            reported.add(name)
    record_figure("adds_killed", killed)
    record_figure("adds_hunted", hunted)
    record_figure("kills_mid_write", mid_write)
    record_figure("adds_reported", len(reported))
    record_figure("roster_reads", watcher.reads)
    assert not watcher.torn, (
        f"a reader saw a half-written roster ({len(watcher.torn)} of "
        f"{watcher.reads} reads): {watcher.torn}"
    )
    problems = schema_problems(fleet.roster())
    assert not problems, f"after {killed} kills the roster is invalid: {problems[:5]}"
    present = set(fleet.roster_names())
    lost = sorted((before | reported | set(probes)) - present)
    assert not lost, (
        f"{len(lost)} agents lost after {killed} adds were killed ({mid_write} mid-write): "
        f"{lost[:20]}"
    )
    if not mid_write:
        raise HarnessError(
            f"none of {killed} kills landed while the fleet was writing in {folder}: a crash "
            "mid-write was not tried (the fleet writes elsewhere, or this machine is too busy "
            "for the suite to catch it writing)"
        )
    after = fleet.run("add", "after-kills", *WORKER, "--no-start")
    assert after.exit_code == 0, (
        f"after {mid_write} kills mid-write the roster cannot take an add:\n{after}"
    )
    assert "after-kills" in fleet.roster_names(), f"an add after the kills is not there:\n{after}"
