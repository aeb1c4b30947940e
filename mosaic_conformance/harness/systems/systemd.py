"""The real systemd backend: systemd as PID 1 in a container, the fleet on the host.

One container per pytest session, started through testcontainers, with systemd as PID 1 and a
user manager for an ordinary user. The fleet under test runs on the host; ``systemctl``,
``loginctl`` and ``tmux`` on its ``PATH`` are forwarding shims (``bin/forward.sh``) that run
the same command in the container as that user. The session's folder is bound into the
container at the same path, so the unit files the fleet writes, the absolute links ``enable``
makes and the files the units read mean the same on both sides.

Per test, :meth:`SystemdSession.open` gives a fresh system: linger off, the user manager
restarted with ``XDG_CONFIG_HOME`` pointing at the test's own folder (so it loads exactly the
units that test wrote, and nothing of an earlier test runs), as if the user had just logged
in. :meth:`SystemdBackend.boot` is a real ``docker restart``: nobody logs in afterwards, so
the user's units come back only through linger, as on an unattended machine.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import socket
import stat
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, cast

import docker
import docker.errors
from docker.models.containers import Container

from ...wait import NotReady, Pending, wait_for
from .. import progress
from .base import STATE_ENV, Backend, BackendSession, BackendUnavailable, SystemState
from .systemd_image import ensure_image, has_image

BIN = Path(__file__).resolve().parent / "bin"
SHIMS = ("systemctl", "loginctl", "tmux")

LABEL_BACKEND = "org.mosaic-conformance.backend"  # "systemd" on every container we make
LABEL_SESSION = "org.mosaic-conformance.session"  # one id per session
LABEL_OWNER = "org.mosaic-conformance.owner"  # "HOST PID START": the process that made it

USER_NAME = "mosaic"  # the container user, unless the image has one at our uid already
DEFAULT_UID = 1000  # the container user's uid when the host runs as root
DROP_IN = "mosaic-conformance.conf"  # points the user manager at USER_MANAGER_ENV
USER_MANAGER_ENV = "/etc/mosaic-conformance/user-manager.env"  # its per-test environment

BOOT_TIMEOUT = 90.0  # seconds for systemd to finish booting (a noisy 2-core machine)
USER_MANAGER_TIMEOUT = 60.0
STOP_TIMEOUT = 20  # seconds docker waits for systemd's orderly shutdown
POLL_INTERVAL = 0.05
# --wait blocks until startup ends: bounded, so that a hung boot meets our timeout, not none
PROBE_LIMIT = ("timeout", "10")

# The image's tmpfiles.d/tmp.conf empties /tmp at boot and ages /var/tmp; the session's
# folder is often under /tmp and bound at the same path, so the container must never clean
# there. Bound over the image's own file for any image, ours or a user's.
KEEP_TMP = "d /tmp 1777 root root -\nd /var/tmp 1777 root root -\n"


class SystemdBackendError(RuntimeError):
    """The container misbehaved; the message holds what it last said."""


# --- how to run systemd in a container on this host -------------------------------------


@dataclass(frozen=True, slots=True)
class CgroupSetup:
    """The container flags that let systemd run as PID 1 without --privileged."""

    layout: str  # "unified" (cgroup v2 only), "hybrid" (v1 with a v2 mount) or "legacy"
    cgroupns: str
    binds: tuple[str, ...]  # host cgroup folders bound read-write at the same path


def cgroup_setup(engine_cgroup_version: str, unified_mounted: bool) -> CgroupSetup:
    """Flags for the engine's cgroup version (``docker info``) and, on v1, whether the
    hybrid ``/sys/fs/cgroup/unified`` is mounted."""
    if engine_cgroup_version == "2":
        # One cgroup2 tree: bound whole, the container's systemd works below its own cgroup.
        return CgroupSetup("unified", "host", ("/sys/fs/cgroup",))
    # On v1 binding the whole /sys/fs/cgroup would let systemd remount the host's; bind only
    # its own hierarchies. Without the unified one, docker stop hangs on a hybrid host.
    if unified_mounted:
        return CgroupSetup("hybrid", "host", ("/sys/fs/cgroup/systemd", "/sys/fs/cgroup/unified"))
    return CgroupSetup("legacy", "host", ("/sys/fs/cgroup/systemd",))


def _engine() -> docker.DockerClient:
    where = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    try:
        client = docker.from_env()
        client.ping()
    except docker.errors.DockerException as error:
        raise BackendUnavailable(f"no Docker engine answers at {where}: {error}") from None
    return client


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


def remove_leftovers(client: docker.DockerClient) -> list[str]:
    """Remove containers of earlier sessions whose process is gone (a crash, a SIGKILL)."""
    removed = []
    for container in client.containers.list(all=True, filters={"label": LABEL_BACKEND}):
        if _owner_is_gone(container.labels.get(LABEL_OWNER, "")):
            with contextlib.suppress(docker.errors.NotFound):
                container.remove(force=True)
            removed.append(container.name or container.short_id)
    return removed


# --- the machine: one container and what we ask of it -----------------------------------


@dataclass(frozen=True, slots=True)
class ExecResult:
    exit_code: int
    stdout: str
    stderr: str


class Machine:
    """The container, its user and how to talk to them."""

    def __init__(self, container: Container, uid: int, user: str) -> None:
        self.container = container
        self.uid = uid
        self.user = user

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
        code, output = self.container.exec_run(
            argv,
            user=str(self.uid) if as_user else "root",
            environment=environment,
            demux=True,
        )
        out, err = cast(tuple[bytes | None, bytes | None], output)  # demux: (stdout, stderr)
        return ExecResult(code if code is not None else -1, _text(out), _text(err))

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

    def diagnose(self) -> str:
        """The container's state and last words, for error messages."""
        try:
            self.container.reload()
            logs = self.container.logs(tail=30).decode(errors="replace")
        except docker.errors.APIError as error:
            return f"container {self.container.short_id}: cannot be inspected ({error})"
        state = f"container {self.container.short_id} is {self.container.status}"
        return f"{state}; its last log lines:\n{logs}"

    def wait_booted(self) -> None:
        def booted() -> bool | Pending:
            result = self.exec([*PROBE_LIMIT, "systemctl", "is-system-running", "--wait"])
            state = result.stdout.strip()
            # degraded: booted, with a unit failed that a container does not need
            return state in ("running", "degraded") or Pending(state or result.stderr)

        self._wait("systemd's boot", booted, BOOT_TIMEOUT)

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
        self.container.restart(timeout=STOP_TIMEOUT)
        self.wait_booted()

    def lingers(self) -> bool:
        return self.exec(["test", "-e", f"/var/lib/systemd/linger/{self.user}"]).exit_code == 0

    def prepare_user(self) -> None:
        """Make the user at our uid (unless the image has one), and let each test name the
        folder its user manager reads units from (:meth:`log_in`)."""
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
            systemctl daemon-reload
            """,
            str(self.uid),
            USER_MANAGER_ENV,
            DROP_IN,
        )

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
    """Options: ``image``, a ready image to use instead of building ours; ``shared``, the
    folder bound into the container (default: the workdir). Every test's root, and every
    folder the fleet writes that its units read (``MOSAIC_HOME``), must be inside it."""

    name: ClassVar[str] = "systemd"

    def __init__(self, workdir: Path, options: Mapping[str, object] | None = None) -> None:
        super().__init__(workdir, options)
        self.session_id = uuid.uuid4().hex
        self.shared = Path(str(self.options.get("shared") or workdir)).resolve()
        self.machine: Machine | None = None
        self.docker_cli = ""
        self._client: docker.DockerClient | None = None

    @property
    def bin_dir(self) -> Path:
        return self.workdir / "bin"

    def start(self) -> None:
        docker_cli = shutil.which("docker")
        if docker_cli is None:
            raise BackendUnavailable("the docker command-line client is not on PATH")
        self.docker_cli = docker_cli
        client = self._client = _engine()
        remove_leftovers(client)
        image = self._image(client)

        uid = os.getuid() or DEFAULT_UID
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.shared.mkdir(parents=True, exist_ok=True)
        self._share(self.shared)
        keep_tmp = self.workdir / "tmpfiles-keep-tmp.conf"
        keep_tmp.write_text(KEEP_TMP)
        info = client.info()
        setup = cgroup_setup(
            str(info.get("CgroupVersion", "1")), os.path.ismount("/sys/fs/cgroup/unified")
        )
        atexit.register(self.close)  # Ctrl-C or an error before pytest's teardown
        with progress.step(f"systemd backend: boot a container of {image}, log the user in"):
            container = self._run_container(image, setup, keep_tmp)
            self.machine = Machine(container, uid, USER_NAME)
            self.machine.wait_booted()
            self.machine.prepare_user()
        self._install_shims()

    def _image(self, client: docker.DockerClient) -> str:
        wanted = self.options.get("image")
        if wanted is None:
            return ensure_image(client)
        if not has_image(client, str(wanted)):
            raise SystemdBackendError(
                f"the systemd image {wanted!r} is not known to the engine: build or load it "
                "first, or leave out --conformance-systemd-image to use the toolkit's own"
            )
        return str(wanted)

    def _run_container(self, image: str, setup: CgroupSetup, keep_tmp: Path) -> Container:
        # Imported here: testcontainers reads its settings from the environment at import.
        from testcontainers.core.config import testcontainers_config
        from testcontainers.core.container import DockerContainer

        assert self._client is not None
        if not has_image(self._client, testcontainers_config.ryuk_image):
            # Ryuk, testcontainers' reaper, is an image to pull; without it, our own labels
            # and close() (and the next session's remove_leftovers) clean up.
            testcontainers_config.ryuk_disabled = True
        labels = {
            LABEL_BACKEND: self.name,
            LABEL_SESSION: self.session_id,
            LABEL_OWNER: _owner(),
        }
        container = DockerContainer(image).with_kwargs(
            labels=labels,
            network="none",  # nothing in the container needs a network
            stop_signal="SIGRTMIN+3",  # systemd's orderly shutdown
            cgroupns=setup.cgroupns,
            tty=True,  # readable docker logs
        )
        for folder in setup.binds:
            container.with_volume_mapping(folder, folder, "rw")
        container.with_volume_mapping(self.shared, str(self.shared), "rw")
        container.with_volume_mapping(keep_tmp, "/etc/tmpfiles.d/tmp.conf", "ro")
        container.with_tmpfs_mount("/run").with_tmpfs_mount("/run/lock")
        container.start()
        return container.get_wrapped_container()

    def _share(self, path: Path) -> None:
        """Let the container user through ``path`` (pytest makes its folders 0700)."""
        mode = path.stat().st_mode
        path.chmod(mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)

    def _install_shims(self) -> None:
        self.bin_dir.mkdir(exist_ok=True)
        shutil.copy(BIN / "_prelude.sh", self.bin_dir / "_prelude.sh")
        for name in SHIMS:
            shutil.copy(BIN / "forward.sh", self.bin_dir / name)
            (self.bin_dir / name).chmod(0o755)

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
        self.machine.container.reload()
        if self.machine.container.status != "running":
            self.machine.container.start()  # a test stopped it; start over, cleanly
            self.machine.wait_booted()
        backend = SystemdBackend(root, self)
        backend.unit_dir.mkdir(parents=True, exist_ok=True)
        backend.hand_over()
        self.machine.log_in(backend.config_home)
        return backend

    def close(self) -> None:
        atexit.unregister(self.close)
        client = self._client
        if client is None:
            return
        for container in client.containers.list(
            all=True, filters={"label": f"{LABEL_SESSION}={self.session_id}"}
        ):
            with contextlib.suppress(docker.errors.APIError):
                container.stop(timeout=STOP_TIMEOUT)
            with contextlib.suppress(docker.errors.NotFound):
                container.remove(force=True)
        self.machine = None
        self._client = None
        client.close()


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
            "MOSAIC_CONFORMANCE_SYSTEMD_DOCKER": self.session.docker_cli,
            "MOSAIC_CONFORMANCE_SYSTEMD_CONTAINER": self.machine.container.id or "",
            "MOSAIC_CONFORMANCE_SYSTEMD_UID": str(self.machine.uid),
            "MOSAIC_CONFORMANCE_SYSTEMD_SHARED": str(self.session.shared),
        }
        if os.getuid() == 0:
            env["MOSAIC_CONFORMANCE_SYSTEMD_CHOWN"] = "1"
        return env

    def hand_over(self) -> None:
        """Give the test's files to the container user (the shims do it on every call)."""
        if os.getuid() != 0:
            return  # the container user is the host user: nothing to hand over
        uid = self.machine.uid
        for path in _walk(self.root):
            os.lchown(path, uid, uid)

    def state(self) -> SystemState:
        unit_files, candidates = self._scan_unit_dir()
        result = self.machine.sh(
            STATE_SCRIPT,
            self.user,
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
        """``docker restart``; then, if linger is on, wait until the user manager has
        started what it starts at boot."""
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


# Run as the user; $1 is the user, the rest are units to ask about. Prints "manager running"
# or "manager down", then `systemctl show` blocks (Id=, ActiveState=, UnitFileState=), then
# "linger" when linger is on. Without a manager (after a boot without linger) nothing runs,
# and systemctl reads the enablement links itself (SYSTEMD_OFFLINE).
STATE_SCRIPT = r"""
user=$1
shift
if [ -S "$XDG_RUNTIME_DIR/systemd/private" ]; then
    echo "manager running"
    loaded=$(systemctl --user list-units --all --plain --no-legend --full 'mosaic-*' \
        | cut -d' ' -f1)
    # shellcheck disable=SC2086 # unit names have no spaces
    [ -z "$loaded$*" ] || systemctl --user show --property=Id,ActiveState,UnitFileState \
        -- $loaded "$@" || exit
else
    echo "manager down"
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
