"""APM over HTTP: the OTLP/HTTP receiver and the trace/service read API.

``POST /v1/traces`` and ``POST /v1/metrics`` (role ``ingest``) follow the OTLP/HTTP
spec (https://opentelemetry.io/docs/specs/otlp/#otlphttp): binary protobuf or JSON
bodies, gzip/deflate ``Content-Encoding``, answers in the request's Content-Type: 200
with ``Export*ServiceResponse`` (``partial_success`` when items were rejected), errors
as ``google.rpc.Status`` (the JSON form also carries the API's ``error`` object), 400
for a malformed body (nothing stored), 413 over ``apm.max_body_bytes`` on the wire or
``apm.max_decompressed_bytes`` inflated, 415 for other media types or encodings,
429/503 with ``Retry-After`` when saturated. A 200 means the data is fsync'd.

``GET /apm/services``, ``/apm/services/{service}/operations``, ``/apm/service-map``,
``/apm/traces/{trace_id}`` and ``/apm/traces`` (role viewer) read the ``traces`` table.
"""

from __future__ import annotations

import threading
from typing import Any

import anyio
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from starlette.requests import ClientDisconnect

from mantissa.api import background
from mantissa.api.auth import Role, require
from mantissa.api.body import read_body
from mantissa.api.middleware import no_audit
from mantissa.api.routers import register
from mantissa.apm import otlp, queries, service_map
from mantissa.apm.receiver import Saturated, apm_config, close_receiver, receiver_for
from mantissa.errors import (
    Forbidden,
    IngestError,
    MantissaError,
    PayloadTooLarge,
    Unauthorized,
    Unavailable,
)

FEATURE = "apm"
router = APIRouter(tags=["apm"])
# the middleware's cap must not pre-empt ours: OTLP errors come in the request's encoding
register(router, max_body_bytes=256 * 1024 * 1024, feature=FEATURE)

_require_ingest = require(Role.ingest)


def _console_page() -> None:
    """``/console/apm``: service map, RED, span search, waterfall (``apm/static/apm.js``)."""
    try:
        from mantissa.web.console import register_page
    except ModuleNotFoundError:  # a build without the console
        return
    register_page("apm", "APM", package="mantissa.apm", feature=FEATURE)


_console_page()


def ingest_auth(request: Request) -> Any:
    """Like ``require("ingest")`` but hands failures to the endpoint, which answers
    them as ``google.rpc.Status`` in the request's encoding."""
    try:
        return _require_ingest(request)
    except (Unauthorized, Forbidden) as exc:
        return exc


ingest_auth.required_role = Role.ingest  # type: ignore[attr-defined]


def _status(
    request: Request, status: int, code: str, message: str, media: str | None, **headers: str
) -> Response:
    extra = {"code": code, "message": message}
    rid = getattr(request.state, "request_id", None)
    if rid:
        extra["request_id"] = rid
    body = otlp.status_body(status, message, media, extra)
    ctype = otlp.PROTOBUF if media == otlp.PROTOBUF else otlp.JSON
    if status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    return Response(body, status_code=status, media_type=ctype, headers=headers or None)


async def _export(request: Request, signal: str, principal: Any) -> Response:
    media = otlp.media_type(request.headers.get("content-type"))
    if isinstance(principal, MantissaError):
        return _status(request, principal.http_status, principal.code, principal.message, media)
    if media is None:
        return _status(
            request,
            415,
            "unsupported_media_type",
            f"unsupported Content-Type {request.headers.get('content-type')!r}; "
            "send application/x-protobuf or application/json",
            None,
        )
    runtime = request.app.state.runtime
    cfg = apm_config(runtime)
    rec = await anyio.to_thread.run_sync(receiver_for, runtime)
    try:
        rec.enter()
    except Saturated as exc:
        return _status(request, 429, exc.code, exc.message, media, **{"Retry-After": "1"})
    except Unavailable as exc:
        return _status(request, 503, exc.code, exc.message, media, **{"Retry-After": "5"})
    try:
        try:
            wire = await read_body(request, cfg.max_body_bytes, "apm.max_body_bytes")
        except ClientDisconnect:
            return _status(request, 400, "bad_request", "client disconnected", media)
        body = otlp.decompress(
            wire, request.headers.get("content-encoding"), cfg.max_decompressed_bytes
        )
        receipt = await anyio.to_thread.run_sync(rec.receive, signal, body, media)
    except otlp.UnsupportedEncoding as exc:
        return _status(request, 415, exc.code, exc.message, media)
    except PayloadTooLarge as exc:
        return _status(request, 413, exc.code, exc.message, media)
    except IngestError as exc:
        return _status(request, 400, exc.code, exc.message, media)
    except OSError as exc:
        # the spool could not be written (disk full ...): nothing acknowledged, retry later
        return _status(
            request,
            503,
            "unavailable",
            f"could not store the batch: {exc.strerror}",
            media,
            **{"Retry-After": "5"},
        )
    finally:
        rec.leave()
    out = otlp.export_response(signal, media, receipt.rejected, receipt.message)
    return Response(out, status_code=200, media_type=media)


