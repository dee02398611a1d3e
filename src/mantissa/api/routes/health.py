"""``GET /health``: liveness and readiness, the only endpoint open without a token."""

from __future__ import annotations

import time
from typing import Literal

import sqlalchemy as sa
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from mantissa import __version__

router = APIRouter(tags=["service"])
router.public = True  # type: ignore[attr-defined]

_STARTED = time.time()


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    version: str
    uptime_secs: float
    checks: dict[str, str]


@router.get(
    "/health",
    response_model=Health,
    responses={503: {"model": Health, "description": "A dependency is down"}},
)
def health(request: Request) -> JSONResponse:
    """Liveness and readiness: 200 when the state store and the lake answer, else 503."""
    rt = request.app.state.runtime
    checks: dict[str, str] = {}
    try:
        with rt.state.engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        checks["state"] = "ok"
    except Exception as exc:  # report, don't explain internals to an anonymous caller
        checks["state"] = f"error: {type(exc).__name__}"
    try:
        rt.storage.exists("logs")  # one cheap call: reachable or it raises
        checks["lake"] = "ok"
    except Exception as exc:
        checks["lake"] = f"error: {type(exc).__name__}"
    ok = all(v == "ok" for v in checks.values())
    body = Health(
        status="ok" if ok else "degraded",
        version=__version__,
        uptime_secs=round(time.time() - _STARTED, 3),
        checks=checks,
    )
    return JSONResponse(body.model_dump(), status_code=200 if ok else 503)
