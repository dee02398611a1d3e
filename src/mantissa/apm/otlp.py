"""OTLP decoding and validation: request bytes → columnar rows for the lake.

Both OTLP/HTTP encodings are decoded with the official ``opentelemetry-proto`` classes:
protobuf with ``ParseFromString``, JSON with ``google.protobuf.json_format.ParseDict``
after the OTLP-specific fix-ups the spec requires (OTLP/HTTP "JSON Protobuf Encoding",
https://opentelemetry.io/docs/specs/otlp/#json-protobuf-encoding):

* ``traceId`` / ``spanId`` / ``parentSpanId`` (and those of links and exemplars) are
  hex strings, not base64, in any case;
* enums may be integers (``"kind": 2``), int64 may be strings or numbers;
* unknown fields must be ignored.

Each span (or data point) is then validated on its own: a bad one is rejected with a
reason and counted for ``partial_success``; the valid rest is kept.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import math
import time
import zlib
from dataclasses import dataclass, field
from typing import Any

import orjson
import pyarrow as pa

from mantissa.errors import IngestError, PayloadTooLarge

PROTOBUF = "application/x-protobuf"
JSON = "application/json"

MAX_SPANS = 10_000
"""Spans (or data points) kept from one request; the rest are rejected (module reference)."""

KINDS = ("UNSPECIFIED", "INTERNAL", "SERVER", "CLIENT", "PRODUCER", "CONSUMER")
STATUS = ("UNSET", "OK", "ERROR")
_MIN_NANOS = 946_684_800 * 10**9  # 2000-01-01: older is a zero/1970 clock, not a real span

# Semantic-convention attributes promoted to columns of their own (current names, with
# the older names they replaced as fallbacks: semconv 1.26 renamed db.statement etc.).
PROMOTED: dict[str, tuple[str, ...]] = {
    "http.route": ("http.route",),
    "http.request.method": ("http.request.method", "http.method"),
    "http.response.status_code": ("http.response.status_code", "http.status_code"),
    "url.full": ("url.full", "http.url"),
    "url.path": ("url.path", "http.target"),
    "server.address": ("server.address", "net.peer.name", "net.host.name"),
    "client.address": ("client.address", "net.sock.peer.addr", "http.client_ip"),
    "user_agent.original": ("user_agent.original", "http.user_agent"),
    "db.system": ("db.system.name", "db.system"),
    "db.namespace": ("db.namespace", "db.name"),
    "db.operation.name": ("db.operation.name", "db.operation"),
    "db.query.text": ("db.query.text", "db.statement"),
    "messaging.system": ("messaging.system",),
    "messaging.destination.name": ("messaging.destination.name", "messaging.destination"),
    "rpc.system": ("rpc.system",),
    "rpc.service": ("rpc.service",),
    "rpc.method": ("rpc.method",),
    "peer.service": ("peer.service",),
    "enduser.id": ("enduser.id", "user.id"),
    "error.type": ("error.type",),
}
_INT_PROMOTED = {"http.response.status_code"}
RESOURCE_PROMOTED = {
    "service.namespace": "service.namespace",
    "service.version": "service.version",
    "deployment.environment": ("deployment.environment.name", "deployment.environment"),
    "host.name": "host.name",
    "k8s.pod.name": "k8s.pod.name",
}

MAP = pa.map_(pa.string(), pa.string())
TS = pa.timestamp("us", tz="UTC")
EVENT = pa.struct(
    [("time", TS), ("time_unix_nano", pa.int64()), ("name", pa.string()), ("attributes", MAP)]
)
LINK = pa.struct(
    [
        ("trace_id", pa.string()),
        ("span_id", pa.string()),
        ("trace_state", pa.string()),
        ("attributes", MAP),
    ]
)
EXEMPLAR = pa.struct(
    [
        ("time", TS),
        ("value", pa.float64()),
        ("trace_id", pa.string()),
        ("span_id", pa.string()),
        ("attributes", MAP),
    ]
)
QUANTILE = pa.struct([("quantile", pa.float64()), ("value", pa.float64())])

TRACE_FIELDS: list[tuple[str, pa.DataType]] = [
    ("event_time", TS),
    ("event_id", pa.string()),
    ("source", pa.string()),
    ("trace_id", pa.string()),
    ("span_id", pa.string()),
    ("parent_span_id", pa.string()),
    ("service_name", pa.string()),
    ("name", pa.string()),
    ("kind", pa.string()),
    ("start_time", TS),
    ("end_time", TS),
    ("start_time_unix_nano", pa.int64()),
    ("end_time_unix_nano", pa.int64()),
    ("duration_ns", pa.int64()),
    ("duration_ms", pa.float64()),
    ("status_code", pa.string()),
    ("status_message", pa.string()),
    ("trace_state", pa.string()),
    ("flags", pa.int64()),
    ("sampling_probability", pa.float64()),
    ("sampling_weight", pa.float64()),
    ("scope_name", pa.string()),
    ("scope_version", pa.string()),
    ("attributes", MAP),
    ("resource_attributes", MAP),
    ("events", pa.list_(EVENT)),
    ("links", pa.list_(LINK)),
    ("exception_type", pa.string()),
    ("exception_message", pa.string()),
    *[(k, pa.int64() if k in _INT_PROMOTED else pa.string()) for k in PROMOTED],
    *[(k, pa.string()) for k in RESOURCE_PROMOTED],
    ("user", pa.string()),
    ("src_ip", pa.string()),
    ("clock_skew_ms", pa.float64()),
    ("raw", pa.string()),
    ("ingested_at", TS),
]
TRACE_SCHEMA = pa.schema(TRACE_FIELDS)

METRIC_FIELDS: list[tuple[str, pa.DataType]] = [
    ("event_time", TS),
    ("event_id", pa.string()),
    ("source", pa.string()),
    ("time", TS),
    ("time_unix_nano", pa.int64()),
    ("start_time_unix_nano", pa.int64()),
    ("name", pa.string()),
    ("description", pa.string()),
    ("unit", pa.string()),
    ("type", pa.string()),
    ("temporality", pa.string()),
    ("is_monotonic", pa.bool_()),
    ("value", pa.float64()),
    ("count", pa.int64()),
    ("sum", pa.float64()),
    ("min", pa.float64()),
    ("max", pa.float64()),
    ("bucket_counts", pa.list_(pa.int64())),
    ("bucket_boundaries", pa.list_(pa.float64())),
    ("quantiles", pa.list_(QUANTILE)),
    ("exp_scale", pa.int64()),
    ("exp_zero_count", pa.int64()),
    ("exp_positive_offset", pa.int64()),
    ("exp_positive_counts", pa.list_(pa.int64())),
    ("exp_negative_offset", pa.int64()),
    ("exp_negative_counts", pa.list_(pa.int64())),
    ("exemplars", pa.list_(EXEMPLAR)),
    ("service_name", pa.string()),
    ("attributes", MAP),
    ("resource_attributes", MAP),
    ("scope_name", pa.string()),
    ("flags", pa.int64()),
    ("raw", pa.string()),
    ("ingested_at", TS),
]
METRIC_SCHEMA = pa.schema(METRIC_FIELDS)


def duckdb_type(t: pa.DataType) -> str:
    """The DuckDB type a column of Arrow type ``t`` reads back as."""
    if pa.types.is_timestamp(t):
        return "TIMESTAMP WITH TIME ZONE"
    if pa.types.is_map(t):
        return "MAP(VARCHAR, VARCHAR)"
    if pa.types.is_list(t):
        return duckdb_type(t.value_type) + "[]"
    if pa.types.is_struct(t):
        inner = ", ".join(f'"{f.name}" {duckdb_type(f.type)}' for f in t)
        return f"STRUCT({inner})"
    return {
        "string": "VARCHAR",
        "int64": "BIGINT",
        "double": "DOUBLE",
        "bool": "BOOLEAN",
    }[str(t)]


# -- request framing -----------------------------------------------------------------


def media_type(content_type: str | None) -> str | None:
    """``application/json; charset=utf-8`` → ``application/json``; None if unsupported."""
    base = (content_type or "").split(";", 1)[0].strip().lower()
    if base in (PROTOBUF, "application/protobuf"):
        return PROTOBUF
    if base == JSON:
        return JSON
    return None


def decompress(body: bytes, encoding: str | None, max_bytes: int) -> bytes:
    """Undo ``Content-Encoding`` (gzip, deflate, identity) without ever holding more
    than ``max_bytes`` of output: a gzip bomb stops at the cap."""
    enc = (encoding or "identity").strip().lower()
    if enc in ("", "identity"):
        return body
    if enc in ("gzip", "x-gzip"):
        wbits = 31
    elif enc == "deflate":
        # RFC 9110 says zlib-wrapped; some clients send raw deflate: accept both
        wbits = 15 if body[:1] and (body[0] & 0x0F) == 8 else -15
    else:
        raise UnsupportedEncoding(f"unsupported Content-Encoding {encoding!r}; use gzip or deflate")
    d = zlib.decompressobj(wbits)
    try:
        out = d.decompress(body, max_bytes + 1)
        if len(out) > max_bytes or d.unconsumed_tail:
            raise PayloadTooLarge(f"decompressed body over the {max_bytes}-byte limit")
        out += d.flush()
    except zlib.error as exc:
        raise IngestError(f"the {enc} body is corrupt: {exc}") from None
    if len(out) > max_bytes:
        raise PayloadTooLarge(f"decompressed body over the {max_bytes}-byte limit")
    if not d.eof:
        raise IngestError(f"the {enc} body is truncated")
    return out


class UnsupportedEncoding(IngestError):
    code = "unsupported_encoding"
    http_status = 415


# -- JSON fix-ups ------------------------------------------------------------------------

_ID_LEN = {"traceId": 16, "spanId": 8, "parentSpanId": 8}


def _fix_id(obj: dict[str, Any], key: str, errors: list[str]) -> None:
    v = obj.get(key)
    if v is None:
        return
    if not isinstance(v, str):
        errors.append(f"{key} is not a string")
        obj[key] = ""
        return
    try:
        raw = bytes.fromhex(v)
    except ValueError:
        errors.append(f"{key} {v[:40]!r} is not hex")
        obj[key] = ""
        return
    obj[key] = base64.b64encode(raw).decode()


def _fix_ids(obj: Any, keys: tuple[str, ...], errors: list[str]) -> None:
    if isinstance(obj, dict):
        for k in keys:
            if k in obj:
                _fix_id(obj, k, errors)


def _listof(obj: Any, key: str) -> list[Any]:
    v = obj.get(key) if isinstance(obj, dict) else None
    return v if isinstance(v, list) else []


def parse_json_traces(body: bytes) -> tuple[Any, dict[tuple[int, int, int], list[str]]]:
    """OTLP/JSON → ``ExportTraceServiceRequest``; id errors by (resource, scope, span)."""
    from google.protobuf import json_format
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    doc = _load_json(body)
    id_errors: dict[tuple[int, int, int], list[str]] = {}
    for ri, rs in enumerate(_listof(doc, "resourceSpans")):
        for si, ss in enumerate(_listof(rs, "scopeSpans")):
            for pi, span in enumerate(_listof(ss, "spans")):
                errs: list[str] = []
                _fix_ids(span, ("traceId", "spanId", "parentSpanId"), errs)
                for link in _listof(span, "links"):
                    _fix_ids(link, ("traceId", "spanId"), errs)
                if errs:
                    id_errors[(ri, si, pi)] = errs
    try:
        msg = json_format.ParseDict(doc, ExportTraceServiceRequest(), ignore_unknown_fields=True)
    except (json_format.ParseError, ValueError, TypeError, RecursionError) as exc:
        raise IngestError(f"not a valid OTLP/JSON trace request: {_short(exc)}") from None
    return msg, id_errors


def parse_json_metrics(body: bytes) -> Any:
    from google.protobuf import json_format
    from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
        ExportMetricsServiceRequest,
    )

    doc = _load_json(body)
    errs: list[str] = []
    for rm in _listof(doc, "resourceMetrics"):
        for sm in _listof(rm, "scopeMetrics"):
            for m in _listof(sm, "metrics"):
                if not isinstance(m, dict):
                    continue
                for kind in ("gauge", "sum", "histogram", "exponentialHistogram", "summary"):
                    for dp in _listof(m.get(kind), "dataPoints"):
                        for ex in _listof(dp, "exemplars"):
                            _fix_ids(ex, ("traceId", "spanId"), errs)
    try:
        return json_format.ParseDict(doc, ExportMetricsServiceRequest(), ignore_unknown_fields=True)
    except (json_format.ParseError, ValueError, TypeError, RecursionError) as exc:
        raise IngestError(f"not a valid OTLP/JSON metrics request: {_short(exc)}") from None


def _load_json(body: bytes) -> Any:
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise IngestError(f"the body is not valid JSON: {_short(exc)}") from None
    if not isinstance(doc, dict):
        raise IngestError("an OTLP/JSON request must be a JSON object")
    return doc


def _short(exc: BaseException) -> str:
    text = str(exc).split("\n")[0]
    return text[:300]


def parse_protobuf(body: bytes, message_cls: Any) -> Any:
    from google.protobuf.message import DecodeError

    msg = message_cls()
    try:
        msg.ParseFromString(body)
    except (DecodeError, RecursionError, ValueError) as exc:
        raise IngestError(f"not a valid OTLP protobuf request: {_short(exc)}") from None
    return msg


# -- values ---------------------------------------------------------------------------


def any_value(v: Any) -> Any:
    """An ``AnyValue`` as a plain Python value (bytes as base64 text)."""
    which = v.WhichOneof("value")
    if which == "string_value":
        return v.string_value
    if which == "int_value":
        return v.int_value
    if which == "double_value":
        return v.double_value
    if which == "bool_value":
        return v.bool_value
    if which == "array_value":
        return [any_value(x) for x in v.array_value.values]
    if which == "kvlist_value":
        return {kv.key: any_value(kv.value) for kv in v.kvlist_value.values}
    if which == "bytes_value":
        return base64.b64encode(v.bytes_value).decode()
    return None


def _text(v: Any) -> str | None:
    if v is None:
        return None
    if isinstance(v, str):
        return v
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        if isinstance(v, float) and not math.isfinite(v):
            return str(v)
        return str(v)
    return orjson.dumps(v, option=orjson.OPT_NON_STR_KEYS).decode()


def attrs(kvs: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for kv in kvs:
        out[kv.key] = any_value(kv.value)
    return out


def _map(d: dict[str, Any]) -> list[tuple[str, str | None]]:
    return [(k, _text(v)) for k, v in d.items()]


def sampling_probability(trace_state: str) -> float | None:
    """The sampling probability from OTel ``th`` in ``tracestate`` (``ot=th:c``), or None.

    Per the OTel probability-sampling spec, ``th`` is the rejection threshold ``T`` as up
    to 14 hex digits (right-padded with zeros); the span was kept with probability
    ``1 - T / 2**56``.
    """
    if not trace_state or "ot=" not in trace_state:
        return None
    for member in trace_state.split(","):
        key, _, value = member.strip().partition("=")
        if key != "ot":
            continue
        for sub in value.split(";"):
            k, _, v = sub.partition(":")
            if k == "th" and 0 < len(v) <= 14:
                try:
                    t = int(v.ljust(14, "0"), 16)
                except ValueError:
                    return None
                p = 1.0 - t / float(1 << 56)
                return p if p > 0 else None
    return None


def _ts(nanos: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(nanos // 1000 / 1e6, dt.UTC)


# -- traces ---------------------------------------------------------------------------


@dataclass
class Rejected:
    """One span or data point that was not stored, and why."""

    reason: str
    record: dict[str, Any]


@dataclass
class Decoded:
    """The valid rows of one request as an Arrow table, plus what was rejected."""

    table: pa.Table
    rejected: list[Rejected] = field(default_factory=list)
    accepted: int = 0
    skewed: int = 0

    @property
    def error_message(self) -> str:
        if not self.rejected:
            return ""
        reasons: dict[str, int] = {}
        for r in self.rejected:
            key = r.reason.split(":", 1)[0]
            reasons[key] = reasons.get(key, 0) + 1
        parts = [f"{n} {k}" for k, n in sorted(reasons.items(), key=lambda kv: -kv[1])]
        return f"rejected {len(self.rejected)}: " + "; ".join(parts[:8])


@dataclass
class Limits:
    """Validation bounds (``apm:`` config)."""

    max_items: int = MAX_SPANS
    #: a span starting more than this in the future is rejected (not "fixed")
    max_future_secs: float = 86_400.0
    #: skew above this (but under ``max_future_secs``) is kept and flagged
    skew_tolerance_secs: float = 60.0
    #: a span older than this is rejected (replays of stale buffers, zeroed clocks)
    max_age_days: float = 30.0


def _check_id(b: bytes, size: int, what: str) -> str | None:
    if len(b) != size:
        return f"invalid {what}: {len(b)} bytes, expected {size}"
    if not any(b):
        return f"invalid {what}: all zeros"
    return None


def _value_text(v: Any) -> str | None:
    """An ``AnyValue`` as map text: scalars as text, arrays/kvlists as JSON, bytes base64."""
    which = v.WhichOneof("value")
    if which == "string_value":
        return v.string_value
    if which == "int_value":
        return str(v.int_value)
    if which == "bool_value":
        return "true" if v.bool_value else "false"
    if which == "double_value":
        return str(v.double_value)
    if which is None:
        return None
    return _text(any_value(v))


def _kv_map(kvs: Any) -> list[tuple[str, str | None]]:
    out = []
    for kv in kvs:
        v = kv.value
        # strings are most attribute values: no second call for them
        out.append(
            (kv.key, v.string_value if v.WhichOneof("value") == "string_value" else _value_text(v))
        )
    return out


_RAW_FIELDS = [
    ("trace_id", pa.string()),
    ("span_id", pa.string()),
    ("parent_span_id", pa.string()),
    ("service_name", pa.string()),
    ("name", pa.string()),
    ("kind_i", pa.int8()),
    ("start_time_unix_nano", pa.int64()),
    ("end_time_unix_nano", pa.int64()),
    ("status_i", pa.int8()),
    ("status_message", pa.string()),
    ("trace_state", pa.string()),
    ("flags", pa.int64()),
    ("scope_name", pa.string()),
    ("scope_version", pa.string()),
    ("attributes", MAP),
    ("resource_attributes", MAP),
    ("events", pa.list_(EVENT)),
    ("links", pa.list_(LINK)),
    ("exception_type", pa.string()),
    ("exception_message", pa.string()),
]
_RAW_SCHEMA = pa.schema(_RAW_FIELDS)


def _promote(m: pa.Array, spec: dict[str, Any]) -> dict[str, pa.Array]:
    """``{column: first non-null value of its keys}`` from a MAP column, every column in
    one pass over the flattened entries (one ``is_in`` over all entries instead of a
    ``map_lookup`` per key; the per-key work is on the few promoted entries only)."""
    import pyarrow.compute as pc

    n = len(m)
    if n == 0:
        return {col: pa.array([], pa.string()) for col in spec}
    alts = {col: (keys,) if isinstance(keys, str) else tuple(keys) for col, keys in spec.items()}
    names = sorted({k for keys in alts.values() for k in keys})
    klist = pa.ListArray.from_arrays(m.offsets, m.keys)
    fk = pc.list_flatten(klist)
    fv = pc.list_flatten(pa.ListArray.from_arrays(m.offsets, m.items))
    parents = pc.list_parent_indices(klist)
    sel = pc.is_in(fk, value_set=pa.array(names))
    if fv.null_count:
        sel = pc.and_(sel, pc.is_valid(fv))
    pos = pc.indices_nonzero(sel)
    fk_s, par_s = fk.take(pos), parents.take(pos)
    rows = pa.array(range(n), pa.int64())
    first: dict[str, pa.Array] = {}
    for name in names:
        hit = pc.indices_nonzero(pc.equal(fk_s, name))
        # index_in finds a row's first entry of the key (maps may repeat keys)
        idx = pc.index_in(rows, value_set=pc.cast(par_s.take(hit), pa.int64()))
        first[name] = pos.take(hit).take(idx)
    out = {}
    for col, keys in alts.items():
        at = first[keys[0]] if len(keys) == 1 else pc.coalesce(*(first[k] for k in keys))
        out[col] = fv.take(at)
    return out


def _lookup(m: pa.Array, keys: tuple[str, ...] | str) -> pa.Array:
    """First non-null value of ``keys`` in a MAP column (columnar)."""
    import pyarrow.compute as pc

    if isinstance(keys, str):
        keys = (keys,)
    out = pc.map_lookup(m, keys[0], "first")
    for k in keys[1:]:
        out = pc.coalesce(out, pc.map_lookup(m, k, "first"))
    return out


def traces_to_table(msg: Any, limits: Limits | None = None, id_errors: Any = None) -> Decoded:
    """Validate every span of an ``ExportTraceServiceRequest`` and build the rows.

    The per-span Python loop only copies fields out of the protobuf objects; everything
    derived (timestamps, durations, ids, promoted attributes, sampling weights) is
    computed on the Arrow columns afterwards.
    """
    import pyarrow.compute as pc

    lim = limits or Limits()
    id_errors = id_errors or {}
    now_ns = time.time_ns()
    future_ns = now_ns + int(lim.max_future_secs * 1e9)
    oldest_ns = max(_MIN_NANOS, now_ns - int(lim.max_age_days * 86400e9))
    cols: dict[str, list[Any]] = {name: [] for name, _ in _RAW_FIELDS}
    c_tid, c_sid, c_par = cols["trace_id"], cols["span_id"], cols["parent_span_id"]
    c_svc, c_name, c_kind = cols["service_name"], cols["name"], cols["kind_i"]
    c_start, c_end, c_st = (
        cols["start_time_unix_nano"],
        cols["end_time_unix_nano"],
        cols["status_i"],
    )
    c_msg, c_ts, c_flags = cols["status_message"], cols["trace_state"], cols["flags"]
    c_scope, c_scopev = cols["scope_name"], cols["scope_version"]
    c_attr, c_rattr = cols["attributes"], cols["resource_attributes"]
    c_ev, c_ln = cols["events"], cols["links"]
    c_ext, c_exm = cols["exception_type"], cols["exception_message"]
    rejected: list[Rejected] = []
    accepted = 0
    for ri, rs in enumerate(msg.resource_spans):
        rmap = _kv_map(rs.resource.attributes)
        service = next((v for k, v in rmap if k == "service.name" and v), None) or "unknown_service"
        for si, ss in enumerate(rs.scope_spans):
            scope_name = ss.scope.name or None
            scope_version = ss.scope.version or None
            for pi, span in enumerate(ss.spans):
                tid = span.trace_id
                sid = span.span_id
                parent = span.parent_span_id
                start = span.start_time_unix_nano
                end = span.end_time_unix_nano
                reason = None
                if id_errors and (ri, si, pi) in id_errors:
                    reason = id_errors[(ri, si, pi)][0]
                elif len(tid) != 16 or not any(tid):
                    reason = _check_id(tid, 16, "trace_id")
                elif len(sid) != 8 or not any(sid):
                    reason = _check_id(sid, 8, "span_id")
                elif parent and len(parent) != 8:
                    reason = f"invalid parent_span_id: {len(parent)} bytes, expected 8"
                elif not span.name:
                    reason = "missing name"
                elif start == 0:
                    reason = "missing start_time_unix_nano"
                elif end == 0:
                    reason = "missing end_time_unix_nano"
                elif end < start:
                    reason = (
                        f"end before start: end_time_unix_nano {end} < start_time_unix_nano {start}"
                    )
                elif start < oldest_ns:
                    reason = f"start time too old: {_iso(start)} (clock unset or stale replay)"
                elif start > future_ns:
                    reason = f"start time in the future: {_iso(start)} (clock skew over {lim.max_future_secs:g}s)"
                elif accepted >= lim.max_items:
                    reason = f"over the {lim.max_items}-span limit of one request"
                if reason is not None:
                    rejected.append(Rejected(reason, _span_record(span, service)))
                    continue
                accepted += 1
                c_tid.append(tid.hex())
                c_sid.append(sid.hex())
                c_par.append(parent.hex() if parent and any(parent) else None)
                c_svc.append(service)
                c_name.append(span.name)
                c_kind.append(span.kind if 0 <= span.kind < 6 else 0)
                c_start.append(start)
                c_end.append(end)
                st = span.status
                c_st.append(st.code if 0 <= st.code < 3 else 0)
                c_msg.append(st.message or None)
                c_ts.append(span.trace_state or None)
                c_flags.append(span.flags or None)
                c_scope.append(scope_name)
                c_scopev.append(scope_version)
                c_attr.append(_kv_map(span.attributes))
                c_rattr.append(rmap)
                exc_type = exc_msg = None
                if span.events:
                    ev_list = []
                    for ev in span.events:
                        ea = _kv_map(ev.attributes)
                        if ev.name == "exception" and exc_type is None:
                            d = dict(ea)
                            exc_type = d.get("exception.type")
                            exc_msg = d.get("exception.message")
                        ev_list.append(
                            {
                                "time": _ts(ev.time_unix_nano) if ev.time_unix_nano else None,
                                "time_unix_nano": ev.time_unix_nano or None,
                                "name": ev.name,
                                "attributes": ea,
                            }
                        )
                    c_ev.append(ev_list)
                else:
                    c_ev.append([])
                c_ext.append(exc_type)
                c_exm.append(exc_msg)
                if span.links:
                    c_ln.append(
                        [
                            {
                                "trace_id": ln.trace_id.hex(),
                                "span_id": ln.span_id.hex(),
                                "trace_state": ln.trace_state or None,
                                "attributes": _kv_map(ln.attributes),
                            }
                            for ln in span.links
                        ]
                    )
                else:
                    c_ln.append([])
    raw = pa.Table.from_pydict(cols, schema=_RAW_SCHEMA)
    n = raw.num_rows
    start_ns = raw["start_time_unix_nano"]
    end_ns = raw["end_time_unix_nano"]
    start_ts = pc.cast(pc.cast(start_ns, pa.timestamp("ns", tz="UTC")), TS, safe=False)
    end_ts = pc.cast(pc.cast(end_ns, pa.timestamp("ns", tz="UTC")), TS, safe=False)
    dur_ns = pc.subtract(end_ns, start_ns)
    skew = pc.subtract(start_ns, now_ns)
    skew_ms = pc.if_else(
        pc.greater(skew, int(lim.skew_tolerance_secs * 1e9)),
        pc.divide(pc.cast(skew, pa.float64()), 1e6),
        pa.scalar(None, pa.float64()),
    )
    skewed = int(pc.sum(pc.is_valid(skew_ms)).as_py() or 0) if n else 0
    probs = [sampling_probability(ts) if ts else None for ts in cols["trace_state"]]
    prob = pa.array(probs, pa.float64())
    weight = pc.fill_null(pc.divide(1.0, prob), 1.0)
    attrs_col = raw["attributes"].combine_chunks() if n else pa.array([], MAP)
    rattrs_col = raw["resource_attributes"].combine_chunks() if n else pa.array([], MAP)
    kinds = (
        pa.array(KINDS).take(pc.cast(raw["kind_i"], pa.int32())) if n else pa.array([], pa.string())
    )
    status = (
        pa.array(STATUS).take(pc.cast(raw["status_i"], pa.int32()))
        if n
        else pa.array([], pa.string())
    )
    out: dict[str, Any] = {
        "event_time": start_ts,
        "event_id": pc.binary_join_element_wise(raw["trace_id"], raw["span_id"], ""),
        "source": pa.array(["otlp"] * n, pa.string()),
        "trace_id": raw["trace_id"],
        "span_id": raw["span_id"],
        "parent_span_id": raw["parent_span_id"],
        "service_name": raw["service_name"],
        "name": raw["name"],
        "kind": kinds,
        "start_time": start_ts,
        "end_time": end_ts,
        "start_time_unix_nano": start_ns,
        "end_time_unix_nano": end_ns,
        "duration_ns": dur_ns,
        "duration_ms": pc.divide(pc.cast(dur_ns, pa.float64()), 1e6),
        "status_code": status,
        "status_message": raw["status_message"],
        "trace_state": raw["trace_state"],
        "flags": raw["flags"],
        "sampling_probability": prob,
        "sampling_weight": weight,
        "scope_name": raw["scope_name"],
        "scope_version": raw["scope_version"],
        "attributes": attrs_col,
        "resource_attributes": rattrs_col,
        "events": raw["events"],
        "links": raw["links"],
        "exception_type": raw["exception_type"],
        "exception_message": raw["exception_message"],
    }
    promoted = _promote(attrs_col, PROMOTED)
    for col in PROMOTED:
        v = promoted[col]
        if col in _INT_PROMOTED:
            v = (
                pc.cast(
                    pc.if_else(
                        pc.match_substring_regex(v, r"^-?\d{1,18}$"),
                        v,
                        pa.scalar(None, pa.string()),
                    ),
                    pa.int64(),
                )
                if n
                else pa.array([], pa.int64())
            )
        out[col] = v
    out.update(_promote(rattrs_col, RESOURCE_PROMOTED))
    out["user"] = out["enduser.id"]
    out["src_ip"] = out["client.address"]
    out["clock_skew_ms"] = skew_ms
    out["raw"] = pa.array([None] * n, pa.string())
    out["ingested_at"] = pa.array([dt.datetime.now(dt.UTC)] * n, TS)
    table = pa.Table.from_pydict(out, schema=TRACE_SCHEMA)
    return Decoded(table, rejected, accepted, skewed)


def _iso(nanos: int) -> str:
    try:
        return _ts(nanos).isoformat().replace("+00:00", "Z")
    except (OverflowError, ValueError, OSError):
        return f"{nanos}ns"


def _span_record(span: Any, service: str) -> dict[str, Any]:
    """A rejected span as JSON-safe data for the dead-letter file (ids in hex)."""
    return {
        "service_name": service,
        "trace_id": span.trace_id.hex(),
        "span_id": span.span_id.hex(),
        "parent_span_id": span.parent_span_id.hex(),
        "name": span.name,
        "kind": int(span.kind),
        "start_time_unix_nano": str(span.start_time_unix_nano),
        "end_time_unix_nano": str(span.end_time_unix_nano),
        "attributes": {k: _text(v) for k, v in attrs(span.attributes).items()},
    }


def decode_traces(body: bytes, media: str, limits: Limits | None = None) -> Decoded:
    """Request body (already decompressed) → validated span rows."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    if media == JSON:
        msg, id_errors = parse_json_traces(body)
    else:
        msg, id_errors = parse_protobuf(body, ExportTraceServiceRequest), None
    return traces_to_table(msg, limits, id_errors)


