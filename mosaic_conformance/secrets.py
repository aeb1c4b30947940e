"""Secrets never reach output: one list of the variables that hold them, one redactor."""

from __future__ import annotations

import os
from collections.abc import Mapping

# Tokens come only from these variables (ROS.4); nothing else is a secret of ours.
SECRET_ENV_VARS = ("MATRIX_ACCESS_TOKEN", "DISCORD_BOT_TOKEN")
MASK = "***"
_MIN_SECRET_LEN = 4  # masking "a" or "" would mangle every line, and reveal nothing


def secret_values(environ: Mapping[str, str] | None = None) -> list[str]:
    env = os.environ if environ is None else environ
    values = {env.get(name, "") for name in SECRET_ENV_VARS}
    # longest first, so a secret containing another is masked whole
    return sorted((v for v in values if len(v) >= _MIN_SECRET_LEN), key=len, reverse=True)


def redact(text: str, extra: list[str] | None = None) -> str:
    """``text`` with every secret of the environment (and ``extra``) replaced by ``***``."""
    for value in secret_values() + [v for v in extra or () if len(v) >= _MIN_SECRET_LEN]:
        text = text.replace(value, MASK)
    return text
