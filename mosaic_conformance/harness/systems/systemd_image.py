"""The image of the systemd backend: Debian with systemd as PID 1, built once and cached.

Three ways to the same image, from the build context in ``systemd-image``:

- ``docker build`` (or ``podman build``) of its Dockerfile, on machines that have or can pull
  ``debian:SUITE``;
- ``debootstrap`` of its package list, then ``docker import`` (or ``podman import``), on
  machines that cannot pull (they still reach a Debian mirror; the build needs root);
- on Podman, ``docker save | podman load`` when a Docker engine here has the image already.

The image is tagged with a hash of its inputs (suite, package list, Dockerfile), so the second
run finds it and builds nothing; a changed input gives a new tag.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock

from .. import progress
from .base import BackendUnavailable
from .engine import Engine, EngineError, find_engine

CONTEXT = Path(__file__).resolve().parent / "systemd-image"
SUITE = "bookworm"
REPOSITORY = "mosaic-conformance/systemd"
MIRROR_ENV = "MOSAIC_DEBIAN_MIRROR"  # the mirror debootstrap uses
DEFAULT_MIRROR = "http://deb.debian.org/debian"
BUILD_TIMEOUT = 1800.0  # seconds another session may hold the build lock; a build may take
PULL_TIMEOUT = 300.0
RECIPE_VERSION = "1"  # bump when the way of building changes but no input file does


class ImageBuildError(RuntimeError):
    """Building the image was possible but failed; the message holds the builder's output."""


@dataclass(frozen=True, slots=True)
class Recipe:
    """What the image is made of; its tag is a hash of all of it."""

    suite: str
    packages: tuple[str, ...]
    dockerfile: str

    @classmethod
    def from_context(cls, context: Path = CONTEXT, suite: str = SUITE) -> Recipe:
        packages = (context / "packages.txt").read_text(encoding="utf-8").split()
        dockerfile = (context / "Dockerfile").read_text(encoding="utf-8")
        return cls(suite, tuple(packages), dockerfile)

    @property
    def tag(self) -> str:
        digest = hashlib.sha256()
        for part in (RECIPE_VERSION, self.suite, "\n".join(self.packages), self.dockerfile):
            digest.update(part.encode() + b"\0")
        return f"{REPOSITORY}:{digest.hexdigest()[:12]}"

    @property
    def base_image(self) -> str:
        return f"docker.io/library/debian:{self.suite}"


def ensure_image(engine: Engine, recipe: Recipe | None = None) -> str:
    """The tag of the recipe's image, built first if this engine does not have it yet."""
    recipe = recipe or Recipe.from_context()
    if engine.has_image(recipe.tag):
        return recipe.tag
    # One build per machine and engine: concurrent sessions (xdist workers) wait for the first.
    lock_name = f"mosaic-conformance-{engine.name}-{recipe.tag.rpartition(':')[2]}.lock"
    with FileLock(Path(tempfile.gettempdir()) / lock_name, timeout=BUILD_TIMEOUT):
        if engine.has_image(recipe.tag):
            return recipe.tag
        docker = _docker_with(recipe.tag) if engine.name == "podman" else None
        if docker is not None:
            with progress.step(f"systemd image {recipe.tag}: docker save | podman load"):
                transfer(docker, engine, recipe.tag)
            return recipe.tag
        pull_error = _pull_base(engine, recipe)
        if pull_error is None:
            with progress.step(f"systemd image {recipe.tag}: {engine.name} build"):
                build_with_dockerfile(engine, recipe)
        else:
            why_not = debootstrap_unavailable()
            if why_not:
                raise BackendUnavailable(
                    f"cannot build the systemd image {recipe.tag}: {recipe.base_image} cannot "
                    f"be pulled ({pull_error}) and {why_not}"
                )
            with progress.step(
                f"systemd image {recipe.tag}: debootstrap, then {engine.name} import"
            ):
                build_with_debootstrap(engine, recipe)
    return recipe.tag


