"""HTTP event receivers on ``mantissa serve`` (role ``ingest``); 200 only once durable.

* ``POST /ingest/{source}``: NDJSON, a JSON array, or a wrapper document (``Records``,
  ``items`` ...) of ``source`` records; text lines for line sources (syslog, CEF);
  ``Content-Encoding: gzip``. Answers ``{"events", "rejected", "duplicates"}``.
* ``POST /services/collector/event`` (also ``/services/collector`` and ``.../event/1.0``):
  Splunk HEC. ``Authorization: Splunk <token>``; the body is one or more concatenated
  JSON event objects ``{"time", "host", "source", "sourcetype", "index", "event",
  "fields"}``; answers ``{"text": "Success", "code": 0}`` and HEC's own error codes
  (2 token required, 3 invalid authorization, 4 invalid token, 5 no data, 6 invalid data
  format with ``invalid-event-number``, 9 server busy, 12/13 event field missing/blank).
  ``GET /services/collector/health`` → code 17. ``sourcetype`` picks the parser through
  ``receivers.http.hec.sourcetypes``; others go to ``default_source`` (``json_lines``).
  ``POST /services/collector/raw``: one event per line, metadata in the query string.
  A data channel (``X-Splunk-Request-Channel`` or ``?channel=``) must be a GUID (code 11).
  An event without ``time`` gets the time of receipt.

Each request is one *delivery* (id: a hash of its body with the HEC channel or the
``Idempotency-Key`` header): records without a vendor id get ``event_id`` from the
delivery and their position in it, so a sender's retry of the same request is
deduplicated while identical lines of distinct requests are all kept.
* ``POST /ingest/webhooks/jamf``: Jamf Pro webhooks (JSON, or XML ``<JSSEvent>`` bodies;
  Jamf sends Basic auth, so the password is the ingest token, or a Bearer header).
* ``POST /ingest/webhooks/kubernetes``: the API server's audit webhook backend
  (``EventList`` bodies; its kubeconfig carries the ingest token as a bearer token).

Bodies over ``receivers.http.max_body_bytes`` (or inflating past
``max_decompressed_bytes``) get 413; when every write slot is busy, 429 + Retry-After.
"""

from __future__ import annotations

import base64
import json
import re
import time
from typing import Any

import anyio
import orjson
from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from starlette.requests import ClientDisconnect

from mantissa.api.auth import Role, require, role_allows
from mantissa.api.body import read_body
from mantissa.api.errors import error_responses
from mantissa.api.middleware import no_audit
from mantissa.api.routers import register
from mantissa.errors import (
    Forbidden,
    IngestError,
    MantissaError,
    NotFound,
    PayloadTooLarge,
    SourceError,
    Unauthorized,
)
from mantissa.inputs import serve as _serve  # noqa: F401  (registers the collector service)
from mantissa.inputs.jamf import webhook_from_xml
from mantissa.inputs.receiver import (
    Saturated,
    decompress,
    delivery_id,
    receiver_for,
    receivers_config,
)

router = APIRouter(tags=["ingest"])
# the app-wide cap must not pre-empt ours (receivers.http.max_body_bytes is checked here)
register(router, max_body_bytes=1024 * 1024 * 1024)

_require_ingest = require(Role.ingest)


async def _read_body(request: Request, limit: int) -> bytes:
    try:
        return await read_body(request, limit, "receivers.http.max_body_bytes")
    except ClientDisconnect:
        raise IngestError("client disconnected before the body was complete") from None


async def _body(request: Request) -> bytes:
    cfg = receivers_config(request.app.state.runtime).http
    wire = await _read_body(request, cfg.max_body_bytes)
    return decompress(wire, request.headers.get("content-encoding"), cfg.max_decompressed_bytes)


def _error(exc: MantissaError, request: Request, status: int | None = None) -> JSONResponse:
    status = status or exc.http_status
    body: dict[str, Any] = {"error": {**exc.to_dict()}}
    rid = getattr(request.state, "request_id", None)
    if rid:
        body["error"]["request_id"] = rid
    headers = {"Retry-After": "1"} if status in (429, 503) else None
    if status == 401:
        headers = {"WWW-Authenticate": "Bearer"}
    return JSONResponse(body, status_code=status, headers=headers)


