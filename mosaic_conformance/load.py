"""The one ``"module:attribute"`` loader: factories, targets, backends and homeservers are
named by dotted path and imported only when chosen, so a missing optional dependency fails
only the kind that needs it."""

from __future__ import annotations

import importlib
from typing import Any


def load(dotted: str) -> Any:
    """The object named ``module:attribute``. A malformed name is a ValueError; a module that
    cannot be imported an ImportError; a missing attribute an AttributeError naming both."""
    module_name, _, attribute = dotted.partition(":")
    if not module_name or not attribute or ":" in attribute:
        raise ValueError(f"expected 'module:attribute', got {dotted!r}")
    module = importlib.import_module(module_name)
    try:
        return getattr(module, attribute)
    except AttributeError:
        raise AttributeError(f"module {module_name!r} has no attribute {attribute!r}") from None
