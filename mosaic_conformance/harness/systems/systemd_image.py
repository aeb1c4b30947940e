"""The image of the systemd backend: Debian with systemd as PID 1, built once and cached.

Two ways to the same image, both from the build context in ``systemd-image``:

- ``docker build`` of its Dockerfile, on machines that have or can pull ``debian:SUITE``;
- ``debootstrap`` of its package list, then ``docker import``, on machines that cannot pull
  (they still reach a Debian mirror; the build needs root).

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
from typing import IO

import docker
import docker.errors
from filelock import FileLock

from .. import progress
from .base import BackendUnavailable

CONTEXT = Path(__file__).resolve().parent / "systemd-image"
SUITE = "bookworm"
REPOSITORY = "mosaic-conformance/systemd"
MIRROR_ENV = "MOSAIC_DEBIAN_MIRROR"  # the mirror debootstrap uses
DEFAULT_MIRROR = "http://deb.debian.org/debian"
BUILD_TIMEOUT = 1800.0  # seconds another session may hold the build lock
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
        return f"debian:{self.suite}"


def has_image(client: docker.DockerClient, name: str) -> bool:
    try:
        client.images.get(name)
    except docker.errors.ImageNotFound:
        return False
    return True


def ensure_image(client: docker.DockerClient, recipe: Recipe | None = None) -> str:
    """The tag of the recipe's image, built first if this engine does not have it yet."""
    recipe = recipe or Recipe.from_context()
    if has_image(client, recipe.tag):
        return recipe.tag
    # One build per machine: concurrent sessions (pytest-xdist workers) wait for the first.
    lock_name = f"mosaic-conformance-{recipe.tag.rpartition(':')[2]}.lock"
    with FileLock(Path(tempfile.gettempdir()) / lock_name, timeout=BUILD_TIMEOUT):
        if has_image(client, recipe.tag):
            return recipe.tag
        pull_error = _pull_base(client, recipe)
        if pull_error is None:
            with progress.step(f"systemd image {recipe.tag}: docker build"):
                build_with_dockerfile(client, recipe)
        else:
            why_not = debootstrap_unavailable()
            if why_not:
                raise BackendUnavailable(
                    f"cannot build the systemd image {recipe.tag}: {recipe.base_image} cannot "
                    f"be pulled ({pull_error}) and {why_not}"
                )
            with progress.step(f"systemd image {recipe.tag}: debootstrap, then docker import"):
                build_with_debootstrap(recipe)
    return recipe.tag


def _pull_base(client: docker.DockerClient, recipe: Recipe) -> str | None:
    """None when the base image is here (pulled if need be), else why it cannot be had."""
    if has_image(client, recipe.base_image):
        return None
    try:
        client.images.pull(recipe.base_image)
    except docker.errors.APIError as error:
        return str(error.explanation or error)
    return None


def build_with_dockerfile(client: docker.DockerClient, recipe: Recipe) -> None:
    try:
        # The host network: apt must reach a mirror, and engines without a bridge have no
        # other network to give a build.
        client.images.build(
            path=str(CONTEXT),
            tag=recipe.tag,
            buildargs={"SUITE": recipe.suite},
            network_mode="host",
            rm=True,
        )
    except docker.errors.BuildError as error:
        log = "".join(str(line.get("stream", line.get("error", ""))) for line in error.build_log)
        raise ImageBuildError(
            f"docker build of {recipe.tag} failed: {error}\n{log[-4000:]}"
        ) from None


def debootstrap_unavailable() -> str:
    """Why debootstrap cannot build here, or "" when it can."""
    if shutil.which("debootstrap") is None:
        return "debootstrap is not installed (apt-get install debootstrap)"
    if os.geteuid() != 0:
        return "debootstrap needs root"
    if shutil.which("docker") is None:
        return "the docker command-line client is not on PATH (it imports the root file system)"
    return ""


def build_with_debootstrap(recipe: Recipe) -> None:
    mirror = os.environ.get(MIRROR_ENV, DEFAULT_MIRROR)
    rootfs = Path(tempfile.mkdtemp(prefix="mosaic-systemd-rootfs-"))
    try:
        _run(
            [
                "debootstrap",
                "--variant=minbase",
                "--include=" + ",".join(recipe.packages),
                recipe.suite,
                str(rootfs),
                mirror,
            ],
            "debootstrap",
        )
        with subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE) as tar:
            _run(
                ["docker", "import", "--change", 'CMD ["/sbin/init"]', "-", recipe.tag],
                "docker import",
                stdin=tar.stdout,
            )
        if tar.returncode != 0:
            raise ImageBuildError(f"tar of the debootstrap root {rootfs} exited {tar.returncode}")
    finally:
        shutil.rmtree(rootfs, ignore_errors=True)


def _run(argv: list[str], what: str, stdin: IO[bytes] | None = None) -> None:
    result = subprocess.run(
        argv,
        stdin=stdin,
        capture_output=True,
        text=True,
        errors="replace",
        check=False,
    )
    if result.returncode != 0:
        output = (result.stdout + result.stderr)[-4000:]
        raise ImageBuildError(f"{what} exited {result.returncode} building the image:\n{output}")
