"""Fleet profiles: roster-shaped presets, built in or from ``$MOSAIC_FLEET_PROFILES``."""

from __future__ import annotations

import os
import re
from pathlib import Path

from ..contract import PROFILES_ENV
from .roster import Roster, parse_roster

DEFAULT_PROFILE = "general"
MINIMAL_PROFILE = "minimal"  # the sanctioned preset without an orchestrator (R5.2)
_PROFILE_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")


class UnknownProfile(LookupError):
    pass


def _override_dir() -> Path | None:
    folder = os.environ.get(PROFILES_ENV)
    return Path(folder) if folder else None


def profile_names() -> list[str]:
    names = {p.name[: -len(".yaml")] for p in _builtin().iterdir() if p.name.endswith(".yaml")}
    override = _override_dir()
    if override and override.is_dir():
        names |= {p.stem for p in override.glob("*.yaml")}
    return sorted(names)


def _builtin() -> Path:
    return Path(__file__).parent / "profiles"


def load_profile(name: str) -> Roster:
    """The profile ``name``: the override folder's ``NAME.yaml`` first, then the built-in."""
    if not _PROFILE_NAME.fullmatch(name):
        raise UnknownProfile(f"{name!r} is not a profile name (lowercase letters, digits, -, _)")
    override = _override_dir()
    for folder in (override, _builtin()):
        if folder is not None and (folder / f"{name}.yaml").is_file():
            path = folder / f"{name}.yaml"
            return parse_roster(path.read_bytes(), f"profile {name!r} ({path})")
    choices = ", ".join(profile_names())
    raise UnknownProfile(f"unknown profile {name!r}: choose one of {choices}")