_OTLP_DOC = {
    "description": "OTLP/HTTP export (binary protobuf or JSON; gzip or deflate).",
    # answers come in the request's encoding (OTLP/HTTP): document both for every status
    "responses": {
        status: {
            "description": text,
            "content": {
                otlp.PROTOBUF: {"schema": {"type": "string", "format": "binary"}},
                otlp.JSON: {"schema": {"type": "object"}},
            },
        }
        for status, text in (
            (200, "Export*ServiceResponse (partial_success when items were rejected)"),
            (400, "Malformed body (google.rpc.Status); nothing stored"),
            (401, "Missing or invalid token (google.rpc.Status)"),
            (403, "The token's role is not ingest (google.rpc.Status)"),
            (413, "Body over apm.max_body_bytes (google.rpc.Status)"),
            (415, "Unsupported Content-Type or Content-Encoding"),
            (429, "Saturated; retry after Retry-After"),
            (503, "Unavailable; retry after Retry-After"),
        )
    },
    "openapi_extra": {
        "requestBody": {
            "content": {
                otlp.PROTOBUF: {"schema": {"type": "string", "format": "binary"}},
                otlp.JSON: {"schema": {"type": "object"}},
            },
            "required": True,
        }
    },
}


@router.post("/v1/traces", summary="Receive OTLP traces", **_OTLP_DOC)
@no_audit
async def post_traces(request: Request, principal: Any = Depends(ingest_auth)) -> Response:
    return await _export(request, "traces", principal)


@router.post("/v1/metrics", summary="Receive OTLP metrics", **_OTLP_DOC)
@no_audit
async def post_metrics(request: Request, principal: Any = Depends(ingest_auth)) -> Response:
    return await _export(request, "metrics", principal)


# -- reads ------------------------------------------------------------------------------

Viewer = Depends(require(Role.viewer))


def _lag(runtime: Any) -> float:
    """Dashboards accept a live hour's rollup up to ``apm.rollup_secs`` old (the
    receiver's background pass renews it that often) instead of rebuilding it from the
    raw spans on every request while spans keep arriving."""
    return apm_config(runtime).rollup_secs


def _window(since: str | None, until: str | None) -> queries.Window:
    return queries.Window.parse(since, until)


@router.get("/apm/services", summary="RED per service")
def get_services(
    request: Request,
    since: str = Query("1h", description="Duration (1h, 7d) or ISO time."),
    until: str | None = Query(None),
    _: Any = Viewer,
) -> dict[str, Any]:
    w = _window(since, until)
    rt = request.app.state.runtime
    items = queries.services(rt.storage, w, max_lag_secs=_lag(rt))
    return {"items": items, "window": w.to_dict()}


@router.get("/apm/services/{service}/operations", summary="RED per operation of a service")
def get_operations(
    request: Request,
    service: str,
    since: str = Query("1h"),
    until: str | None = Query(None),
    _: Any = Viewer,
) -> dict[str, Any]:
    w = _window(since, until)
    items = queries.operations(request.app.state.runtime.storage, w, service)
    return {"items": items, "window": w.to_dict()}


@router.get("/apm/services/{service}/latency", summary="Latency series with exemplar traces")
def get_latency(
    request: Request,
    service: str,
    since: str = Query("1h"),
    until: str | None = Query(None),
    bucket_secs: int = Query(60, ge=1, le=86400),
    _: Any = Viewer,
) -> dict[str, Any]:
    w = _window(since, until)
    items = queries.latency_series(request.app.state.runtime.storage, w, service, bucket_secs)
    return {"items": items, "window": w.to_dict()}


@router.get("/apm/service-map", summary="Service dependency graph")
def get_service_map(
    request: Request,
    since: str = Query("1h"),
    until: str | None = Query(None),
    service: str | None = Query(None),
    cache: bool = Query(True),
    _: Any = Viewer,
) -> dict[str, Any]:
    rt = request.app.state.runtime
    return service_map.service_map(
        rt.storage, _window(since, until), service, cache, max_lag_secs=_lag(rt)
    )


@router.get("/apm/traces/{trace_id}", summary="One trace as a tree, with its log lines")
def get_trace(
    request: Request,
    trace_id: str,
    logs: bool = Query(True, description="list the log lines carrying this trace id"),
    _: Any = Viewer,
) -> dict[str, Any]:
    rt = request.app.state.runtime
    tree = queries.trace(rt.storage, trace_id)
    if logs:
        tree["logs"] = queries.trace_logs(rt, tree)
    return tree


@router.get("/apm/traces", summary="Search spans")
def search_traces(
    request: Request,
    since: str = Query("1h"),
    until: str | None = Query(None),
    service: str | None = Query(None),
    operation: str | None = Query(None),
    status: str | None = Query(None, description="error, ok or unset"),
    kind: str | None = Query(None),
    min_duration: str | None = Query(None, description="e.g. 500ms"),
    max_duration: str | None = Query(None),
    attr: list[str] = Query(default_factory=list, description="key=value (repeatable)"),
    trace_id: str | None = Query(None),
    roots_only: bool = Query(False),
    sort: str = Query("-duration_ms"),
    limit: int = Query(50, ge=1, le=1000),
    _: Any = Viewer,
) -> dict[str, Any]:
    pairs = []
    for a in attr:
        k, sep, v = a.partition("=")
        if not sep or not k:
            raise queries.ApmQueryError(f"attr must be key=value, got {a!r}")
        pairs.append((k, v))
    w = _window(since, until)
    items = queries.search(
        request.app.state.runtime.storage,
        w,
        service=service,
        operation=operation,
        status=status,
        kind=kind,
        min_duration_ms=queries.parse_seconds(min_duration, "ms") * 1000 if min_duration else None,
        max_duration_ms=queries.parse_seconds(max_duration, "ms") * 1000 if max_duration else None,
        attrs=pairs,
        trace_id=trace_id,
        roots_only=roots_only,
        sort=sort,
        limit=limit,
    )
    return {"items": items, "window": w.to_dict()}


@background.register(name="apm-receiver")
def apm_receiver(runtime: Any, stop: threading.Event) -> None:
    """Replay spool segments a killed ``serve`` left, flush while serving, flush at exit."""
    receiver_for(runtime)
    stop.wait()
    close_receiver(runtime)