async def _ingest(request: Request, source: str, body: bytes, name: str) -> JSONResponse:
    rec = receiver_for(request.app.state.runtime)
    try:
        rec.check_source(source)
    except SourceError as exc:
        return _error(NotFound(str(exc)), request, 404)
    if not body.strip():
        return _error(IngestError("empty body: send NDJSON or a JSON array"), request, 400)
    # a sender's retry of this request (same body, same Idempotency-Key) dedups; identical
    # lines of distinct requests do not
    delivery = delivery_id(body, source, request.headers.get("idempotency-key"))
    try:
        summary = await anyio.to_thread.run_sync(rec.ingest, source, body, name, False, delivery)
    except Saturated as exc:
        return _error(exc, request, 429)
    except OSError as exc:  # the lake could not be written: nothing acknowledged
        return _error(IngestError(f"could not store the batch: {exc.strerror}"), request, 503)
    return JSONResponse(
        {
            "source": source,
            "events": summary.events,
            "rejected": summary.rejected,
            "duplicates": summary.duplicates,
            "reject_reasons": summary.reasons,
        }
    )


@router.post(
    "/ingest/webhooks/jamf",
    summary="Jamf Pro webhook receiver",
    responses=error_responses(400, 401, 403, 404, 413, 429, 503),
)
@no_audit
async def jamf_webhook(request: Request) -> JSONResponse:
    """Jamf Pro webhook events; auth: Basic (password = ingest token) or Bearer."""
    err = _webhook_auth(request)
    if err is not None:
        return _error(err, request)
    try:
        body = await _body(request)
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype in ("text/xml", "application/xml") or body.lstrip().startswith(b"<"):
            # a webhook whose content type is set to XML in Jamf Pro
            body = orjson.dumps(webhook_from_xml(body))
    except (PayloadTooLarge, IngestError) as exc:
        return _error(exc, request, 413 if isinstance(exc, PayloadTooLarge) else 400)
    return await _ingest(request, "jamf", body, "jamf-webhook.json")


@router.post(
    "/ingest/webhooks/kubernetes",
    summary="Kubernetes audit webhook backend",
    responses=error_responses(400, 401, 403, 404, 413, 429, 503),
)
@no_audit
async def kubernetes_webhook(request: Request) -> JSONResponse:
    """``audit.k8s.io/v1`` ``EventList`` bodies from the API server's webhook backend."""
    err = _webhook_auth(request)
    if err is not None:
        return _error(err, request)
    try:
        body = await _body(request)
    except (PayloadTooLarge, IngestError) as exc:
        return _error(exc, request, 413 if isinstance(exc, PayloadTooLarge) else 400)
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return _error(IngestError("the body is not JSON (expected an audit EventList)"), request)
    if not isinstance(doc, dict) or doc.get("kind") != "EventList":
        return _error(IngestError('expected {"kind": "EventList", "items": [...]}'), request)
    return await _ingest(request, "kubernetes", body, "k8s-audit-webhook.json")


@router.post(
    "/ingest/{source}",
    summary="Send events of one source (NDJSON / JSON array)",
    responses=error_responses(400, 404, 413, 429, 503),
)
@no_audit
async def ingest_source(
    source: str, request: Request, _p: Any = Depends(_require_ingest)
) -> JSONResponse:
    """Parse the body as ``source`` records and write them to the lake (200 once durable)."""
    try:
        body = await _body(request)
    except PayloadTooLarge as exc:
        return _error(exc, request, 413)
    except IngestError as exc:
        return _error(exc, request, 400)
    return await _ingest(request, source, body, f"http-{source}.ndjson")


def _webhook_auth(request: Request) -> MantissaError | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    secret = value.strip()
    if scheme.lower() == "basic":
        try:
            secret = base64.b64decode(secret).decode().partition(":")[2]
        except (ValueError, UnicodeDecodeError):
            return Unauthorized("malformed Basic credentials")
    elif scheme.lower() != "bearer":
        return Unauthorized("send the ingest token (Bearer, or Basic with it as the password)")
    return _check_token(request, secret)


