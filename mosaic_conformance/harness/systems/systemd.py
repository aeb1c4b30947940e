"""The real systemd backend: systemd as PID 1 in a container, the fleet on the host.

One container per pytest session (per xdist worker), on whichever engine answers (Docker,
or Podman through its socket or its CLI: :mod:`.engine`), with systemd as PID 1 and a user
manager for an ordinary user. The fleet under test runs on the host; ``systemctl``,
``loginctl`` and ``tmux`` on its ``PATH`` are forwarding shims (``bin/forward.sh``) that run
the same command in the container as that user, through one long-lived channel
(:mod:`.channel`: a server in the container, a Unix socket in the shared folder), so a call
costs a round trip, not a ``docker exec``. The session's folder is bound into the container
at the same path, so the unit files the fleet writes, the absolute links ``enable`` makes,
the files the units read and the channel's socket mean the same on both sides.

Per test, :meth:`SystemdSession.open` gives a fresh system: linger off, the user manager
restarted with ``XDG_CONFIG_HOME`` pointing at the test's own folder (so it loads exactly the
units that test wrote, and nothing of an earlier test runs), as if the user had just logged
in. :meth:`SystemdBackend.boot` is a real restart of the container: nobody logs in
afterwards, so the user's units come back only through linger, as on an unattended machine.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import shutil
import socket
import stat
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from ...wait import NotReady, Pending, wait_for
from .. import progress
from ..outcomes import HarnessError
from . import channel
from .base import STATE_ENV, Backend, BackendSession, Call, SystemState
from .engine import Engine, EngineError, find_engine
from .systemd_image import ensure_image

BIN = Path(__file__).resolve().parent / "bin"
SHIMS = ("systemctl", "loginctl", "tmux")
CHANNEL_SCRIPT = "_channel.py"  # channel.py, copied beside the shims
CHANNEL_UNIT = "mosaic-conformance-channel.service"

LABEL_BACKEND = "org.mosaic-conformance.backend"  # "systemd" on every container we make
LABEL_SESSION = "org.mosaic-conformance.session"  # one id per session
LABEL_OWNER = "org.mosaic-conformance.owner"  # "HOST PID START": the process that made it

USER_NAME = "mosaic"  # the container user, unless the image has one at our uid already
DEFAULT_UID = 1000  # the container user's uid when the host runs as root
DROP_IN = "mosaic-conformance.conf"  # points the user manager at USER_MANAGER_ENV
USER_MANAGER_ENV = "/etc/mosaic-conformance/user-manager.env"  # its per-test environment

BOOT_TIMEOUT = 90.0  # seconds for systemd to finish booting (a noisy 2-core machine)
USER_MANAGER_TIMEOUT = 60.0
STOP_TIMEOUT = 20  # seconds the engine waits for systemd's orderly shutdown
HARNESS_CALL_TIMEOUT = 120.0  # seconds for one of the harness's own calls in the container
POLL_INTERVAL = 0.05
STATUS_EVERY = 1.0  # seconds between asking the engine whether a booting container still runs
# --wait blocks until startup ends: bounded, so that a hung boot meets our timeout, not none
PROBE_LIMIT = ("timeout", "10")

# A machine's housekeeping that only slows every boot of a container without a network or a
# console (apt's timers even run at each boot: they are Persistent=); none of it touches a
# user manager or linger. Masked once per session, in the container's own files.
HOUSEKEEPING_UNITS = (
    "apt-daily.timer",
    "apt-daily-upgrade.timer",
    "dpkg-db-backup.timer",
    "e2scrub_all.timer",
    "systemd-tmpfiles-clean.timer",
    "console-getty.service",
    "systemd-journal-flush.service",
    "systemd-sysusers.service",
    "systemd-update-utmp.service",
    "systemd-update-utmp-runlevel.service",
)

# The image's tmpfiles.d/tmp.conf empties /tmp at boot and ages /var/tmp; the session's
# folder is often under /tmp and bound at the same path, so the container must never clean
# there. Bound over the image's own file for any image, ours or a user's.
KEEP_TMP = "d /tmp 1777 root root -\nd /var/tmp 1777 root root -\n"


class SystemdBackendError(HarnessError):
    """The container or the channel into it misbehaved; the message holds what the
    container last said. A harness error: it never reads as the fleet's failure."""


