"""The ASGI layer every request passes: request id, body limit, security headers,
Prometheus metrics and the audit log of mutating calls.

Written as plain ASGI (not ``BaseHTTPMiddleware``) so that the route Starlette matched
and the principal the auth dependency stored are visible here after the call: both
live in the request ``scope`` this layer shares with the app.
"""

from __future__ import annotations

import logging
import re
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

import anyio
from fastapi import HTTPException
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mantissa.api.auth import UNSAFE_METHODS, AuditLog, Principal

log = logging.getLogger("mantissa.api")

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
]


def no_audit(fn: Any) -> Any:
    """Mark an endpoint whose calls are not audited (high-rate data writes, sign-out)."""
    fn.__mantissa_no_audit__ = True
    return fn


def audit_detail(request: Any, **detail: Any) -> None:
    """Add what a mutating call changed to its audit record (never secrets)."""
    current = getattr(request.state, "audit_detail", None) or {}
    current.update(detail)
    request.state.audit_detail = current


@dataclass
class BodyLimits:
    """The request body cap: one default plus overrides for given route paths."""

    default: int
    overrides: list[tuple[re.Pattern[str], int]] = field(default_factory=list)

    def add(self, path: str, max_bytes: int) -> None:
        regex, _, _ = compile_path(path)
        self.overrides.append((regex, max_bytes))

    def for_path(self, path: str) -> int:
        for regex, n in self.overrides:
            if regex.match(path):
                return n
        return self.default


class Metrics:
    """The service's own Prometheus metrics (one registry per app)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "mantissa_http_requests_total",
            "HTTP requests by method, route template and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "mantissa_http_request_duration_seconds",
            "HTTP request latency by method and route template",
            ["method", "route"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "mantissa_http_requests_in_flight", "Requests being served", registry=self.registry
        )
        self.auth_failures = Counter(
            "mantissa_http_auth_failures_total",
            "Requests refused with 401 or 403",
            ["status"],
            registry=self.registry,
        )
        self.audit_failures = Counter(
            "mantissa_audit_write_failures_total",
            "Mutating calls whose audit record could not be written",
            registry=self.registry,
        )
        self.background_up = Gauge(
            "mantissa_background_service_up",
            "1 while a background service runs",
            ["service"],
            registry=self.registry,
        )
        self.query_seconds = Histogram(
            "mantissa_query_duration_seconds",
            "Time spent running /query",
            ["kind"],
            registry=self.registry,
        )


class ApiMiddleware:
    """Request id, body limit, headers, metrics and audit for every HTTP request."""

    def __init__(self, app: ASGIApp, limits: BodyLimits, metrics: Metrics, audit: AuditLog):
        self.app = app
        self.limits = limits
        self.metrics = metrics
        self.audit = audit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        rid_in = headers.get(b"x-request-id", b"").decode("latin-1")
        rid = rid_in if _REQUEST_ID.match(rid_in) else secrets.token_hex(8)
        scope.setdefault("state", {})["request_id"] = rid
        method = scope["method"]
        path = scope["path"]
        limit = self.limits.for_path(path)

        status_holder = {"status": 500}
        https = scope.get("scheme") == "https"

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_holder["status"] = message["status"]
                status_holder["started"] = 1
                hdrs = list(message.get("headers") or [])
                names = {k.lower() for k, _ in hdrs}
                for k, v in SECURITY_HEADERS:
                    if k not in names:
                        hdrs.append((k, v))
                hdrs.append((b"x-request-id", rid.encode()))
                if b"cache-control" not in names:
                    hdrs.append((b"cache-control", b"no-store"))
                if https:
                    hdrs.append((b"strict-transport-security", b"max-age=31536000"))
                message = {**message, "headers": hdrs}
            await send(message)

        declared = headers.get(b"content-length")
        if declared is not None:
            try:
                too_big = int(declared) > limit
            except ValueError:
                too_big = False
            if too_big:
                await self._reject_too_large(scope, send_wrapper, limit, rid)
                self._observe(method, "-", 413, 0.0)
                return

        received = 0

        async def receive_wrapper() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    # chunked bodies have no Content-Length: count while reading
                    raise HTTPException(413, f"request body over the {limit}-byte limit")
            return message

        start = time.perf_counter()
        self.metrics.in_flight.inc()
        try:
            await self.app(scope, receive_wrapper, send_wrapper)
        except Exception:
            # answered here, inside this layer, so a 500 carries the same headers as the rest
            log.exception("unexpected error in %s %s (request %s)", method, path, rid)
            if status_holder.get("started"):
                raise
            await self._send_error(
                send_wrapper,
                500,
                "internal_error",
                "internal error; the server log has the details under this request id",
                rid,
            )
        finally:
            self.metrics.in_flight.dec()
            route = scope.get("route")
            template = getattr(route, "path", None) or "-"
            status = status_holder["status"]
            self._observe(method, template, status, time.perf_counter() - start)
            if method in UNSAFE_METHODS and not getattr(
                getattr(route, "endpoint", None), "__mantissa_no_audit__", False
            ):
                await self._audit(scope, method, path, template, status, rid)

    def _observe(self, method: str, route: str, status: int, seconds: float) -> None:
        self.metrics.requests.labels(method, route, str(status)).inc()
        self.metrics.latency.labels(method, route).observe(seconds)
        if status in (401, 403):
            self.metrics.auth_failures.labels(str(status)).inc()

    async def _audit(
        self, scope: Scope, method: str, path: str, route: str, status: int, rid: str
    ) -> None:
        state = scope.get("state") or {}
        principal = state.get("principal")
        client = scope.get("client")
        try:
            await anyio.to_thread.run_sync(
                lambda: self.audit.record(
                    principal=principal if isinstance(principal, Principal) else None,
                    method=method,
                    path=path,
                    route=route,
                    status=status,
                    client=client[0] if client else None,
                    request_id=rid,
                    detail=state.get("audit_detail"),
                )
            )
        except Exception:
            self.metrics.audit_failures.inc()
            log.exception("could not write the audit record of %s %s", method, path)

    async def _reject_too_large(self, scope: Scope, send: Send, limit: int, rid: str) -> None:
        await self._send_error(
            send, 413, "payload_too_large", f"request body over the {limit}-byte limit", rid
        )

    async def _send_error(self, send: Send, status: int, code: str, message: str, rid: str) -> None:
        import orjson

        body = orjson.dumps({"error": {"code": code, "message": message, "request_id": rid}})
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
