"""The FastAPI application: :func:`create_app` wires config, auth, errors, routers and
the console around one :class:`~mantissa.runtime.Runtime`.

Config (``api:`` in ``mantissa.yaml``)::

    api:
      max_body_bytes: 1048576      # default request body cap (routers may set their own)
      session_ttl_secs: 43200      # console sessions
      cookie_secure: null          # null = Secure when the request came over https
      cors_origins: []             # CORS is off unless origins are listed here
"""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
from fastapi import FastAPI
from fastapi.routing import APIRoute
from pydantic import Field

from mantissa import __version__
from mantissa.api import errors
from mantissa.api.auth import AuditLog, TokenStore
from mantissa.api.background import Supervisor
from mantissa.api.errors import error_responses
from mantissa.api.middleware import ApiMiddleware, BodyLimits, Metrics
from mantissa.api.routers import registrations
from mantissa.config import Section
from mantissa.runtime import Runtime

DESCRIPTION = """\
The Mantissa Log API. Every endpoint except `/health` needs
`Authorization: Bearer <token>` (create one with `mantissa tokens create --role ROLE`).
Roles: viewer < analyst < engineer < responder < admin; `ingest` only writes data.
Errors are `{"error": {"code", "message", "hint"}}` with a stable `code`.
Lists take `limit`, `offset`, `sort` (`-field` for descending) and return
`{"items", "total", "limit", "offset", "next_offset"}`.
"""


class ApiConfig(Section):
    max_body_bytes: int = Field(1024 * 1024, ge=1024)
    session_ttl_secs: int = Field(12 * 3600, ge=60)
    cookie_secure: bool | None = None
    cors_origins: list[str] = Field(default_factory=list)
    query_max_rows: int = Field(100_000, ge=1)


log = logging.getLogger("mantissa.api")


def _warm_up(runtime: Runtime) -> None:
    try:
        runtime.engine.execute("SELECT count(*) FROM events WHERE false")
    except Exception as exc:  # only a warm-up: the first real query reports problems
        log.warning("warm-up query failed: %s", exc)


def create_app(runtime: Runtime, *, background: bool = False) -> FastAPI:
    """The API and console for ``runtime``; ``background`` also runs the services of
    :mod:`mantissa.api.background` (the detection scheduler ...) while the app lives."""
    cfg: ApiConfig = runtime.config.section("api", ApiConfig)
    tokens = TokenStore(runtime.state, cfg.session_ttl_secs)
    audit = AuditLog(runtime.state)
    metrics = Metrics()
    limits = BodyLimits(cfg.max_body_bytes)
    supervisor = Supervisor(
        runtime, on_state=lambda name, up: metrics.background_up.labels(name).set(int(up))
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if background:
            app.state.background_services = supervisor.start()
            # derive every table's schema now, not on the first query a person waits for
            threading.Thread(target=_warm_up, args=(runtime,), daemon=True).start()
        try:
            yield
        finally:
            if background:
                await anyio.to_thread.run_sync(supervisor.stop)

    app = FastAPI(
        title="Mantissa Log",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        # the bundled docs pages load third-party code from a CDN: the spec is enough
        docs_url=None,
        redoc_url=None,
        swagger_ui_oauth2_redirect_url=None,
    )
    app.state.runtime = runtime
    app.state.config = cfg
    app.state.tokens = tokens
    app.state.audit = audit
    app.state.metrics = metrics
    app.state.features = {"siem": True}
    app.state.background_services = []
    errors.install(app)

    common = error_responses(400, 401, 403, 413, 422, 500)
    # (method, path, route) of every API endpoint: the auth tests walk this table
    app.state.api_routes = []
    for reg in registrations():
        secured = getattr(reg.router, "public", False) is not True
        app.include_router(reg.router, responses=common if secured else error_responses(413, 500))
        for route in reg.router.routes:
            if isinstance(route, APIRoute) and route.include_in_schema:
                for method in sorted((route.methods or set()) - {"HEAD", "OPTIONS"}):
                    app.state.api_routes.append((method, route.path, route))
        if reg.feature:
            app.state.features[reg.feature] = True
        if reg.max_body_bytes:
            for route in reg.router.routes:
                path = getattr(route, "path", None)
                if path:
                    limits.add(path, reg.max_body_bytes)

    from mantissa.web.console import mount_console

    mount_console(app)

    if cfg.cors_origins:
        from starlette.middleware.cors import CORSMiddleware

        app.add_middleware(
            CORSMiddleware,
            allow_origins=cfg.cors_origins,
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "X-CSRF-Token"],
        )
    app.add_middleware(ApiMiddleware, limits=limits, metrics=metrics, audit=audit)
    return app


def app_from_env() -> Any:
    """An app for ``uvicorn --factory mantissa.api.app:app_from_env`` (data dir from
    ``$MANTISSA_HOME``)."""
    return create_app(Runtime(), background=True)