def _owner() -> str:
    """This process, in a form that tells it apart from a later one with the same pid."""
    return f"{socket.gethostname()} {os.getpid()} {_start_time(os.getpid())}"


def _start_time(pid: int) -> str:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return "gone"
    return fields[19]  # field 22, starttime; the fields before ")" are pid and comm


def _owner_is_gone(owner: str) -> bool:
    host, _, rest = owner.partition(" ")
    pid, _, started = rest.partition(" ")
    if host != socket.gethostname() or not pid.isdigit():
        return False  # another machine's session, or not ours to judge
    return _start_time(int(pid)) != started


def containers(engine: Engine, label: str) -> list[dict[str, Any]]:
    """``inspect`` of every container, running or not, that carries ``label`` (KEY or
    KEY=VALUE)."""
    ids = engine.must("ps", "--all", "--quiet", "--filter", f"label={label}").split()
    if not ids:
        return []
    done = engine.command("inspect", *ids)
    try:
        found = json.loads(done.stdout or "[]")
    except json.JSONDecodeError:
        return []
    return [c for c in found if isinstance(c, dict)]


def remove_leftovers(engine: Engine) -> list[str]:
    """Remove containers of earlier sessions whose process is gone (a crash, a SIGKILL)."""
    removed = []
    for container in containers(engine, LABEL_BACKEND):
        labels = (container.get("Config") or {}).get("Labels") or {}
        if _owner_is_gone(labels.get(LABEL_OWNER, "")):
            engine.command("rm", "--force", container["Id"])
            removed.append(str(container.get("Name", container["Id"][:12])).lstrip("/"))
    return removed


# --- the machine: one container and what we ask of it -----------------------------------


@dataclass(frozen=True, slots=True)
class ExecResult:
    exit_code: int
    stdout: str
    stderr: str


