"""Container engines for the systemd backend: found by themselves, driven through a CLI.

Docker and Podman take the same commands for what the backend does (run, exec, restart,
inspect, logs, ps, rm, image inspect/import/load/save), so one :class:`Engine` drives
either through a command-line client:

- the ``docker`` client, for a Docker engine, or for Podman's Docker-compatible socket
  (``podman system service``), at ``DOCKER_HOST`` or a socket's usual place;
- the ``podman`` client itself, rootful as root, rootless otherwise.

What differs is how a container runs systemd: :meth:`Engine.systemd_flags`.
"""

from __future__ import annotations

import functools
import json
import os
import resource
import shutil
import subprocess
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..components import CONTAINER_ENGINES as ENGINE_CHOICES
from .base import BackendUnavailable

DOCKER_SOCKET = "unix:///var/run/docker.sock"
PODMAN_ROOTFUL_SOCKET = "unix:///run/podman/podman.sock"
PROBE_TIMEOUT = 20.0  # seconds for an engine to answer `version` or `info`
COMMAND_TIMEOUT = 180.0  # seconds for any other engine command (a restart, a run)
# Podman's default rlimits are above what some sandboxes allow ("error setting rlimit type
# 7"): ask for the limits this process has. Processes: at most this many, since runc cannot
# set a value near the host's own limit on such machines.
NPROC_CAP = 4096


class EngineError(RuntimeError):
    """An engine command failed; the message holds the command and what it said."""


@dataclass(frozen=True, slots=True)
class CgroupMode:
    """How the host mounts its cgroups: ``unified`` (cgroup v2 only), ``hybrid`` (v1
    controllers with a v2 tree at ``/sys/fs/cgroup/unified``) or ``legacy`` (v1 only)."""

    name: str

    @property
    def version(self) -> str:
        return "2" if self.name == "unified" else "1"


def host_cgroup_mode(mounts: str | None = None) -> CgroupMode:
    """The host's cgroup mode, read from ``/proc/self/mounts`` (or ``mounts``)."""
    if mounts is None:
        mounts = Path("/proc/self/mounts").read_text()
    types = {}
    for line in mounts.splitlines():
        fields = line.split()
        if len(fields) >= 3:
            types[fields[1]] = fields[2]
    if types.get("/sys/fs/cgroup") == "cgroup2":
        return CgroupMode("unified")
    if types.get("/sys/fs/cgroup/unified") == "cgroup2":
        return CgroupMode("hybrid")
    return CgroupMode("legacy")


