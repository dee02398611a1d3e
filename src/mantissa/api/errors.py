"""Errors as JSON: ``{"error": {"code", "message", "hint"?, "request_id"?, "details"?}}``.

``code`` is stable (``MantissaError.code``); clients branch on it, never on the message.
Nothing ever answers with a stack trace: an unexpected exception is logged with its
request id and answered ``500 internal_error`` carrying only that id.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from mantissa.engines.base import to_jsonable
from mantissa.errors import MantissaError

log = logging.getLogger("mantissa.api")

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    429: "too_many_requests",
    500: "internal_error",
    503: "unavailable",
}


class ErrorBody(BaseModel):
    code: str
    message: str
    hint: str | None = None
    request_id: str | None = None
    details: list[dict[str, Any]] | None = None


class ErrorResponse(BaseModel):
    """The body of every error response."""

    error: ErrorBody


def _describe(status: int) -> str:
    return {
        400: "Bad request (e.g. SQL the guard refused)",
        401: "Missing, invalid, revoked or expired credentials",
        403: "The caller's role does not allow this (or a missing CSRF token)",
        404: "Not found",
        413: "Request body too large",
        422: "Invalid parameters or body",
        500: "Internal error (details in the server log under request_id)",
        503: "A feature or dependency is unavailable",
    }.get(status, "Error")


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries for these error statuses (all share one schema)."""
    return {s: {"model": ErrorResponse, "description": _describe(s)} for s in statuses}


def error_json(
    status: int,
    code: str,
    message: str,
    request: Request | None = None,
    hint: str | None = None,
    details: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {"code": code, "message": message}
    if hint:
        body["hint"] = hint
    rid = getattr(request.state, "request_id", None) if request is not None else None
    if rid:
        body["request_id"] = rid
    if details:
        body["details"] = details
    return JSONResponse({"error": body}, status_code=status, headers=headers)


def _validation_details(exc: RequestValidationError) -> list[dict[str, Any]]:
    out = []
    for e in exc.errors()[:20]:
        # never echo the input back: it may be a secret pasted in the wrong field
        out.append({"loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg", ""))})
    return out


def install(app: FastAPI) -> None:
    """Register the handlers that turn every exception into the JSON error shape."""

    @app.exception_handler(MantissaError)
    async def _mantissa(request: Request, exc: MantissaError) -> JSONResponse:
        status = int(getattr(exc, "http_status", 500) or 500)
        if status >= 500:
            log.error(
                "request %s failed: %s: %s",
                getattr(request.state, "request_id", "-"),
                exc.code,
                exc.message,
            )
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        return error_json(status, exc.code, exc.message, request, exc.hint, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        details = _validation_details(exc)
        first = details[0] if details else {"loc": [], "msg": "invalid request"}
        where = ".".join(p for p in first["loc"] if p not in ("body",)) or "request"
        return error_json(
            422,
            "invalid_request",
            f"{where}: {first['msg']}",
            request,
            details=to_jsonable(details),
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, f"http_{exc.status_code}")
        message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            # one path can have a route per method: list them all (RFC 9110 §15.5.6)
            path = request.url.path
            allowed = sorted(
                {m for m, _, route in request.app.state.api_routes if route.path_regex.match(path)}
            )
            if allowed:
                headers["Allow"] = ", ".join(allowed)
        return error_json(exc.status_code, code, message, request, headers=headers or None)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception(
            "unexpected error in %s %s (request %s)",
            request.method,
            request.url.path,
            getattr(request.state, "request_id", "-"),
        )
        return error_json(
            500,
            "internal_error",
            "internal error; the server log has the details under this request id",
            request,
        )