class Machine:
    """The container, its user and how to talk to them: through the channel once its
    server answers, else (while it boots, or without a channel) through the engine."""

    def __init__(
        self, engine: Engine, container_id: str, uid: int, user: str, channel_path: Path | None
    ) -> None:
        self.engine = engine
        self.container_id = container_id
        self.uid = uid
        self.user = user
        self.channel_path = channel_path
        self.channel_up = False  # the server answered since the last (re)boot
        self.channel_enabled = False  # its service starts at boot (after prepare_user)

    @property
    def runtime_dir(self) -> str:
        return f"/run/user/{self.uid}"

    def exec(
        self,
        argv: list[str],
        *,
        as_user: bool = False,
        env: Mapping[str, str] | None = None,
    ) -> ExecResult:
        environment = dict(env or {})
        if as_user:
            environment.setdefault("XDG_RUNTIME_DIR", self.runtime_dir)
        uid = self.uid if as_user else 0
        if self.channel_up and self.channel_path is not None:
            try:
                code, out, err = channel.run(
                    str(self.channel_path), argv, uid, environment, timeout=HARNESS_CALL_TIMEOUT
                )
            except channel.ChannelBroken as exc:
                self.channel_up = False
                raise SystemdBackendError(
                    f"the channel into the container broke: {exc}\n{self.diagnose()}"
                ) from None
            return ExecResult(code, _text(out), _text(err))
        return self.engine_exec(argv, uid, environment)

    def engine_exec(self, argv: list[str], uid: int, env: Mapping[str, str]) -> ExecResult:
        flags = [f"--env={k}={v}" for k, v in env.items()]
        try:
            done = self.engine.command("exec", "--user", str(uid), *flags, self.container_id, *argv)
        except EngineError as exc:
            raise SystemdBackendError(f"{exc}\n{self.diagnose()}") from None
        return ExecResult(done.returncode, done.stdout, done.stderr)

    def sh(self, script: str, *args: str, as_user: bool = False, **env: str) -> ExecResult:
        return self.exec(["sh", "-c", script, "sh", *args], as_user=as_user, env=env)

    def must(self, script: str, *args: str, as_user: bool = False, **env: str) -> str:
        result = self.sh(script, *args, as_user=as_user, **env)
        if result.exit_code != 0:
            raise SystemdBackendError(
                f"in the container, {script.strip().splitlines()[0]!r} exited "
                f"{result.exit_code}: {(result.stdout + result.stderr).strip()[-2000:]}\n"
                f"{self.diagnose()}"
            )
        return result.stdout

    def status(self) -> str:
        """The container's state as the engine says it (running, exited, ...)."""
        done = self.engine.command(
            "inspect", "--format", "{{.State.Status}}", self.container_id, timeout=20
        )
        return done.stdout.strip() if done.returncode == 0 else "unknown (inspect failed)"

    def diagnose(self) -> str:
        """The container's state and last words, for error messages."""
        try:
            state = self.status()
            logs = self.engine.command("logs", "--tail", "30", self.container_id, timeout=20)
        except EngineError as error:
            return f"container {self.container_id[:12]}: cannot be inspected ({error})"
        return (
            f"container {self.container_id[:12]} ({self.engine.name} {self.engine.version}) is "
            f"{state}; its last log lines:\n{(logs.stdout + logs.stderr).rstrip()}"
        )

    def wait_booted(self) -> None:
        """Until systemd has booted; with a channel, until its server answers first."""
        if self.channel_enabled:
            self._wait_channel()

        def booted() -> bool | Pending:
            result = self.exec([*PROBE_LIMIT, "systemctl", "is-system-running", "--wait"])
            state = result.stdout.strip()
            # degraded: booted, with a unit failed that a container does not need
            return state in ("running", "degraded") or Pending(state or result.stderr)

        self._wait("systemd's boot", booted, BOOT_TIMEOUT)

    def _wait_channel(self) -> None:
        assert self.channel_path is not None
        path = str(self.channel_path)
        last_status = [time.monotonic()]  # a boot takes a while: ask the engine later

        def answers() -> bool | Pending:
            if channel.ping(path):
                return True
            now = time.monotonic()
            if now - last_status[0] >= STATUS_EVERY:
                last_status[0] = now
                state = self.status()
                if state not in ("running", "created", "configured", "initialized"):
                    raise SystemdBackendError(
                        f"the container stopped while booting ({state})\n{self.diagnose()}"
                    )
            return Pending(f"nothing answers at {path} yet")

        self._wait(f"the channel's server ({CHANNEL_UNIT})", answers, BOOT_TIMEOUT)
        self.channel_up = True

    def wait_user_manager(self) -> None:
        def up() -> bool | Pending:
            argv = [*PROBE_LIMIT, "systemctl", "--user", "is-system-running", "--wait"]
            result = self.exec(argv, as_user=True)
            state = result.stdout.strip()
            return state in ("running", "degraded") or Pending(state or result.stderr)

        self._wait(
            f"the user manager of {self.user} (user@{self.uid}.service) coming up",
            up,
            USER_MANAGER_TIMEOUT,
        )

    def _wait(self, what: str, probe: Callable[[], bool | Pending], timeout: float) -> None:
        """Poll ``probe``; a timeout is an error holding the container's state and last words."""
        try:
            wait_for(probe, what=what, timeout=timeout, interval=POLL_INTERVAL, state=self.diagnose)
        except NotReady as exc:
            raise SystemdBackendError(str(exc)) from exc

    def restart(self) -> None:
        self.channel_up = False
        try:
            self.engine.must("restart", "--time", str(STOP_TIMEOUT), self.container_id)
        except EngineError as exc:
            raise SystemdBackendError(f"{exc}\n{self.diagnose()}") from None
        self.wait_booted()

    def start_again(self) -> None:
        """Start the container after something stopped it; boot as after a restart."""
        self.channel_up = False
        try:
            self.engine.must("start", self.container_id)
        except EngineError as exc:
            raise SystemdBackendError(f"{exc}\n{self.diagnose()}") from None
        self.wait_booted()

    def lingers(self) -> bool:
        return self.exec(["test", "-e", f"/var/lib/systemd/linger/{self.user}"]).exit_code == 0

    def prepare_user(self, channel_unit: Path | None) -> None:
        """Make the user at our uid (unless the image has one), let each test name the
        folder its user manager reads units from (:meth:`log_in`), and start the channel's
        server, enabled so that it comes back at every boot."""
        found = self.exec(["getent", "passwd", str(self.uid)])
        if found.exit_code == 0:
            self.user = found.stdout.split(":", 1)[0]
        else:
            self.must(
                'useradd --uid "$1" --user-group --create-home --shell /bin/sh "$2"',
                str(self.uid),
                self.user,
            )
        # An environment file, not Environment=: rewriting it needs no daemon-reload (half
        # a second), and it lives in the container's own files, so it survives a reboot.
        self.must(
            r"""
            set -e
            mkdir -p "$(dirname "$2")" "/etc/systemd/system/user@$1.service.d"
            : >"$2"
            printf '[Service]\nEnvironmentFile=%s\n' "$2" \
                >"/etc/systemd/system/user@$1.service.d/$3"
            channel=$4
            shift 4
            systemctl mask --quiet "$@"
            systemctl daemon-reload
            [ -z "$channel" ] || systemctl enable --quiet --now "$channel"
            """,
            str(self.uid),
            USER_MANAGER_ENV,
            DROP_IN,
            str(channel_unit or ""),
            *HOUSEKEEPING_UNITS,
        )
        if channel_unit is not None:
            self.channel_enabled = True
            self._wait_channel()

    def log_in(self, config_home: Path) -> None:
        """A fresh user manager reading units from ``config_home``, with linger off and
        nothing of an earlier test running: as if the user had just logged in. (The start
        job ends when the manager is ready: systemd --user reports ready at startup's end.)"""
        self.must(
            r"""
            set -e
            for who in $(ls /var/lib/systemd/linger); do
                loginctl disable-linger "$who" || rm -f "/var/lib/systemd/linger/$who"
            done
            systemctl stop "user@$1.service" "user-runtime-dir@$1.service"
            # Without linger, logind lets go of the user: it stops the manager and the
            # runtime folder in the background, and would stop a manager started before.
            tries=0
            while loginctl show-user "$1" >/dev/null 2>&1; do
                tries=$((tries + 1))
                if [ "$tries" -gt "$4" ]; then
                    echo "logind still holds user $1 after linger was turned off" >&2
                    exit 1
                fi
                sleep 0.05
            done
            printf 'XDG_CONFIG_HOME=%s\n' "$3" >"$2"
            systemctl reset-failed
            systemctl start "user@$1.service"
            """,
            str(self.uid),
            USER_MANAGER_ENV,
            str(config_home),
            str(int(USER_MANAGER_TIMEOUT / POLL_INTERVAL)),
        )


