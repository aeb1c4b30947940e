"""Synapse from PyPI (``pip install 'mosaic-conformance[synapse]'``) as a local process.

SQLite, one client listener on 127.0.0.1 port 0 (the real port is read back from its log),
registration by shared secret, rate limits raised so the suite is never throttled.
"""

from __future__ import annotations

import importlib.util
import re
import secrets
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from ....secrets import mask_also
from ....wait import NotReady, wait_for
from ... import progress
from . import Homeserver, HomeserverNotReady, HomeserverUnavailable
from .client import Account, register_with_shared_secret
from .probe import versions_answer

SERVER_NAME = "mosaic.test"
START_TIMEOUT_S = 60.0  # ready in ~1.3 s here; the first start also creates the database
STOP_TIMEOUT_S = 15.0
LISTENING = re.compile(r"Synapse now listening on TCP port (\d+)")
UNLIMITED = {"per_second": 10000, "burst_count": 10000}


def _config(folder: Path, port: int, shared_secret: str) -> dict[str, Any]:
    return {
        "server_name": SERVER_NAME,
        "pid_file": str(folder / "homeserver.pid"),
        "listeners": [
            {
                "port": port,
                "bind_addresses": ["127.0.0.1"],
                "type": "http",
                "tls": False,
                "x_forwarded": False,
                "resources": [{"names": ["client"], "compress": False}],
            }
        ],
        "database": {"name": "sqlite3", "args": {"database": str(folder / "homeserver.db")}},
        "log_config": str(folder / "log.yaml"),
        "media_store_path": str(folder / "media"),
        "signing_key_path": str(folder / "signing.key"),
        "registration_shared_secret": shared_secret,
        "macaroon_secret_key": secrets.token_hex(16),
        "form_secret": secrets.token_hex(16),
        "report_stats": False,
        "enable_metrics": False,
        "trusted_key_servers": [],
        "suppress_key_server_warning": True,
        "federation_domain_whitelist": [],
        "presence": {"enabled": False},
        # Work a test server does not need, left out so that rooms and accounts come fast.
        "bcrypt_rounds": 4,
        "user_directory": {"enabled": False},
        "stats": {"enabled": False},
        "push": {"enabled": False},
        "enable_search": False,
        "enable_room_list_search": False,
        # Raised for tests: the suite posts faster than any person.
        "rc_message": UNLIMITED,
        "rc_registration": UNLIMITED,
        "rc_login": {"address": UNLIMITED, "account": UNLIMITED, "failed_attempts": UNLIMITED},
        "rc_joins": {"local": UNLIMITED, "remote": UNLIMITED},
        "rc_joins_per_room": UNLIMITED,
        "rc_invites": {"per_room": UNLIMITED, "per_user": UNLIMITED, "per_issuer": UNLIMITED},
        "rc_room_creation": UNLIMITED,
        "rc_admin_redaction": UNLIMITED,
    }


def _log_config(log_file: Path) -> dict[str, Any]:
    return {
        "version": 1,
        "formatters": {"plain": {"format": "%(asctime)s %(name)s %(levelname)s %(message)s"}},
        "handlers": {
            "file": {
                "class": "logging.FileHandler",
                "formatter": "plain",
                "filename": str(log_file),
            }
        },
        "root": {"level": "INFO", "handlers": ["file"]},
        "disable_existing_loggers": False,
    }


class SynapseHomeserver(Homeserver):
    name = "synapse"

    def __init__(self, workdir: Path, options: dict[str, str] | Any) -> None:
        super().__init__(workdir, options)
        self._folder = workdir / "synapse"
        self._shared_secret = secrets.token_hex(16)
        mask_also(self._shared_secret)
        self._process: subprocess.Popen[bytes] | None = None
        self._port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    @property
    def shared_secret(self) -> str:
        """For another run to use this server as ``--conformance-homeserver-url`` with accounts."""
        return self._shared_secret

    @property
    def _log_file(self) -> Path:
        return self._folder / "homeserver.log"

    def start(self) -> None:
        if importlib.util.find_spec("synapse") is None:
            raise HomeserverUnavailable(
                "matrix-synapse is not installed: pip install 'mosaic-conformance[synapse]'"
            )
        with progress.step("Synapse homeserver: start on 127.0.0.1, with a new SQLite database"):
            self._folder.mkdir(parents=True, exist_ok=True)
            (self._folder / "media").mkdir(exist_ok=True)
            self._write_signing_key()
            (self._folder / "log.yaml").write_text(yaml.safe_dump(_log_config(self._log_file)))
            self._spawn(port=0)

    def _write_signing_key(self) -> None:
        from signedjson.key import generate_signing_key, write_signing_keys

        with (self._folder / "signing.key").open("w") as key_file:
            write_signing_keys(key_file, [generate_signing_key("mosaic")])

    def _spawn(self, port: int) -> None:
        config = _config(self._folder, port, self._shared_secret)
        config_path = self._folder / "homeserver.yaml"
        config_path.write_text(yaml.safe_dump(config))
        log_start = self._log_file.stat().st_size if self._log_file.exists() else 0
        with (self._folder / "stdout.log").open("ab") as out:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "synapse.app.homeserver", "-c", str(config_path)],
                cwd=self._folder,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a Ctrl-C of pytest does not reach it half-way
            )
        self._port = wait_for(
            lambda: self._listening_port(log_start),
            timeout=START_TIMEOUT_S,
            what="Synapse listening",
            state=self._state,
        )
        wait_for(
            lambda: versions_answer(self.url),
            timeout=START_TIMEOUT_S,
            what=f"Synapse answering /versions at {self.url}",
            state=self._state,
        )

    def _listening_port(self, log_start: int) -> int | None:
        if self._process is not None and self._process.poll() is not None:
            raise HomeserverUnavailable(f"Synapse exited while starting.\n{self._state()}")
        if not self._log_file.exists():
            return None
        with self._log_file.open("rb") as log:
            log.seek(log_start)
            found = LISTENING.search(log.read().decode(errors="replace"))
        return int(found.group(1)) if found else None

    def _state(self) -> str:
        process = self._process
        status = (
            "not started"
            if process is None
            else ("running" if process.poll() is None else f"exited with {process.returncode}")
        )
        lines: list[str] = []
        for name in ("homeserver.log", "stdout.log"):
            path = self._folder / name
            if path.exists():
                lines += path.read_text(errors="replace").splitlines()[-15:]
        return f"Synapse is {status}; its last log lines:\n" + "\n".join(lines)

    def register(self, localpart: str) -> Account:
        return register_with_shared_secret(self.url, self._shared_secret, localpart)

    def restart(self, *, hard: bool = False) -> None:
        self._stop(hard=hard)
        try:
            self._spawn(port=self._port)
        except (NotReady, HomeserverUnavailable) as exc:
            raise HomeserverNotReady(f"Synapse did not come back after a restart: {exc}") from exc

    def _stop(self, *, hard: bool = False) -> None:
        """Stop Synapse (SIGTERM, or SIGKILL if ``hard``). The process is forgotten only
        once it is gone, so an interrupted stop is finished by :meth:`close`."""
        process = self._process
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGKILL if hard else signal.SIGTERM)
            try:
                process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=STOP_TIMEOUT_S)
        self._process = None

    def close(self) -> None:
        self._stop()
