"""Backends: where the fleet under test meets "the system".

Named here, imported only when chosen (a backend may need Docker, a fake never does).
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from pathlib import Path

from .base import Backend, BackendSession, BackendUnavailable, Call, SystemState

BACKENDS = {
    "fake": "mosaic_conformance.harness.systems.fake:FakeSession",
    "systemd": "mosaic_conformance.harness.systems.systemd:SystemdSession",
}

__all__ = [
    "BACKENDS",
    "Backend",
    "BackendSession",
    "BackendUnavailable",
    "Call",
    "SystemState",
    "create_session",
]


def create_session(
    name: str, workdir: Path, options: Mapping[str, object] | None = None
) -> BackendSession:
    """The session of backend ``name``; ``options`` are the backend's own settings."""
    try:
        dotted = BACKENDS[name]
    except KeyError:
        known = ", ".join(sorted(BACKENDS))
        raise ValueError(f"unknown backend {name!r}: choose one of {known}") from None
    module_name, _, class_name = dotted.partition(":")
    cls: type[BackendSession] = getattr(importlib.import_module(module_name), class_name)
    return cls(workdir, dict(options or {}))