# --- the session and the per-test backend ------------------------------------------------


class SystemdSession(BackendSession):
    """Options: ``engine``, ``auto`` (default), ``docker`` or ``podman``; ``image``, a
    ready image to use instead of building ours; ``shared``, the folder bound into the
    container (default: the workdir); ``channel``, False to forward every call with a
    plain ``exec`` of the engine (slower; for comparison). Every test's root, and every
    folder the fleet writes that its units read (``MOSAIC_HOME``), must be inside
    ``shared``."""

    name: ClassVar[str] = "systemd"

    def __init__(self, workdir: Path, options: Mapping[str, object] | None = None) -> None:
        super().__init__(workdir, options)
        self.session_id = uuid.uuid4().hex
        self.shared = Path(str(self.options.get("shared") or workdir)).resolve()
        self.engine_choice = str(self.options.get("engine") or "auto")
        self.use_channel = self.options.get("channel", True) not in (False, "0", "no", "false")
        self.machine: Machine | None = None
        self.engine: Engine | None = None
        self.image = ""

    @property
    def bin_dir(self) -> Path:
        return self.workdir / "bin"

    @property
    def channel_path(self) -> Path:
        return self.workdir / "channel.sock"

    def describe(self) -> dict[str, str]:
        """Where the systemd runs, for a report's metadata: engine (name and version), how
        it is reached, the host's cgroup mode, the image, and how calls cross over."""
        if self.engine is None:
            return {}
        return {
            **self.engine.describe(),
            "image": self.image,
            "calls": "channel (a Unix socket)" if self.use_channel else f"{self.engine.name} exec",
        }

    def start(self) -> None:
        engine = self.engine = find_engine(self.engine_choice)
        remove_leftovers(engine)
        self.image = self._image(engine)
        uid = os.getuid() or DEFAULT_UID
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.shared.mkdir(parents=True, exist_ok=True)
        self._share(self.shared)
        self._install_shims()
        keep_tmp = self.workdir / "tmpfiles-keep-tmp.conf"
        keep_tmp.write_text(KEEP_TMP)
        unit = self._write_channel_unit(uid if os.getuid() else 0) if self.use_channel else None
        atexit.register(self.close)  # Ctrl-C or an error before pytest's teardown
        facts = ", ".join(f"{k} {v}" for k, v in self.describe().items())
        with progress.step(f"systemd backend ({facts}): boot a container, log the user in"):
            container_id = self._run_container(engine, self.image, keep_tmp)
            channel_path = self.channel_path if self.use_channel else None
            self.machine = Machine(engine, container_id, uid, USER_NAME, channel_path)
            self.machine.wait_booted()
            self.machine.prepare_user(unit)

    def _image(self, engine: Engine) -> str:
        wanted = self.options.get("image")
        if wanted is None:
            return ensure_image(engine)
        if not engine.has_image(str(wanted)):
            raise SystemdBackendError(
                f"the systemd image {wanted!r} is not known to {engine.name}: build or load it "
                "first, or leave out --conformance-systemd-image to use the toolkit's own"
            )
        return str(wanted)

    def _run_container(self, engine: Engine, image: str, keep_tmp: Path) -> str:
        labels = {
            LABEL_BACKEND: self.name,
            LABEL_SESSION: self.session_id,
            LABEL_OWNER: _owner(),
        }
        argv = ["run", "--detach", "--tty"]  # a tty: readable logs
        for key, value in labels.items():
            argv += ["--label", f"{key}={value}"]
        argv += ["--network", "none"]  # nothing in the container needs a network
        argv += ["--stop-signal", "SIGRTMIN+3"]  # systemd's orderly shutdown
        argv += engine.systemd_flags()
        argv += ["--volume", f"{self.shared}:{self.shared}:rw"]
        argv += ["--volume", f"{keep_tmp}:/etc/tmpfiles.d/tmp.conf:ro"]
        argv += [image]
        try:
            return engine.must(*argv).strip().splitlines()[-1]
        except EngineError as exc:
            raise SystemdBackendError(
                f"{engine.name} could not start a systemd container ({engine.via}): {exc}"
            ) from None

    def _share(self, path: Path) -> None:
        """Let the container user through ``path`` (pytest makes its folders 0700)."""
        mode = path.stat().st_mode
        path.chmod(mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)

    def _install_shims(self) -> None:
        self.bin_dir.mkdir(exist_ok=True)
        shutil.copy(BIN / "_prelude.sh", self.bin_dir / "_prelude.sh")
        shutil.copy(Path(channel.__file__), self.bin_dir / CHANNEL_SCRIPT)
        for name in SHIMS:
            shutil.copy(BIN / "forward.sh", self.bin_dir / name)
            (self.bin_dir / name).chmod(0o755)

    def _write_channel_unit(self, owner: int) -> Path:
        """The channel server's system unit, in the shared folder (linked, then enabled)."""
        script, sock = self.bin_dir / CHANNEL_SCRIPT, self.channel_path
        unit = self.workdir / CHANNEL_UNIT
        unit.write_text(
            "[Unit]\n"
            "Description=mosaic-conformance: runs the host's calls in this container\n"
            "[Service]\n"
            f"ExecStart=python3 -I {_unit_quote(script)} serve {_unit_quote(sock)} {owner}\n"
            "Restart=on-failure\n"
            "[Install]\n"
            "WantedBy=multi-user.target\n"
        )
        return unit

    def open(self, root: Path) -> SystemdBackend:
        if self.machine is None:
            raise SystemdBackendError("the systemd session was not started (call start() first)")
        root = root.resolve()
        if not root.is_relative_to(self.shared):
            raise SystemdBackendError(
                f"a systemd backend's root must be inside the folder shared with the container, "
                f"{self.shared}; {root} is not (set the session's 'shared' option)"
            )
        root.mkdir(parents=True, exist_ok=True)
        folder = root
        while folder != self.shared:
            self._share(folder)
            folder = folder.parent
        self._ensure_running(self.machine)
        backend = SystemdBackend(root, self)
        backend.unit_dir.mkdir(parents=True, exist_ok=True)
        backend.hand_over()
        self.machine.log_in(backend.config_home)
        return backend

    def _ensure_running(self, machine: Machine) -> None:
        """A test may have stopped the container: start over, cleanly. (With a channel, its
        answer is the cheap sign that all is well.)"""
        if machine.channel_up and channel.ping(str(machine.channel_path)):
            return
        state = machine.status()
        if state != "running":
            machine.start_again()
        elif machine.channel_path is not None:
            machine.wait_booted()

    def close(self) -> None:
        atexit.unregister(self.close)
        engine = self.engine
        if engine is None:
            return
        with contextlib.suppress(EngineError):
            for container in containers(engine, f"{LABEL_SESSION}={self.session_id}"):
                engine.command("stop", "--time", str(STOP_TIMEOUT), container["Id"])
                engine.command("rm", "--force", container["Id"])
        self.machine = None
        self.engine = None