# -- metrics --------------------------------------------------------------------------

_TEMPORALITY = ("UNSPECIFIED", "DELTA", "CUMULATIVE")


def _dp_key(*parts: Any) -> str:
    h = hashlib.blake2b(digest_size=16)
    for p in parts:
        h.update(orjson.dumps(p, option=orjson.OPT_NON_STR_KEYS | orjson.OPT_SORT_KEYS))
        h.update(b"\x00")
    return h.hexdigest()


def _exemplars(dp: Any) -> list[dict[str, Any]]:
    out = []
    for ex in dp.exemplars:
        which = ex.WhichOneof("value")
        out.append(
            {
                "time": _ts(ex.time_unix_nano) if ex.time_unix_nano else None,
                "value": float(ex.as_int if which == "as_int" else ex.as_double),
                "trace_id": ex.trace_id.hex() or None,
                "span_id": ex.span_id.hex() or None,
                "attributes": _map(attrs(ex.filtered_attributes)),
            }
        )
    return out


def metrics_to_table(msg: Any, limits: Limits | None = None) -> Decoded:
    """Validate every data point of an ``ExportMetricsServiceRequest`` → rows."""
    lim = limits or Limits()
    now_ns = time.time_ns()
    future_ns = now_ns + int(lim.max_future_secs * 1e9)
    oldest_ns = max(_MIN_NANOS, now_ns - int(lim.max_age_days * 86400e9))
    now = dt.datetime.now(dt.UTC)
    cols: dict[str, list[Any]] = {name: [] for name, _ in METRIC_FIELDS}
    rejected: list[Rejected] = []
    accepted = 0
    for rm in msg.resource_metrics:
        rattrs = attrs(rm.resource.attributes)
        service = _text(rattrs.get("service.name")) or "unknown_service"
        rmap = _map(rattrs)
        for sm in rm.scope_metrics:
            scope_name = sm.scope.name or None
            for m in sm.metrics:
                which = m.WhichOneof("data")
                if which is None:
                    rejected.append(Rejected("metric without data", {"name": m.name}))
                    continue
                data = getattr(m, which)
                for dp in data.data_points:
                    a = attrs(dp.attributes)
                    t = dp.time_unix_nano
                    reason = None
                    if not m.name:
                        reason = "missing metric name"
                    elif t == 0:
                        reason = "missing time_unix_nano"
                    elif t < oldest_ns:
                        reason = f"time too old: {_iso(t)}"
                    elif t > future_ns:
                        reason = f"time in the future: {_iso(t)}"
                    elif accepted >= lim.max_items:
                        reason = f"over the {lim.max_items}-data-point limit of one request"
                    if reason:
                        rejected.append(
                            Rejected(
                                reason,
                                {
                                    "name": m.name,
                                    "service_name": service,
                                    "time_unix_nano": str(t),
                                    "attributes": {k: _text(v) for k, v in a.items()},
                                },
                            )
                        )
                        continue
                    accepted += 1
                    row: dict[str, Any] = dict.fromkeys(cols)
                    mtype = which
                    if which == "sum":
                        mtype = "counter" if data.is_monotonic else "updowncounter"
                        row["is_monotonic"] = data.is_monotonic
                    if which in ("sum", "histogram", "exponential_histogram"):
                        row["temporality"] = _TEMPORALITY[data.aggregation_temporality % 3]
                    if which in ("gauge", "sum"):
                        v = dp.as_int if dp.WhichOneof("value") == "as_int" else dp.as_double
                        row["value"] = float(v)
                    elif which == "histogram":
                        row["count"] = dp.count
                        row["sum"] = dp.sum if dp.HasField("sum") else None
                        row["min"] = dp.min if dp.HasField("min") else None
                        row["max"] = dp.max if dp.HasField("max") else None
                        row["value"] = row["sum"] / dp.count if dp.count and row["sum"] else None
                        row["bucket_counts"] = list(dp.bucket_counts)
                        row["bucket_boundaries"] = list(dp.explicit_bounds)
                    elif which == "exponential_histogram":
                        row["count"] = dp.count
                        row["sum"] = dp.sum if dp.HasField("sum") else None
                        row["min"] = dp.min if dp.HasField("min") else None
                        row["max"] = dp.max if dp.HasField("max") else None
                        row["value"] = row["sum"] / dp.count if dp.count and row["sum"] else None
                        row["exp_scale"] = dp.scale
                        row["exp_zero_count"] = dp.zero_count
                        row["exp_positive_offset"] = dp.positive.offset
                        row["exp_positive_counts"] = list(dp.positive.bucket_counts)
                        row["exp_negative_offset"] = dp.negative.offset
                        row["exp_negative_counts"] = list(dp.negative.bucket_counts)
                    elif which == "summary":
                        row["count"] = dp.count
                        row["sum"] = dp.sum
                        row["value"] = dp.sum / dp.count if dp.count else None
                        row["quantiles"] = [
                            {"quantile": q.quantile, "value": q.value} for q in dp.quantile_values
                        ]
                    if which != "summary":
                        row["exemplars"] = _exemplars(dp)
                    ts = _ts(t)
                    row.update(
                        event_time=ts,
                        event_id=_dp_key(
                            rattrs, scope_name, m.name, which, a, dp.start_time_unix_nano, t
                        ),
                        source="otlp",
                        time=ts,
                        time_unix_nano=t,
                        start_time_unix_nano=dp.start_time_unix_nano or None,
                        name=m.name,
                        description=m.description or None,
                        unit=m.unit or None,
                        type=mtype,
                        service_name=service,
                        attributes=_map(a),
                        resource_attributes=rmap,
                        scope_name=scope_name,
                        flags=dp.flags or None,
                        raw=None,
                        ingested_at=now,
                    )
                    for k, v in row.items():
                        cols[k].append(v)
    table = pa.Table.from_pydict(cols, schema=METRIC_SCHEMA)
    return Decoded(table, rejected, accepted)