def _check_token(request: Request, secret: str) -> MantissaError | None:
    if not secret:
        return Unauthorized("token required")
    try:
        principal = request.app.state.tokens.authenticate(secret)
    except MantissaError as exc:
        return exc
    if not role_allows(principal.role, Role.ingest):
        return Forbidden(f"this needs role ingest; the token has role {principal.role}")
    request.state.principal = principal
    return None


# -- Splunk HEC -------------------------------------------------------------------------

_HEC = {
    0: (200, "Success"),
    2: (401, "Token is required"),
    3: (401, "Invalid authorization"),
    4: (403, "Invalid token"),
    5: (400, "No data"),
    6: (400, "Invalid data format"),
    8: (500, "Internal server error"),
    9: (503, "Server is busy"),
    10: (400, "Data channel is missing"),
    11: (400, "Invalid data channel"),
    12: (400, "Event field is required"),
    13: (400, "Event field cannot be blank"),
    17: (200, "HEC is healthy"),
}


_HEC_SHAPE = {
    "application/json": {
        "schema": {
            "type": "object",
            "properties": {"text": {"type": "string"}, "code": {"type": "integer"}},
        }
    }
}
# Splunk HEC answers in its own {"text", "code"} shape (HTTP Event Collector status codes).
_HEC_RESPONSES: dict[int | str, dict[str, Any]] = {
    s: {"description": "Splunk HEC status", "content": _HEC_SHAPE}
    for s in (400, 401, 403, 404, 413, 429, 500, 503)
}


def _hec(code: int, **extra: Any) -> JSONResponse:
    status, text = _HEC[code]
    headers = {"Retry-After": "1"} if code == 9 else None
    return JSONResponse({"text": text, "code": code, **extra}, status_code=status, headers=headers)


def _hec_events(body: bytes) -> tuple[list[dict[str, Any]], int | None, int]:
    """Split a HEC body into event objects; returns (events, bad_index, code)."""
    events: list[dict[str, Any]] = []
    # fast path: one object per line (what Fluent Bit, Vector and OTel send)
    try:
        for line in body.splitlines():
            if line.strip():
                events.append(orjson.loads(line))
    except orjson.JSONDecodeError:
        events = []
        # HEC also accepts objects simply concatenated ({..}{..}) on one line
        text = body.decode("utf-8", "replace")
        dec = json.JSONDecoder()
        pos = 0
        while pos < len(text):
            while pos < len(text) and text[pos].isspace():
                pos += 1
            if pos >= len(text):
                break
            try:
                obj, pos = dec.raw_decode(text, pos)
            except json.JSONDecodeError:
                return events, len(events), 6
            events.append(obj)
    for i, ev in enumerate(events):
        if not isinstance(ev, dict):
            return events, i, 6
        if "event" not in ev:
            return events, i, 12
        if ev["event"] is None or ev["event"] == "":
            return events, i, 13
    return events, None, 0


_CHANNEL = re.compile(
    r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
)


def _hec_channel(request: Request) -> tuple[str | None, bool]:
    """The data channel (``X-Splunk-Request-Channel`` or ``?channel=``): a GUID."""
    ch = request.headers.get("x-splunk-request-channel") or request.query_params.get("channel")
    if ch is None:
        return None, True
    return ch, bool(_CHANNEL.match(ch.strip()))


async def _hec_auth_and_body(request: Request) -> tuple[bytes, str | None] | JSONResponse:
    """HEC token (``Authorization: Splunk`` / Bearer), channel, and the inflated body."""
    header = request.headers.get("authorization")
    if not header:
        return _hec(2)
    scheme, _, value = header.partition(" ")
    if scheme.lower() not in ("splunk", "bearer") or not value.strip():
        return _hec(3)
    err = _check_token(request, value.strip())
    if err is not None:
        return _hec(4)
    channel, ok = _hec_channel(request)
    if not ok:
        return _hec(11)
    try:
        body = await _body(request)
    except PayloadTooLarge as exc:
        return JSONResponse({"text": "Content too large", "code": 6, "detail": exc.message}, 413)
    except IngestError:
        return _hec(6)
    if not body.strip():
        return _hec(5)
    return body, channel


