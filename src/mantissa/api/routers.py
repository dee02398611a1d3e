"""Router registration: one module per router under ``mantissa/api/routes/``.

Every module of ``mantissa.api.routes`` is imported by :func:`create_app` and included
when it defines ``router`` (or calls :func:`register`). A module elsewhere (say the APM
receiver) registers its router with :func:`register` and adds its import path to
:data:`ROUTER_MODULES` in one line.
"""

from __future__ import annotations

import importlib
import logging
import pkgutil
from dataclasses import dataclass

from fastapi import APIRouter

log = logging.getLogger("mantissa.api")

# Modules outside ``mantissa.api.routes`` that register routers; one line each.
ROUTER_MODULES: list[str] = []


@dataclass
class Registration:
    router: APIRouter
    #: a body cap for this router's paths, instead of ``api.max_body_bytes``
    max_body_bytes: int | None = None
    #: the ``/config`` feature this router provides (``apm``, ``soar`` ...)
    feature: str | None = None


_REGISTERED: list[Registration] = []


def register(
    router: APIRouter, *, max_body_bytes: int | None = None, feature: str | None = None
) -> APIRouter:
    """Add ``router`` to every app built from now on; returns it (usable at module level)."""
    if not any(r.router is router for r in _REGISTERED):
        _REGISTERED.append(Registration(router, max_body_bytes, feature))
    return router


def registrations() -> list[Registration]:
    """Import the route modules and return every registered router, in a stable order."""
    from mantissa.api import routes

    for mod in sorted(pkgutil.iter_modules(routes.__path__), key=lambda m: m.name):
        if mod.name.startswith("_"):
            continue
        try:
            module = importlib.import_module(f"{routes.__name__}.{mod.name}")
        except ModuleNotFoundError as exc:
            # a router for a module this build lacks (e.g. detect): serve the rest
            if (
                exc.name
                and exc.name.startswith("mantissa.")
                and not exc.name.startswith(f"{routes.__name__}.{mod.name}")
            ):
                log.warning("not serving %s: %s is not installed", mod.name, exc.name)
                continue
            raise
        router = getattr(module, "router", None)
        if isinstance(router, APIRouter):
            register(router, feature=getattr(module, "FEATURE", None))
    for name in ROUTER_MODULES:
        importlib.import_module(name)
    return list(_REGISTERED)