def _unit_quote(path: Path) -> str:
    """``path`` as one word of a unit's command line."""
    text = str(path).replace("\\", "\\\\").replace('"', '\\"').replace("%", "%%")
    return f'"{text}"'


class SystemdBackend(Backend):
    name: ClassVar[str] = "systemd"

    def __init__(self, root: Path, session: SystemdSession) -> None:
        super().__init__(root)
        assert session.machine is not None
        self.session = session
        self.machine = session.machine

    @property
    def user(self) -> str:
        return self.machine.user

    @property
    def config_home(self) -> Path:
        return self.root / "config"

    @property
    def unit_dir(self) -> Path:
        return self.config_home / "systemd" / "user"

    def environ(self) -> dict[str, str]:
        env = {
            "PATH": f"{self.session.bin_dir}{os.pathsep}{os.environ.get('PATH', os.defpath)}",
            "XDG_CONFIG_HOME": str(self.config_home),
            "USER": self.user,
            "LOGNAME": self.user,
            STATE_ENV: str(self.root),
            "MOSAIC_CONFORMANCE_SYSTEMD_ENGINE": self.machine.engine.client,
            "MOSAIC_CONFORMANCE_SYSTEMD_ENGINE_HOST": self.machine.engine.host,
            "MOSAIC_CONFORMANCE_SYSTEMD_CONTAINER": self.machine.container_id,
            "MOSAIC_CONFORMANCE_SYSTEMD_UID": str(self.machine.uid),
            "MOSAIC_CONFORMANCE_SYSTEMD_SHARED": str(self.session.shared),
        }
        if self.machine.channel_path is not None:
            env["MOSAIC_CONFORMANCE_SYSTEMD_CHANNEL"] = str(self.machine.channel_path)
            env["MOSAIC_CONFORMANCE_SYSTEMD_PYTHON"] = sys.executable
        if os.getuid() == 0:
            env["MOSAIC_CONFORMANCE_SYSTEMD_CHOWN"] = "1"
        return env

    def check_channel(self) -> None:
        """Raise if a shim's call found the channel broken: the fleet then saw a failure
        that was the harness's, not the system's, and nothing it did can be judged."""
        broken = self.root / channel.BROKEN_FILE
        if broken.exists():
            said = broken.read_text(encoding="utf-8", errors="replace").strip()[-2000:]
            raise SystemdBackendError(f"{said}\n{self.machine.diagnose()}")

    def calls(self, command: str | None = None) -> list[Call]:
        self.check_channel()
        return super().calls(command)

    def systemctl(self, *args: str) -> subprocess.CompletedProcess[str]:
        done = super().systemctl(*args)
        self.check_channel()
        return done

    def hand_over(self) -> None:
        """Give the test's files to the container user (the shims do it on every call)."""
        if os.getuid() != 0:
            return  # the container user is the host user: nothing to hand over
        uid = self.machine.uid
        for path in _walk(self.root):
            os.lchown(path, uid, uid)

    def state(self) -> SystemState:
        self.check_channel()
        unit_files, candidates = self._scan_unit_dir()
        result = self.machine.sh(
            STATE_SCRIPT,
            self.user,
            str(int(USER_MANAGER_TIMEOUT / POLL_INTERVAL)),
            *sorted(candidates),
            as_user=True,
            XDG_CONFIG_HOME=str(self.config_home),
        )
        if result.exit_code != 0:
            raise SystemdBackendError(
                f"asking the user manager for its state failed ({result.exit_code}): "
                f"{result.stderr.strip()[-2000:]}"
            )
        return parse_state(result.stdout, unit_files)

    def _scan_unit_dir(self) -> tuple[frozenset[str], frozenset[str]]:
        """The mosaic-* unit files, and the units worth asking about: every concrete unit
        file and every unit linked in a .wants/.requires folder."""
        if not self.unit_dir.is_dir():
            return frozenset(), frozenset()
        files = {p.name for p in self.unit_dir.iterdir() if _is_mosaic(p.name) and not p.is_dir()}
        linked = {
            p.name
            for wants in self.unit_dir.iterdir()
            if wants.is_dir() and wants.name.endswith((".wants", ".requires"))
            for p in wants.iterdir()
            if _is_mosaic(p.name)
        }
        concrete = {name for name in files if "@." not in name}
        return frozenset(files), frozenset(concrete | linked)

    def boot(self) -> None:
        """A restart of the container; then, if linger is on, wait until the user manager
        has started what it starts at boot."""
        self.check_channel()
        self.hand_over()
        self.machine.restart()
        if self.machine.lingers():
            self.machine.wait_user_manager()


