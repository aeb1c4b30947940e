"""Secrets never reach output: one list of the variables that hold them, one redactor.

Beyond the environment, the toolkit masks the secrets it makes or is given while it runs
(the access tokens of the suite's test accounts, a homeserver's shared secret, a stand-in
bot's token): each is announced once with :func:`mask_also` and masked from then on, in
this process, wherever :func:`redact` runs (failure texts, reports, the fleet's messages).
"""

from __future__ import annotations

import _thread  # threading's own lock, without threading's import (1 ms of every fleet command)
import os
from collections.abc import Iterable, Mapping

from .contract import TOKEN_ENVS

# Tokens come only from these variables (ROS.4); nothing else is a secret of the user's.
SECRET_ENV_VARS = TOKEN_ENVS
MASK = "***"
_MIN_SECRET_LEN = 4  # masking "a" or "" would mangle every line, and reveal nothing

# Secrets the toolkit made or was given, for the life of the process. Process-wide on
# purpose: a token must stay masked wherever its text goes, whichever run made it.
_announced: set[str] = set()
_announced_lock = _thread.allocate_lock()


def mask_also(*values: str) -> None:
    """Mask these values too from now on (in this process)."""
    with _announced_lock:
        _announced.update(v for v in values if len(v) >= _MIN_SECRET_LEN)


def secret_values(environ: Mapping[str, str] | None = None) -> list[str]:
    env = os.environ if environ is None else environ
    values = {env.get(name, "") for name in SECRET_ENV_VARS}
    with _announced_lock:
        values |= _announced
    # longest first, so a secret containing another is masked whole
    return sorted((v for v in values if len(v) >= _MIN_SECRET_LEN), key=len, reverse=True)


def redact(text: str, extra: Iterable[str] | None = None) -> str:
    """``text`` with every secret of the environment, every announced one (and ``extra``)
    replaced by ``***``."""
    more = [v for v in extra or () if len(v) >= _MIN_SECRET_LEN]
    for value in sorted(set(secret_values()) | set(more), key=len, reverse=True):
        text = text.replace(value, MASK)
    return text
