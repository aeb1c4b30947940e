"""The back-compat tmux default end to end, on a real systemd (the systemd backend): a fleet
initialised and installed as a new user would, with no `connector` block, talks through its
tmux connector, and still does after the machine restarts.

The fleet runs on the host, its systemctl and tmux forwarded into the container (the systemd
backend's seam). The connector, though, runs where the fleet's tmux server runs, as an
orchestrator would: in the container, started in a tmux window with a copy of this package and
libtmux (the container has Python, not the toolkit). Skipped, with the reason, only where no
container engine can start.
"""

from __future__ import annotations

import importlib.util
import json
import shlex
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("docker")

from mosaic_conformance.connectors.tmux_chat import parse_screen
from mosaic_conformance.contract import (
    CHAT_WINDOW,
    HOLDER_UNIT,
    ORCHESTRATOR_SESSION,
    TMUX_SOCKET,
    agent_session,
)
from mosaic_conformance.harness.fleet import FleetUnderTest
from mosaic_conformance.harness.systems import (
    BackendSession,
    BackendUnavailable,
    create_session,
)
from mosaic_conformance.wait import Pending, wait_for

PACKAGE = Path(__file__).resolve().parent.parent / "mosaic_conformance"
AGENT = "e2e0"
SEND_TIMEOUT = 60.0  # a Python start in the container, the chat pane's too, on a busy machine
BACK_TIMEOUT = 60.0  # the holder and the agent's session after a restart

# Run in the container: the default connector (no roster block), one message, its health.
SENDER = textwrap.dedent(
    """\
    import json, sys
    sys.path.insert(0, sys.argv[1])
    from mosaic_conformance.connectors import default_registry
    from mosaic_conformance.connectors.types import OutboundMessage
    connector = default_registry().create(None)
    sent = connector.send(OutboundMessage(text=sys.argv[2]))
    health = connector.health()
    connector.close()
    print(json.dumps({"kind": connector.kind, "delivered": sent.delivered, "id": sent.message_id,
                      "error": sent.error, "reachable": health.reachable}))
    """
)


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BackendSession]:
    shared = tmp_path_factory.getbasetemp()
    made = create_session("systemd", tmp_path_factory.mktemp("e2e-session"), {"shared": shared})
    try:
        made.start()
    except BackendUnavailable as exc:
        made.close()
        pytest.skip(f"the systemd backend cannot run here: {exc}")
    yield made
    made.close()


def tmux(fleet: FleetUnderTest, *args: str) -> subprocess.CompletedProcess[str]:
    """The fleet's tmux server, as the fleet reaches it (forwarded into the container, which
    also hands the fleet's home to the container user)."""
    env = fleet.environ()
    argv = ["tmux", "-L", TMUX_SOCKET, *args]
    return subprocess.run(argv, env=env, capture_output=True, text=True, check=False)


def in_container_library(home: Path) -> Path:
    """This package and libtmux, where the container user reads them (the fleet's home is
    handed to it on every forwarded call)."""
    spec = importlib.util.find_spec("libtmux")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("libtmux is not installed (pip install 'mosaic-conformance[connectors]')")
    lib = home / "e2e-lib"
    ignore = shutil.ignore_patterns("__pycache__")
    shutil.copytree(PACKAGE, lib / "mosaic_conformance", ignore=ignore)
    shutil.copytree(spec.submodule_search_locations[0], lib / "libtmux", ignore=ignore)
    (lib / "send.py").write_text(SENDER)
    return lib