def _text(data: bytes | None) -> str:
    return (data or b"").decode(errors="replace")


def _is_mosaic(name: str) -> bool:
    return name.startswith("mosaic-")


def _walk(root: Path) -> Iterator[str]:
    yield str(root)
    for folder, dirs, files in os.walk(root):
        for name in (*dirs, *files):
            yield os.path.join(folder, name)


# Run as the user; $1 is the user, $2 how often to ask a manager that does not answer, the
# rest are units to ask about. Prints "manager running" or "manager down", then `systemctl
# show` blocks (Id=, ActiveState=, UnitFileState=), then "linger" when linger is on. Without
# a manager (after a boot without linger) nothing runs, and systemctl reads the enablement
# links itself (SYSTEMD_OFFLINE). A manager on its way out (logind stops it once linger is
# off) keeps its socket for some milliseconds while it refuses calls: ask again until it
# answers or its socket is gone, and never take a failed listing for "nothing loaded".
STATE_SCRIPT = r"""
user=$1
tries=$2
shift 2
ask_manager() {
    listed=$(systemctl --user list-units --all --plain --no-legend --full 'mosaic-*') || return
    loaded=$(printf '%s\n' "$listed" | cut -d' ' -f1)
    # shellcheck disable=SC2086 # unit names have no spaces
    [ -z "$loaded$*" ] || systemctl --user show --property=Id,ActiveState,UnitFileState \
        -- $loaded "$@"
}
manager=down
while [ -S "$XDG_RUNTIME_DIR/systemd/private" ]; do
    if shown=$(ask_manager "$@"); then
        manager=running
        break
    fi
    tries=$((tries - 1))
    [ "$tries" -gt 0 ] || exit 1
    sleep 0.05
done
echo "manager $manager"
if [ "$manager" = running ]; then
    printf '%s\n' "$shown"
else
    for unit; do
        printf 'Id=%s\nActiveState=inactive\nUnitFileState=%s\n\n' "$unit" \
            "$(SYSTEMD_OFFLINE=1 systemctl --user is-enabled -- "$unit" 2>/dev/null)"
    done
fi
echo
[ ! -e "/var/lib/systemd/linger/$user" ] || echo linger
"""

ACTIVE_STATES = frozenset({"active", "reloading"})
# "enabled" only: a unit enabled with --runtime does not start at the next boot.
ENABLED_STATES = frozenset({"enabled"})


def parse_state(output: str, unit_files: frozenset[str]) -> SystemState:
    """The :class:`SystemState` from :data:`STATE_SCRIPT`'s output."""
    enabled: set[str] = set()
    active: set[str] = set()
    linger = False
    for block in output.split("\n\n"):
        props: dict[str, Any] = dict(
            line.split("=", 1) for line in block.splitlines() if "=" in line
        )
        linger = linger or "linger" in block.splitlines()
        unit = props.get("Id", "")
        if not _is_mosaic(unit):
            continue
        if props.get("UnitFileState") in ENABLED_STATES:
            enabled.add(unit)
        if props.get("ActiveState") in ACTIVE_STATES:
            active.add(unit)
    return SystemState(
        unit_files=unit_files,
        enabled=frozenset(enabled),
        active=frozenset(active),
        linger=linger,
    )