@dataclass(frozen=True, slots=True)
class Engine:
    """A container engine that answered, and the client that reaches it."""

    name: str  # "docker" or "podman": the engine that runs the containers
    client: str  # the command-line client: a path to docker or podman
    host: str  # the socket a docker client talks to (DOCKER_HOST); "" for the podman CLI
    version: str
    rootless: bool
    cgroups: CgroupMode
    runtime: str = ""  # the OCI runtime to ask for; "" for the engine's default

    @property
    def via(self) -> str:
        """How it is reached, in words."""
        rooted = "rootless" if self.rootless else "rootful"
        if Path(self.client).name == "podman":
            return f"the podman command ({rooted})"
        return f"the docker client at {self.host} ({rooted})"

    def describe(self) -> dict[str, str]:
        return {
            "engine": f"{self.name} {self.version}",
            "engine_client": self.via,
            "cgroup_mode": self.cgroups.name,
            **({"oci_runtime": self.runtime} if self.runtime else {}),
        }

    def environ(self) -> dict[str, str]:
        """The variables the client needs (a docker client: ``DOCKER_HOST``)."""
        env = dict(os.environ)
        if self.host:
            env["DOCKER_HOST"] = self.host
        return env

    def command(
        self,
        *args: str,
        timeout: float = COMMAND_TIMEOUT,
        stdin: Any = subprocess.DEVNULL,
    ) -> subprocess.CompletedProcess[str]:
        """Run the client with ``args``: bounded, its output captured, never raising on a
        non-zero exit (:meth:`must` does)."""
        try:
            return subprocess.run(
                [self.client, *args],
                env=self.environ(),
                stdin=stdin,
                capture_output=True,
                text=True,
                errors="replace",
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise EngineError(
                f"`{Path(self.client).name} {' '.join(args[:3])} ...` did not finish within "
                f"{timeout:.0f} s ({self.via})"
            ) from None

    def must(self, *args: str, timeout: float = COMMAND_TIMEOUT) -> str:
        done = self.command(*args, timeout=timeout)
        if done.returncode != 0:
            raise EngineError(
                f"`{Path(self.client).name} {' '.join(args)}` exited {done.returncode}: "
                f"{(done.stdout + done.stderr).strip()[-2000:]}"
            )
        return done.stdout

    def has_image(self, name: str) -> bool:
        return self.command("image", "inspect", name, timeout=PROBE_TIMEOUT).returncode == 0

    def systemd_flags(self) -> list[str]:
        """The ``run`` flags that let systemd be PID 1 without ``--privileged``."""
        if self.name == "podman":
            # Podman's systemd mode mounts /run, /run/lock, /tmp and the cgroups for it (the
            # podman CLI is told so; through the socket it sees /sbin/init and does the same).
            flags = ["--systemd=always"] if Path(self.client).name == "podman" else []
            flags += podman_ulimits()
            if self.runtime:
                flags += ["--runtime", self.runtime]
            if self.rootless:
                flags += ["--userns=keep-id"]  # the host user is the container user
        else:
            flags = ["--cgroupns=host", "--tmpfs", "/run", "--tmpfs", "/run/lock"]
        for folder in cgroup_binds(self.name, self.cgroups):
            flags += ["--volume", f"{folder}:{folder}:rw"]
        return flags


def cgroup_binds(engine: str, mode: CgroupMode) -> tuple[str, ...]:
    """The host cgroup folders a container with systemd needs, read-write.

    On a hybrid host systemd learns that a unit's processes are gone from the v2 tree at
    /sys/fs/cgroup/unified; without it every stop waits for its timeout (docker stop and
    podman stop hang, and so does stopping a user manager). Podman mounts the v1 ones itself.
    """
    unified = ("/sys/fs/cgroup/unified",) if mode.name == "hybrid" else ()
    if engine == "podman":
        return unified
    if mode.name == "unified":
        # One cgroup2 tree: bound whole, the container's systemd works below its own cgroup.
        return ("/sys/fs/cgroup",)
    # On v1 binding the whole /sys/fs/cgroup would let systemd remount the host's; bind only
    # its own hierarchies.
    return ("/sys/fs/cgroup/systemd", *unified)


def podman_ulimits() -> list[str]:
    files_soft, files_hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    procs_soft, _ = resource.getrlimit(resource.RLIMIT_NPROC)
    procs = NPROC_CAP if procs_soft == resource.RLIM_INFINITY else min(procs_soft, NPROC_CAP)
    files = f"{files_soft}:{files_hard}" if files_hard != resource.RLIM_INFINITY else "1048576"
    return ["--ulimit", f"nofile={files}", "--ulimit", f"nproc={procs}:{procs}"]


# --- finding one ---------------------------------------------------------------------------

Probe = Callable[[], "Engine | str"]  # an engine, or why not


def find_engine(choice: str = "auto") -> Engine:
    """The first engine of ``choice`` that answers; :class:`BackendUnavailable` with every
    reason when none does. ``auto``: a Docker engine (or whatever ``DOCKER_HOST`` names),
    then Podman's socket, rootful then rootless, then the ``podman`` command."""
    if choice not in ENGINE_CHOICES:
        raise ValueError(
            f"unknown container engine {choice!r}: choose one of {', '.join(ENGINE_CHOICES)}"
        )
    reasons = []
    for probe in _probes(choice):
        found = probe()
        if isinstance(found, Engine):
            return found
        reasons.append(found)
    raise BackendUnavailable(
        f"no container engine ({choice}) can run the systemd backend here: " + "; ".join(reasons)
    )


def _probes(choice: str) -> Iterator[Probe]:
    docker_host = os.environ.get("DOCKER_HOST", "")
    if choice in ("auto", "docker"):
        wanted = None if choice == "auto" else "docker"
        yield lambda: _docker_api(docker_host or DOCKER_SOCKET, wanted)
    if choice == "podman" and docker_host:
        yield lambda: _docker_api(docker_host, "podman")
    if choice in ("auto", "podman"):
        for socket in _podman_sockets():
            if socket != docker_host:
                yield functools.partial(_docker_api, socket, "podman")
        yield _podman_cli


def _podman_sockets() -> list[str]:
    sockets = [PODMAN_ROOTFUL_SOCKET]
    runtime_dir = os.environ.get("XDG_RUNTIME_DIR")
    if runtime_dir and os.getuid() != 0:
        sockets.append(f"unix://{runtime_dir}/podman/podman.sock")
    return sockets


def _docker_api(host: str, wanted: str | None) -> Engine | str:
    """A Docker-API engine at ``host`` through the docker client; ``wanted``: only this one."""
    client = shutil.which("docker")
    if client is None:
        return f"no docker client on PATH to reach {host}"
    path = host.removeprefix("unix://")
    if host.startswith("unix://") and not os.path.exists(path):
        return f"no socket at {path}"
    env = {**os.environ, "DOCKER_HOST": host}
    version = _json_of([client, "version", "--format", "{{json .Server}}"], env)
    if isinstance(version, str):
        return f"no engine answers at {host} ({version})"
    components = {c.get("Name", ""): c for c in version.get("Components") or []}
    name = "podman" if "Podman Engine" in components else "docker"
    if wanted and name != wanted:
        return f"the engine at {host} is {name}, not {wanted}"
    info = _json_of([client, "info", "--format", "{{json .}}"], env)
    if isinstance(info, str):
        return f"the engine at {host} does not say what it is ({info})"
    rootless = any("rootless" in str(o) for o in info.get("SecurityOptions") or [])
    return Engine(
        name=name,
        client=client,
        host=host,
        version=str(version.get("Version", "?")),
        rootless=rootless,
        cgroups=_engine_cgroups(str(info.get("CgroupVersion", ""))),
        runtime=_runtime_for(name, str(info.get("DefaultRuntime", ""))),
    )


def _podman_cli() -> Engine | str:
    client = shutil.which("podman")
    if client is None:
        return "no podman command on PATH (apt-get install podman)"
    info = _json_of([client, "info", "--format", "json"], dict(os.environ))
    if isinstance(info, str):
        return f"podman cannot run here ({info})"
    host = info.get("host", {})
    runtime = _runtime_for("podman", str(host.get("ociRuntime", {}).get("name", "")))
    if runtime.startswith("!"):
        return runtime[1:]
    return Engine(
        name="podman",
        client=client,
        host="",
        version=str(info.get("version", {}).get("Version", "?")),
        rootless=bool(host.get("security", {}).get("rootless", os.getuid() != 0)),
        cgroups=_engine_cgroups(str(host.get("cgroupVersion", "")).removeprefix("v")),
        runtime=runtime,
    )


def _engine_cgroups(engine_version: str) -> CgroupMode:
    """The host's mode, unless the engine sees another cgroup version (a remote engine)."""
    mode = host_cgroup_mode()
    if engine_version and engine_version != mode.version:
        return CgroupMode("unified" if engine_version == "2" else "legacy")
    return mode


def _runtime_for(engine: str, default: str) -> str:
    """The OCI runtime to ask for: "" for the default; crun refuses hybrid cgroups ("cgroups
    in hybrid mode not supported"), so there runc. "!reason" when neither can run."""
    if engine != "podman" or default != "crun" or host_cgroup_mode().name != "hybrid":
        return ""
    if shutil.which("runc"):
        return "runc"
    return "!podman's runtime crun cannot run on this hybrid-cgroup host, and runc is missing"


def _json_of(argv: Sequence[str], env: Mapping[str, str]) -> dict[str, Any] | str:
    """The JSON an engine command prints, or why there is none."""
    try:
        done = subprocess.run(
            argv,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=PROBE_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return f"no answer within {PROBE_TIMEOUT:.0f} s"
    except OSError as exc:
        return str(exc)
    if done.returncode != 0:
        said = (done.stderr or done.stdout).strip().splitlines()
        return said[-1] if said else f"exit {done.returncode}"
    try:
        data = json.loads(done.stdout)
    except json.JSONDecodeError:
        return f"unreadable answer: {done.stdout[:200]!r}"
    if not isinstance(data, dict):
        return f"no engine answered ({done.stdout.strip()[:200]!r})"
    return data
