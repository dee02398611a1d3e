"""Sources: one module per log format; the module name is the source id and table name."""

from __future__ import annotations

import importlib
import pkgutil

_LOADED = False
_NOT_SOURCES = {"base", "detect"}


def load_all() -> None:
    """Import every source module so that each registers itself."""
    global _LOADED
    if _LOADED:
        return
    for mod in pkgutil.iter_modules(__path__):
        if mod.name not in _NOT_SOURCES and not mod.name.startswith("_"):
            importlib.import_module(f"{__name__}.{mod.name}")
    _LOADED = True