def _docker_with(tag: str) -> Engine | None:
    """A Docker engine on this machine that has ``tag`` (Podman can load it from there)."""
    try:
        docker = find_engine("docker")
    except BackendUnavailable:
        return None
    return docker if docker.has_image(tag) else None


def transfer(source: Engine, target: Engine, tag: str) -> None:
    """``docker save TAG | podman load``: no registry, no rebuild."""
    with subprocess.Popen(
        [source.client, "save", tag],
        env=source.environ(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    ) as save:
        loaded = target.command("load", stdin=save.stdout, timeout=BUILD_TIMEOUT)
        save_error = save.stderr.read().decode(errors="replace") if save.stderr else ""
    if save.returncode != 0 or loaded.returncode != 0:
        raise ImageBuildError(
            f"moving {tag} from {source.name} to {target.name} failed: "
            f"save exited {save.returncode} ({save_error.strip()[-1000:]}), load exited "
            f"{loaded.returncode} ({(loaded.stdout + loaded.stderr).strip()[-1000:]})"
        )


def _pull_base(engine: Engine, recipe: Recipe) -> str | None:
    """None when the base image is here (pulled if need be), else why it cannot be had."""
    if engine.has_image(recipe.base_image):
        return None
    try:
        done = engine.command("pull", recipe.base_image, timeout=PULL_TIMEOUT)
    except EngineError as error:
        return str(error)
    if done.returncode != 0:
        said = (done.stderr or done.stdout).strip().splitlines()
        return said[-1] if said else f"pull exited {done.returncode}"
    return None


def build_with_dockerfile(engine: Engine, recipe: Recipe) -> None:
    # The host network: apt must reach a mirror, and engines without a bridge have no
    # other network to give a build.
    done = engine.command(
        *("build", "--network", "host", "--tag", recipe.tag),
        *("--build-arg", f"SUITE={recipe.suite}", str(CONTEXT)),
        timeout=BUILD_TIMEOUT,
    )
    if done.returncode != 0:
        log = (done.stdout + done.stderr)[-4000:]
        raise ImageBuildError(f"{engine.name} build of {recipe.tag} failed:\n{log}")


def debootstrap_unavailable() -> str:
    """Why debootstrap cannot build here, or "" when it can."""
    if shutil.which("debootstrap") is None:
        return "debootstrap is not installed (apt-get install debootstrap)"
    if os.geteuid() != 0:
        return "debootstrap needs root"
    return ""


def build_with_debootstrap(engine: Engine, recipe: Recipe) -> None:
    mirror = os.environ.get(MIRROR_ENV, DEFAULT_MIRROR)
    rootfs = Path(tempfile.mkdtemp(prefix="mosaic-systemd-rootfs-"))
    try:
        debootstrap = subprocess.run(
            [
                "debootstrap",
                "--variant=minbase",
                "--include=" + ",".join(recipe.packages),
                recipe.suite,
                str(rootfs),
                mirror,
            ],
            capture_output=True,
            text=True,
            errors="replace",
            check=False,
            timeout=BUILD_TIMEOUT,
        )
        if debootstrap.returncode != 0:
            output = (debootstrap.stdout + debootstrap.stderr)[-4000:]
            raise ImageBuildError(f"debootstrap exited {debootstrap.returncode}:\n{output}")
        with subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE) as tar:
            imported = engine.command(
                *("import", "--change", 'CMD ["/sbin/init"]', "-", recipe.tag),
                stdin=tar.stdout,
                timeout=BUILD_TIMEOUT,
            )
        if tar.returncode != 0:
            raise ImageBuildError(f"tar of the debootstrap root {rootfs} exited {tar.returncode}")
        if imported.returncode != 0:
            output = (imported.stdout + imported.stderr)[-4000:]
            raise ImageBuildError(f"{engine.name} import exited {imported.returncode}:\n{output}")
    finally:
        shutil.rmtree(rootfs, ignore_errors=True)
