"""Conduit (the design card's choice) as a container, configured by its environment.

Needs a Docker engine that has the image (the suite does not pull it); where there is none,
it raises :class:`HomeserverUnavailable` with the reason and the suite skips.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ....secrets import mask_also
from ....wait import NotReady, wait_for
from ... import progress
from . import Homeserver, HomeserverNotReady, HomeserverUnavailable
from .client import Account, register_open
from .probe import versions_answer

IMAGE = "docker.io/matrixconduit/matrix-conduit:latest"
CONTAINER_PORT = 6167
SERVER_NAME = "mosaic.test"
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 10


def conduit_environment(registration_token: str) -> dict[str, str]:
    """Conduit's whole configuration: no config file, no federation, registration by token."""
    return {
        "CONDUIT_CONFIG": "",  # configure from the environment only
        "CONDUIT_SERVER_NAME": SERVER_NAME,
        "CONDUIT_DATABASE_PATH": "/var/lib/matrix-conduit/",
        "CONDUIT_DATABASE_BACKEND": "rocksdb",
        "CONDUIT_ADDRESS": "0.0.0.0",
        "CONDUIT_PORT": str(CONTAINER_PORT),
        "CONDUIT_MAX_REQUEST_SIZE": "20000000",
        "CONDUIT_ALLOW_REGISTRATION": "true",
        "CONDUIT_REGISTRATION_TOKEN": registration_token,
        "CONDUIT_ALLOW_FEDERATION": "false",
        "CONDUIT_ALLOW_CHECK_FOR_UPDATES": "false",
        "CONDUIT_TRUSTED_SERVERS": "[]",
        "CONDUIT_LOG": "warn",
    }


class ConduitHomeserver(Homeserver):
    name = "conduit"

    def __init__(self, workdir: Path, options: Mapping[str, str]) -> None:
        super().__init__(workdir, options)
        self._image = self.options.get("image") or IMAGE
        self._registration_token = secrets.token_hex(16)
        mask_also(self._registration_token)
        self._container: Any = None
        self._port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    def start(self) -> None:
        client = self._docker()
        self._ensure_image(client)
        with progress.step(f"Conduit homeserver: start a container of {self._image}"):
            self._container = client.containers.run(
                self._image,
                detach=True,
                environment=conduit_environment(self._registration_token),
                ports={f"{CONTAINER_PORT}/tcp": ("127.0.0.1", None)},
                labels={"org.mosaic-conformance": "conduit"},
            )
            self._wait_ready()

    def _docker(self) -> Any:
        try:
            import docker  # type: ignore[import-untyped,unused-ignore]
        except ImportError as exc:
            raise HomeserverUnavailable(
                "the docker package is missing: pip install 'mosaic-conformance[systemd]'"
            ) from exc
        try:
            client = docker.from_env()
            client.ping()
        except Exception as exc:  # the SDK raises several kinds for "no engine"
            raise HomeserverUnavailable(f"no Docker engine answers: {exc}") from exc
        return client

    def _ensure_image(self, client: Any) -> None:
        """The image must be in the engine already: the suite never reaches for a registry."""
        import docker.errors  # type: ignore[import-untyped,unused-ignore]

        try:
            client.images.get(self._image)
        except docker.errors.ImageNotFound:
            raise HomeserverUnavailable(
                f"the Conduit image {self._image} is not in the Docker engine, and the suite "
                f"does not pull images: run `docker pull {self._image}` where a registry can "
                "be reached"
            ) from None

    def _wait_ready(self) -> None:
        self._port = wait_for(
            self._published_port, timeout=START_TIMEOUT_S, what="Conduit's port", state=self._state
        )
        wait_for(
            lambda: versions_answer(self.url),
            timeout=START_TIMEOUT_S,
            what=f"Conduit answering /versions at {self.url}",
            state=self._state,
        )

    def _published_port(self) -> int | None:
        self._container.reload()
        if self._container.status == "exited":
            raise HomeserverUnavailable(f"Conduit exited while starting.\n{self._state()}")
        bindings = self._container.attrs["NetworkSettings"]["Ports"].get(f"{CONTAINER_PORT}/tcp")
        return int(bindings[0]["HostPort"]) if bindings else None

    def _state(self) -> str:
        if self._container is None:
            return "Conduit's container was not created"
        logs = self._container.logs(tail=15).decode(errors="replace")
        return f"Conduit's container is {self._container.status}; its last log lines:\n{logs}"

    def register(self, localpart: str) -> Account:
        return register_open(self.url, localpart, self._registration_token)

    def restart(self, *, hard: bool = False) -> None:
        if hard:
            self._container.kill()  # SIGKILL
            self._container.start()
        else:
            self._container.restart(timeout=STOP_TIMEOUT_S)
        try:
            self._wait_ready()  # the published port may change
        except (NotReady, HomeserverUnavailable) as exc:
            raise HomeserverNotReady(f"Conduit did not come back after a restart: {exc}") from exc

    def close(self) -> None:
        container, self._container = self._container, None
        if container is not None:
            container.remove(force=True, v=True)
