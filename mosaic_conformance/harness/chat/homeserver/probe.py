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


def server_version(url: str) -> str | None:
    """What the homeserver says it is, e.g. ``Synapse 1.163.2``; None if it does not say.

    The server-server API's ``/version`` names any homeserver that serves federation
    (Conduit does on its one port); Synapse with a client listener only answers its admin
    API's ``server_version`` instead (whose build details after the number are left out).
    """
    asked = (
        ("/_matrix/federation/v1/version", _federation_version),
        ("/_synapse/admin/v1/server_version", _synapse_version),
    )
    for path, read in asked:
        try:
            response = httpx.get(f"{url}{path}", timeout=2.0, trust_env=False)
            found = read(response.json()) if response.status_code == 200 else None
        except (httpx.HTTPError, ValueError, TypeError, AttributeError):
            found = None  # a server that does not say is judged all the same
        if found:
            return found
    return None


def _federation_version(body: dict[str, dict[str, str]]) -> str | None:
    server = body.get("server") or {}
    name, version = server.get("name"), server.get("version")
    return f"{name} {version}" if name and version else None


def _synapse_version(body: dict[str, str]) -> str | None:
    version = str(body.get("server_version") or "").split(" ", 1)[0]
    return f"Synapse {version}" if version else None
