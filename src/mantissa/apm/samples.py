"""Sample spans for APM rule tests (``mantissa rules test``), through the real decoder.

A ``<rule>.samples.yml`` of an APM rule says ``source: otlp_traces`` (or
``otlp_metrics``) and lists spans in a compact form::

    source: otlp_traces
    match:
      - service: payment
        name: POST /charge
        kind: SERVER            # INTERNAL, SERVER, CLIENT, PRODUCER, CONSUMER
        status: ERROR           # UNSET, OK, ERROR (+ status_message)
        duration_ms: 120
        at: -30                 # seconds before the anchor (default: one second apart)
        trace: t1               # labels; ids are derived from them
        span: s2
        parent: s1
        attributes: {http.route: /charge, http.response.status_code: 503}
        exception: [CardProcessorTimeout, stripe did not answer]

Each list becomes one ``ExportTraceServiceRequest`` (protobuf), decoded and validated
by :mod:`mantissa.apm.otlp` and written to the ``traces`` table of a private lake.
Metrics samples: ``{service, name, type: gauge|counter, value, unit, attributes, at}``.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mantissa.apm import otlp

_KIND = {k: i for i, k in enumerate(otlp.KINDS)}
_STATUS = {k: i for i, k in enumerate(otlp.STATUS)}


def anchor_ns() -> int:
    """The instant samples are placed before: half past the previous hour, so a sample
    set of up to five minutes never straddles a rule's aligned 5/10/15-minute window
    (``at`` offsets are seconds before it)."""
    now = time.time()
    return int((now // 3600 * 3600 - 1800) * 1e9)


def _id(label: str, size: int) -> bytes:
    return hashlib.sha256(label.encode()).digest()[:size]


def _set_attr(kv: Any, key: str, value: Any) -> None:
    kv.key = key
    if isinstance(value, bool):
        kv.value.bool_value = value
    elif isinstance(value, int):
        kv.value.int_value = value
    elif isinstance(value, float):
        kv.value.double_value = value
    else:
        kv.value.string_value = str(value)


def trace_request(spans: list[dict[str, Any]], now_ns: int | None = None) -> Any:
    """Compact span dicts → ``ExportTraceServiceRequest``."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    now_ns = now_ns or anchor_ns()
    req = ExportTraceServiceRequest()
    scopes: dict[str, Any] = {}
    n = len(spans)
    for i, s in enumerate(spans):
        service = str(s.get("service", "sample-service"))
        if service not in scopes:
            rs = req.resource_spans.add()
            _set_attr(rs.resource.attributes.add(), "service.name", service)
            for k, v in (s.get("resource") or {}).items():
                _set_attr(rs.resource.attributes.add(), k, v)
            scopes[service] = rs.scope_spans.add()
        sp = scopes[service].spans.add()
        trace = str(s.get("trace", f"trace-{i}"))
        sp.trace_id = _id(trace, 16)
        sp.span_id = _id(f"{trace}/{s.get('span', f'span-{i}')}", 8)
        if s.get("parent"):
            sp.parent_span_id = _id(f"{trace}/{s['parent']}", 8)
        sp.name = str(s.get("name", "operation"))
        sp.kind = _KIND[str(s.get("kind", "SERVER")).upper()]
        at = float(s.get("at", i - n))
        start = now_ns + int(at * 1e9)
        sp.start_time_unix_nano = start
        sp.end_time_unix_nano = start + int(float(s.get("duration_ms", 10)) * 1e6)
        sp.status.code = _STATUS[str(s.get("status", "UNSET")).upper()]
        if s.get("status_message"):
            sp.status.message = str(s["status_message"])
        for k, v in (s.get("attributes") or {}).items():
            _set_attr(sp.attributes.add(), k, v)
        if s.get("exception"):
            ev = sp.events.add()
            ev.name = "exception"
            ev.time_unix_nano = sp.end_time_unix_nano
            etype, emsg = ([*list(s["exception"]), ""])[:2]
            _set_attr(ev.attributes.add(), "exception.type", etype)
            _set_attr(ev.attributes.add(), "exception.message", emsg)
    return req


def metrics_request(points: list[dict[str, Any]], now_ns: int | None = None) -> Any:
    from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
        ExportMetricsServiceRequest,
    )

    now_ns = now_ns or anchor_ns()
    req = ExportMetricsServiceRequest()
    n = len(points)
    for i, p in enumerate(points):
        rm = req.resource_metrics.add()
        _set_attr(rm.resource.attributes.add(), "service.name", str(p.get("service", "svc")))
        m = rm.scope_metrics.add().metrics.add()
        m.name = str(p.get("name", "metric"))
        m.unit = str(p.get("unit", ""))
        kind = str(p.get("type", "gauge"))
        if kind == "gauge":
            dp = m.gauge.data_points.add()
        else:
            m.sum.is_monotonic = kind == "counter"
            m.sum.aggregation_temporality = 1
            dp = m.sum.data_points.add()
        dp.time_unix_nano = now_ns + int(float(p.get("at", i - n)) * 1e9)
        dp.as_double = float(p.get("value", 0))
        for k, v in (p.get("attributes") or {}).items():
            _set_attr(dp.attributes.add(), k, v)
    return req


@dataclass
class SampleSummary:
    events: int
    rejected: int


def ingest_samples(events: list[Any], source: str, root: Path) -> tuple[Any, SampleSummary | None]:
    """Write sample spans (or data points) to a private lake under ``root``; returns an
    engine over it and what was ingested (the contract of ``detect.samples._ingest``)."""
    from mantissa.apm import lake
    from mantissa.engines.duckdb import DuckDBEngine
    from mantissa.lake.storage import open_storage

    root.mkdir(parents=True, exist_ok=True)
    storage = open_storage(None, root / "lake")
    engine = DuckDBEngine(storage, timeout_secs=60, max_rows=1_000_000)
    if not events:
        return engine, None
    if source == "otlp_metrics":
        dec = otlp.metrics_to_table(metrics_request(list(events)))
        table = lake.METRICS
    else:
        dec = otlp.traces_to_table(trace_request(list(events)))
        table = lake.TRACES
    if dec.table.num_rows:
        lake.write_table(storage, table, dec.table)
    return engine, SampleSummary(events=dec.accepted, rejected=len(dec.rejected))