def decode_metrics(body: bytes, media: str, limits: Limits | None = None) -> Decoded:
    from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
        ExportMetricsServiceRequest,
    )

    if media == JSON:
        msg = parse_json_metrics(body)
    else:
        msg = parse_protobuf(body, ExportMetricsServiceRequest)
    return metrics_to_table(msg, limits)


# -- responses ------------------------------------------------------------------------


def export_response(signal: str, media: str, rejected: int, message: str) -> bytes:
    """``Export{Trace,Metrics}ServiceResponse`` in the request's encoding."""
    from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
    from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

    if signal == "traces":
        resp: Any = trace_service_pb2.ExportTraceServiceResponse()
        if rejected or message:
            resp.partial_success.rejected_spans = rejected
            resp.partial_success.error_message = message
    else:
        resp = metrics_service_pb2.ExportMetricsServiceResponse()
        if rejected or message:
            resp.partial_success.rejected_data_points = rejected
            resp.partial_success.error_message = message
    if media == PROTOBUF:
        return resp.SerializeToString()
    body: dict[str, Any] = {}
    if rejected or message:
        key = "rejectedSpans" if signal == "traces" else "rejectedDataPoints"
        # int64 is a string in proto3 JSON; OTLP receivers accept both, exporters parse both
        body["partialSuccess"] = {key: str(rejected), "errorMessage": message}
    return orjson.dumps(body)


# google.rpc.Code values (https://github.com/googleapis/googleapis/blob/master/google/rpc/code.proto)
_RPC_CODE = {400: 3, 401: 16, 403: 7, 404: 5, 413: 3, 415: 3, 429: 8, 500: 13, 503: 14}


def status_body(http_status: int, message: str, media: str | None, extra: Any = None) -> bytes:
    """A ``google.rpc.Status`` error body in the request's encoding (JSON by default).

    The JSON form also carries the API's ``{"error": {...}}`` shape: OTLP clients
    ignore the unknown field, API clients find their usual error object.
    """
    code = _RPC_CODE.get(http_status, 2)
    if media == PROTOBUF:
        from google.rpc import status_pb2

        return status_pb2.Status(code=code, message=message).SerializeToString()
    body: dict[str, Any] = {"code": code, "message": message, "details": []}
    if extra is not None:
        body["error"] = extra
    return orjson.dumps(body)
