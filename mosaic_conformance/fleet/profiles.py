"""Fleet profiles: roster-shaped presets, built in or from ``$MOSAIC_FLEET_PROFILES``."""

from __future__ import annotations

import os
import re

from ..contract import PROFILES_ENV
from .roster import Roster, parse_roster

DEFAULT_PROFILE = "general"
MINIMAL_PROFILE = "minimal"  # the sanctioned preset without an orchestrator (R5.2)
_PROFILE_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")


class UnknownProfile(LookupError):
    pass


def _override_dir() -> str | None:
    return os.environ.get(PROFILES_ENV) or None


def profile_names() -> list[str]:
    folders = [_builtin()]
    override = _override_dir()
    if override and os.path.isdir(override):
        folders.append(override)
    names = {n[: -len(".yaml")] for f in folders for n in os.listdir(f) if n.endswith(".yaml")}
    return sorted(names)


def _builtin() -> str:
    return os.path.join(os.path.dirname(__file__), "profiles")


def load_profile(name: str) -> Roster:
    """The profile ``name``: the override folder's ``NAME.yaml`` first, then the built-in."""
    if not _PROFILE_NAME.fullmatch(name):
        raise UnknownProfile(f"{name!r} is not a profile name (lowercase letters, digits, -, _)")
    override = _override_dir()
    for folder in (override, _builtin()):
        path = os.path.join(folder, f"{name}.yaml") if folder is not None else ""
        if path and os.path.isfile(path):
            with open(path, "rb") as f:
                return parse_roster(f.read(), f"profile {name!r} ({path})")
    choices = ", ".join(profile_names())
    raise UnknownProfile(f"unknown profile {name!r}: choose one of {choices}")