async def _hec_commit(
    request: Request, groups: dict[str, list[bytes]], delivery: str
) -> JSONResponse:
    rec = receiver_for(request.app.state.runtime)
    try:
        for source, lines in groups.items():
            body = b"\n".join(lines)
            # group commit: concurrent senders share one lake write; ack once it is durable
            await anyio.to_thread.run_sync(rec.commit, source, body, delivery)
    except Saturated:
        return _hec(9)
    except SourceError:
        return _hec(8)
    except OSError:
        return _hec(9)
    return _hec(0)


def _hec_record(ev: dict[str, Any], mapped: bool, received: float) -> dict[str, Any]:
    event = ev["event"]
    if mapped and isinstance(event, dict):
        return event  # the vendor's own record, for that vendor's parser
    rec: dict[str, Any] = {"event": event} if not isinstance(event, dict) else dict(event)
    if not isinstance(event, dict):
        rec["message"] = event if isinstance(event, str) else orjson.dumps(event).decode()
    for key in ("time", "host", "source", "sourcetype", "index"):
        if key in ev and key not in rec:
            rec[key] = ev[key]
    if "time" not in rec:
        rec["time"] = received  # HEC: no time given → the time of receipt
    if isinstance(ev.get("fields"), dict):
        for k, v in ev["fields"].items():
            rec.setdefault(k, v)
    return rec


@router.get("/services/collector/health", summary="Splunk HEC health", responses=_HEC_RESPONSES)
async def hec_health() -> JSONResponse:
    return _hec(17)


@router.post(
    "/services/collector/event",
    summary="Splunk HEC event endpoint",
    responses=_HEC_RESPONSES,
)
@router.post("/services/collector/event/1.0", include_in_schema=False)
@router.post("/services/collector", include_in_schema=False)
@no_audit
async def hec_event(request: Request) -> JSONResponse:
    """Splunk HTTP Event Collector: ``Authorization: Splunk <ingest token>``.

    A request is one delivery (id: its channel and body), so a shipper's retry of it is
    deduplicated while identical events of distinct requests (or of one) are all kept.
    """
    got = await _hec_auth_and_body(request)
    if isinstance(got, JSONResponse):
        return got
    body, channel = got
    cfg = receivers_config(request.app.state.runtime).http
    events, bad, code = _hec_events(body)
    if code:
        return _hec(code, **({"invalid-event-number": bad} if bad is not None else {}))
    received = round(time.time(), 3)
    groups: dict[str, list[bytes]] = {}
    for ev in events:
        st = ev.get("sourcetype")
        source = cfg.hec.sourcetypes.get(st) if isinstance(st, str) else None
        groups.setdefault(source or cfg.hec.default_source, []).append(
            orjson.dumps(_hec_record(ev, source is not None, received))
        )
    return await _hec_commit(request, groups, delivery_id(body, "hec", channel))


@router.post(
    "/services/collector/raw",
    summary="Splunk HEC raw endpoint",
    responses=_HEC_RESPONSES,
)
@router.post("/services/collector/raw/1.0", include_in_schema=False)
@no_audit
async def hec_raw(request: Request) -> JSONResponse:
    """Splunk HEC raw: each line of the body is one event; ``host``, ``source``,
    ``sourcetype``, ``index`` and ``time`` come from the query string. A ``sourcetype``
    mapped in ``receivers.http.hec.sourcetypes`` sends the lines as they are to that
    source's parser (e.g. ``syslog``); others become ``default_source`` records."""
    got = await _hec_auth_and_body(request)
    if isinstance(got, JSONResponse):
        return got
    body, channel = got
    cfg = receivers_config(request.app.state.runtime).http
    q = request.query_params
    st = q.get("sourcetype")
    mapped = cfg.hec.sourcetypes.get(st) if st else None
    lines = [ln.rstrip(b"\r") for ln in body.split(b"\n") if ln.strip()]
    if mapped:
        groups = {mapped: lines}
    else:
        try:
            when: Any = float(q["time"]) if q.get("time") else round(time.time(), 3)
        except ValueError:
            return _hec(6)
        meta = {k: q[k] for k in ("host", "source", "sourcetype", "index") if q.get(k)}
        groups = {
            cfg.hec.default_source: [
                orjson.dumps({"message": ln.decode("utf-8", "replace"), "time": when, **meta})
                for ln in lines
            ]
        }
    return await _hec_commit(request, groups, delivery_id(body, "hec-raw", channel, str(q)))
