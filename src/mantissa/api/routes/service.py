"""``GET /config`` (enabled features, version) and ``GET /metrics`` (Prometheus)."""

from __future__ import annotations

import importlib.util

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel

from mantissa import __version__
from mantissa.api.auth import ORDERED_ROLES, Principal, Role, require

router = APIRouter(tags=["service"])

# feature → the package that provides it (a feature is on when its package is installed)
_FEATURE_PACKAGES = {
    "siem": "mantissa.detect",
    "apm": "mantissa.apm",
    "soar": "mantissa.soar",
    "ask": "mantissa.ask",
    "identity": "mantissa.identity",
}


class ConfigOut(BaseModel):
    features: dict[str, bool]
    version: str
    engine: str
    roles: list[str]
    principal: dict[str, str]


def features(request: Request) -> dict[str, bool]:
    out = {
        name: importlib.util.find_spec(pkg) is not None for name, pkg in _FEATURE_PACKAGES.items()
    }
    out["siem"] = True  # the lake, queries and alerts are always there
    out.update(request.app.state.features)
    return out


@router.get("/config", response_model=ConfigOut)
def get_config(request: Request, who: Principal = Depends(require(Role.viewer))) -> ConfigOut:
    """Which modules are enabled, the version, and who is calling."""
    return ConfigOut(
        features=features(request),
        version=__version__,
        engine=request.app.state.runtime.config.engine.type,
        roles=[r.value for r in ORDERED_ROLES] + [Role.ingest.value],
        principal={"id": who.token_id, "name": who.name, "role": who.role, "via": who.via},
    )


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format"}},
)
def metrics(request: Request, _: Principal = Depends(require(Role.viewer))) -> Response:
    """The service's own metrics in the Prometheus text format."""
    data = generate_latest(request.app.state.metrics.registry)
    return Response(data, media_type=CONTENT_TYPE_LATEST)