def send_in_container(
    fleet: FleetUnderTest, lib: Path, text: str, attempt: str
) -> dict[str, object]:
    """Send ``text`` through the default connector, from a window of the fleet's tmux."""
    out = lib / f"sent-{attempt}.json"
    command = shlex.join(["python3", str(lib / "send.py"), str(lib), text])
    shell = f"{command} >{shlex.quote(str(out))}.tmp 2>&1; mv {shlex.quote(str(out))}.tmp {out}"
    opened = tmux(fleet, "new-window", "-d", "-t", f"={ORCHESTRATOR_SESSION}:", "-n", attempt)
    assert opened.returncode == 0, opened.stderr
    sent = tmux(fleet, "send-keys", "-t", f"={ORCHESTRATOR_SESSION}:{attempt}", shell, "Enter")
    assert sent.returncode == 0, sent.stderr
    state = f"{out}.tmp"
    done = wait_for(
        lambda: out.exists() and out.read_text(),
        what=f"the connector in the container to send {text!r}",
        timeout=SEND_TIMEOUT,
        state=lambda: Path(state).read_text() if Path(state).exists() else window(fleet, attempt),
    )
    result: dict[str, object] = json.loads(done.splitlines()[-1])
    return result


def window(fleet: FleetUnderTest, name: str) -> str:
    target = f"={ORCHESTRATOR_SESSION}:{name}"
    return tmux(fleet, "capture-pane", "-p", "-J", "-t", target).stdout[-1000:]


def pane_shows(fleet: FleetUnderTest, message_id: object, text: str) -> bool | Pending:
    """Whether the operator's chat pane shows the orchestrator's message ``message_id``."""
    target = f"={ORCHESTRATOR_SESSION}:{CHAT_WINDOW}"
    screen = tmux(fleet, "capture-pane", "-p", "-J", "-S", "-", "-t", target)
    seen = list(parse_screen(screen.stdout.splitlines()))
    if any(m.from_orchestrator and m.id == message_id and m.text == text for m in seen):
        return True
    return Pending(screen.stdout[-500:] or screen.stderr)


def healthy(fleet: FleetUnderTest) -> dict[str, object]:
    result = fleet.run("connector", "--json")
    assert result.exit_code == 0, f"the default connector is not healthy\n{result}"
    health: dict[str, object] = json.loads(result.stdout)
    assert (health["kind"], health["reachable"], health["authenticated"]) == ("tmux", True, True)
    return health


def test_the_default_tmux_connector_talks_and_comes_back_after_a_restart(
    session: BackendSession, tmp_path: Path
) -> None:
    backend = session.open(tmp_path / "system")
    fleet = FleetUnderTest(
        (sys.executable, "-m", "mosaic_conformance.fleet"), tmp_path / "home", backend
    )
    fleet.ok("init", "--profile", "general", "--write")  # no connector block: tmux
    fleet.ok("install")
    fleet.ok("add", AGENT, "--runtime", "codex")
    healthy(fleet)
    lib = in_container_library(fleet.home)

    before = send_in_container(fleet, lib, "hello from the orchestrator", "send1")
    assert (before["kind"], before["delivered"]) == ("tmux", True), before
    wait_for(
        lambda: pane_shows(fleet, before["id"], "hello from the orchestrator"),
        what="the message in the operator's chat pane",
        timeout=SEND_TIMEOUT,
    )

    backend.boot()  # `docker restart`: the user's units come back through linger

    def back() -> bool | Pending:
        listed = tmux(fleet, "list-sessions", "-F", "#{session_name}")
        sessions = set(listed.stdout.split())
        wanted = {ORCHESTRATOR_SESSION, agent_session(AGENT)}
        return wanted <= sessions or Pending(listed.stdout + listed.stderr)

    wait_for(back, what="the holder's and the agent's tmux sessions", timeout=BACK_TIMEOUT)
    assert HOLDER_UNIT in backend.state().active
    healthy(fleet)
    ps = json.loads(fleet.ok("ps", "--json").stdout)
    assert {a["name"]: a["tmux"] for a in ps["agents"]}[AGENT] == "up", ps

    after = send_in_container(fleet, lib, "still here after the restart", "send2")
    assert after["delivered"] is True, after
    wait_for(
        lambda: pane_shows(fleet, after["id"], "still here after the restart"),
        what="the message after the restart in the operator's chat pane",
        timeout=SEND_TIMEOUT,
    )
