"""Backends: where the fleet under test meets "the system".

Named here, imported only when chosen (a backend may need Docker, a fake never does).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from ...load import load
from .base import Backend, BackendSession, BackendUnavailable, Call, SystemState

BACKENDS = {
    "fake": "mosaic_conformance.harness.systems.fake:FakeSession",
    "systemd": "mosaic_conformance.harness.systems.systemd:SystemdSession",
}
# The systemd backend's container engines (harness/systems/engine.py finds them).
ENGINE_CHOICES = ("auto", "docker", "podman")

__all__ = [
    "BACKENDS",
    "ENGINE_CHOICES",
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
    cls: type[BackendSession] = load(dotted)
    return cls(workdir, dict(options or {}))
