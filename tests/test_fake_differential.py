"""The fake backend's stand-ins against a real systemd: the same calls, the same answers.

For every verb the fake's ``systemctl --user`` and ``loginctl`` simulate, one sequence of
calls runs on a fresh fake system and on a fresh system of the systemd backend (systemd 252
as PID 1 in a container), and each call must give the same exit code, standard output and
standard error, after the normalisations below, each for a difference that is inherent.
Skipped, with the reason, where no container engine answers.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("docker")

from broken_standins import BROKEN_STANDINS, broken_session

from mosaic_conformance.harness.systems import (
    Backend,
    BackendSession,
    BackendUnavailable,
    create_session,
)
from mosaic_conformance.harness.systems.fake import FakeSession

AGENT = "mosaic-agent@.service"
UNIT_FILES = {
    AGENT: "[Unit]\nDescription=Mosaic agent %i\n\n[Service]\nExecStart=/bin/sleep infinity\n\n"
    "[Install]\nWantedBy=default.target\n",
    "mosaic-holder.service": "[Unit]\nDescription=Holder\n[Service]\n"
    "ExecStart=/bin/sleep infinity\n[Install]\nWantedBy=default.target\n",
    # no [Install]: enable has nothing to do (and says why)
    "mosaic-static.service": "[Unit]\nDescription=Static one\n[Service]\n"
    "ExecStart=/bin/sleep infinity\n",
}
A, B, C, D = (f"mosaic-agent@{n}.service" for n in "abcd")
N, S = "nope.service", "mosaic-static.service"  # no unit file; a unit file without [Install]

# One call a line, as a fleet would make it; {user} is the backend's user.
UNITS = f"""
systemctl --user daemon-reload
systemctl --user daemon-reload extra
systemctl --user enable {A}
systemctl --user enable {A}
systemctl --user enable mosaic-agent@b nope.service
systemctl --user enable mosaic-static.service
systemctl --user enable {AGENT}
systemctl --user enable -q mosaic-agent@q.service
systemctl --user enable
systemctl --user is-enabled {A} {B}
systemctl --user is-enabled {B}
systemctl --user is-enabled -q {A}
systemctl --user is-enabled mosaic-static.service mosaic-holder.service
systemctl --user is-enabled {AGENT}
systemctl --user is-enabled {A} nope.service
systemctl --user start {A} {C}
systemctl --user start nope.service
systemctl --user start {A} nope.service {D}
systemctl --user restart {C} nope.service
systemctl --user start {AGENT}
systemctl --user stop {AGENT}
systemctl --user restart {AGENT}
systemctl --user is-active {A} {B} nope.service
systemctl --user is-active {B}
systemctl --user is-active -q {A}
systemctl --user is-active {AGENT}
systemctl --user show --property=Id,LoadState,ActiveState,SubState,UnitFileState {A} {B} {N}
systemctl --user show -p Id -p Names -p Description -p FragmentPath -p UnitFilePreset {A} {N} {S}
systemctl --user show -p ActiveState --value {A} {B}
systemctl --user show -pId,ActiveState mosaic-agent@a
systemctl --user show --property UnitFileState {AGENT}
systemctl --user list-units --all --plain --no-legend --full mosaic-agent@*
systemctl --user list-units mosaic-agent@*
systemctl --user list-units --all mosaic-*
systemctl --user list-units --plain -a mosaic-agent@a* mosaic-holder*
systemctl --user list-units --no-legend nothing*
systemctl --user list-units nothing*
systemctl --user list-unit-files mosaic-*
systemctl --user list-unit-files --no-legend mosaic-agent@*
systemctl --user list-unit-files nothing*
systemctl --user list-unit-files --no-legend nothing*
systemctl --user stop {A} nope.service {D}
systemctl --user stop mosaic-agent@zz.service
systemctl --user --no-pager --no-block -l is-active {A} {C} {D}
systemctl --user reset-failed
systemctl --user reset-failed {A}
systemctl --user reset-failed nope.service
systemctl --user disable {A}
systemctl --user disable {A}
systemctl --user disable nope.service
systemctl --user disable mosaic-static.service
systemctl --user enable --now mosaic-agent@e.service
systemctl --user disable --now mosaic-agent@e.service
systemctl --user enable mosaic-agent@f mosaic-agent@g mosaic-holder.service
systemctl --user list-unit-files mosaic-*
systemctl --user disable {AGENT}
systemctl --user list-units --all --plain --no-legend mosaic-*
state
"""

# The user is named in every call: the systemd backend's calls come through docker exec,
# outside any login session, where loginctl has no "current user". For the same reason its
# user is known to logind only while lingering (the fake's user is logged in), so show-user
# is asked only then.
LINGER = """
loginctl enable-linger {user}
loginctl enable-linger {user}
loginctl enable-linger {user} {user}
loginctl show-user {user} -p Linger
loginctl show-user {user} -pLinger
loginctl show-user {user} --property=Name
loginctl show-user {user} --value -p Linger -p Name
loginctl show-user {user} {user} -p Linger
loginctl --no-pager --no-ask-password show-user {user} -p Name
loginctl enable-linger nobody-here
loginctl disable-linger nobody-here
loginctl show-user nobody-here -p Linger
loginctl disable-linger {user}
loginctl disable-linger {user}
state
"""

# A reboot: what comes back, asked as a fleet's `ps` would.
BOOT = f"""
loginctl enable-linger {{user}}
systemctl --user enable {A} mosaic-holder.service
systemctl --user start {C}
systemctl --user enable --now {D}
systemctl --user disable {D}
boot
systemctl --user list-units --all --plain --no-legend --full mosaic-*
systemctl --user is-active {A} {C} {D}
state
"""

SCENARIOS = {"units": UNITS, "linger": LINGER, "boot": BOOT}
# systemd chooses its glyphs (arrow, bullet) by the locale, and the shims pass none into the
# container: the fake gets none either.
LOCALE = ("LANG", "LC_ALL", "LC_CTYPE")
LINK_LINES = ("Created symlink ", 'Removed "')


def transcript(backend: Backend, calls: str) -> str:
    """Every call of ``calls`` run on ``backend``: argv, exit code, stdout and stderr."""
    env = {k: v for k, v in os.environ.items() if k not in LOCALE} | backend.environ()
    lines = []
    for call in calls.strip().splitlines():
        if call == "boot":
            backend.boot()
            lines.append("$ (reboot)")
            continue
        if call == "state":  # what the suites see of the system
            state = backend.state()
            lines.append(f"$ (state) {state.enabled=} {state.active=} {state.linger=}")
            continue
        argv = shlex.split(call.format(user=backend.user))
        done = subprocess.run(
            argv, env=env, capture_output=True, text=True, check=False, stdin=subprocess.DEVNULL
        )
        out, err = normalised(backend, done.stdout), normalised(backend, done.stderr)
        lines.append(f"$ {call}  -> {done.returncode}\n{out}[stderr]\n{err}")
    return "\n".join(lines)


def normalised(backend: Backend, text: str) -> str:
    # Each system lives in its own folder: paths under it are the same from there on.
    text = text.replace(str(backend.root), "ROOT")
    # Each backend has its own user (the fake's is made up; systemd's is the container's).
    text = re.sub(rf"^(Name=)?{re.escape(backend.user)}$", r"\1USER", text, flags=re.MULTILINE)
    # systemd names the links of several units in the order of its hash table.
    lines = text.splitlines(keepends=True)
    links = iter(sorted(line for line in lines if line.startswith(LINK_LINES)))
    return "".join(next(links) if line.startswith(LINK_LINES) else line for line in lines)


def open_with_units(session: BackendSession, root: Path) -> Backend:
    backend = session.open(root)
    for name, text in UNIT_FILES.items():
        (backend.unit_dir / name).write_text(text)
    return backend


@pytest.fixture(scope="module")
def systemd_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BackendSession]:
    shared = tmp_path_factory.mktemp("differential")
    try:
        with create_session("systemd", shared / "session", {"shared": str(shared)}) as session:
            yield session
    except BackendUnavailable as exc:
        pytest.skip(f"no real systemd to compare with: {exc}")


@pytest.fixture(scope="module")
def fake_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeSession]:
    with FakeSession(tmp_path_factory.mktemp("fake-session")) as session:
        yield session


@pytest.fixture(scope="module")
def systemd_answers(
    systemd_session: BackendSession, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, str]:
    """What the real systemd answered, per scenario (asked once, for every comparison)."""
    shared = Path(str(systemd_session.options["shared"]))
    answers = {}
    for name, calls in SCENARIOS.items():
        backend = open_with_units(systemd_session, shared / f"systemd-{name}")
        try:
            answers[name] = transcript(backend, calls)
        finally:
            backend.close()
    return answers


def fake_answers(session: FakeSession, scenario: str, root: Path) -> str:
    backend = open_with_units(session, root)
    try:
        return transcript(backend, SCENARIOS[scenario])
    finally:
        backend.close()


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_the_fake_answers_as_systemd_does(
    fake_session: FakeSession, systemd_answers: dict[str, str], scenario: str, tmp_path: Path
) -> None:
    assert fake_answers(fake_session, scenario, tmp_path / "fake") == systemd_answers[scenario]


def exit_codes(answers: str) -> list[str]:
    return re.findall(r"^\$ .*  -> \d+$", answers, flags=re.MULTILINE)


@pytest.mark.parametrize("variant", BROKEN_STANDINS)
def test_a_fake_with_the_right_exit_codes_but_other_output_is_caught(
    fake_session: FakeSession, systemd_answers: dict[str, str], variant: str, tmp_path: Path
) -> None:
    broken = broken_session(fake_session, variant, tmp_path / "session")
    scenario = "linger" if BROKEN_STANDINS[variant].script == "loginctl" else "units"
    answers = fake_answers(broken, scenario, tmp_path / "fake")
    assert exit_codes(answers) == exit_codes(systemd_answers[scenario])  # exit codes alone pass
    assert answers != systemd_answers[scenario]
