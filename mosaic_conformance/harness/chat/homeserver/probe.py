"""Readiness probes for a homeserver; the waiting is :func:`mosaic_conformance.wait.wait_for`."""

from __future__ import annotations

import httpx


def versions_answer(url: str) -> bool | None:
    """True once ``/_matrix/client/versions`` answers 200; None while it does not."""
    try:
        response = httpx.get(f"{url}/_matrix/client/versions", timeout=2.0, trust_env=False)
    except httpx.TransportError:
        return None  # not listening yet: the only error worth waiting out
    return True if response.status_code == 200 else None
