"""The service map: who calls whom, how often, how slow, how often failing.

* A **service edge** is a parent → child span pair of one trace whose services differ
  (exact: a self-join on ``(trace_id, parent_span_id) = (trace_id, span_id)``); its
  latency and errors are the callee's span.
* A **virtual node** stands for what is not instrumented: a CLIENT/PRODUCER span with
  ``db.system`` (database), ``messaging.system`` (queue) or ``peer.service`` (peer) and
  no instrumented child in another service becomes an edge to that node.

Edges carry the issue's ``{source, target, calls, errors, p99_ms}`` and the module
reference's ``call_count`` / ``avg_latency_ms`` / ``error_rate``; nodes carry
``request_count`` / ``avg_latency_ms`` / ``error_rate``. Results are cached for
``apm.service_map_cache_secs`` (5 minutes) per window rounded to the minute, and the
cache is dropped when the files under the window change.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from mantissa.apm import lake, rollup
from mantissa.apm.queries import Window, _rows, spans_session

# one scan of the window's files into a temp table; both queries below read it
_SPANS = """
CREATE TEMP TABLE s AS
SELECT trace_id, span_id, parent_span_id, service_name, kind, status_code, duration_ms,
       sampling_weight, "db.system", "db.namespace", "messaging.system",
       "messaging.destination.name", "peer.service"
FROM spans
"""

_EDGES = """
WITH pairs AS MATERIALIZED (
  SELECT p.service_name AS source, c.service_name AS target, c.trace_id,
         c.parent_span_id, c.status_code, c.duration_ms, c.sampling_weight
  FROM s c JOIN s p ON c.trace_id = p.trace_id AND c.parent_span_id = p.span_id
  WHERE c.service_name <> p.service_name
),
calls AS (
  SELECT source, target, 'service' AS target_type, status_code, duration_ms, sampling_weight
  FROM pairs
),
callee AS (SELECT DISTINCT trace_id, parent_span_id AS span_id FROM pairs),
virt AS (
  SELECT s.service_name AS source,
         CASE WHEN s."peer.service" IS NOT NULL THEN s."peer.service"
              WHEN s."db.system" IS NOT NULL THEN s."db.system" || coalesce('/' || s."db.namespace", '')
              ELSE s."messaging.system" || coalesce('/' || s."messaging.destination.name", '') END
           AS target,
         CASE WHEN s."db.system" IS NOT NULL THEN 'database'
              WHEN s."messaging.system" IS NOT NULL THEN 'queue' ELSE 'peer' END AS target_type,
         s.status_code, s.duration_ms, s.sampling_weight
  FROM s ANTI JOIN callee k ON k.trace_id = s.trace_id AND k.span_id = s.span_id
  WHERE s.kind IN ('CLIENT', 'PRODUCER')
    AND (s."db.system" IS NOT NULL OR s."messaging.system" IS NOT NULL OR s."peer.service" IS NOT NULL)
),
allc AS (SELECT * FROM calls UNION ALL SELECT * FROM virt)
SELECT source, target, any_value(target_type) AS target_type,
       count(*) AS calls,
       count(*) FILTER (WHERE status_code = 'ERROR') AS errors,
       sum(sampling_weight) AS w_calls,
       coalesce(sum(sampling_weight) FILTER (WHERE status_code = 'ERROR'), 0) AS w_errors,
       bool_or(sampling_weight <> 1.0) AS estimate,
       quantile_cont(duration_ms, 0.99) AS p99_ms,
       avg(duration_ms) AS avg_ms
FROM allc GROUP BY source, target ORDER BY source, target
"""

_NODES = """
WITH e AS (
  SELECT s.*, (s.kind IN ('SERVER', 'CONSUMER') OR s.parent_span_id IS NULL
               OR p.service_name IS NULL OR p.service_name <> s.service_name) AS entry
  FROM s LEFT JOIN (SELECT trace_id, span_id, service_name FROM s) p
    ON p.trace_id = s.trace_id AND p.span_id = s.parent_span_id
)
SELECT service_name AS id, count(*) AS spans,
       count(*) FILTER (WHERE status_code = 'ERROR') AS errors,
       count(*) FILTER (WHERE entry) AS requests,
       count(*) FILTER (WHERE entry AND status_code = 'ERROR') AS request_errors,
       avg(duration_ms) FILTER (WHERE entry) AS avg_ms,
       quantile_cont(duration_ms, 0.99) FILTER (WHERE entry) AS p99_ms,
       bool_or(sampling_weight <> 1.0) AS estimate
FROM e GROUP BY 1 ORDER BY 1
"""


def _r(v: Any) -> float | None:
    return None if v is None else round(float(v), 3)


def _from_rollup(
    storage: Any, window: Window, max_lag_secs: float = 0.0
) -> tuple[list[Any], list[Any]] | None:
    got = rollup.map_rows(storage, window, max_lag_secs)
    if got is None:
        return None
    edges, node_rows = got
    nodes = [
        {
            "id": r["service"],
            "spans": r["sampled_spans"],
            "errors": r["sampled_errors"],
            "requests": r["entry_spans"],
            "request_errors": r["request_errors"],
            "avg_ms": r["entry_avg"],
            "p99_ms": r["entry_p99"],
            "estimate": r["estimate"],
        }
        for r in node_rows
    ]
    return edges, nodes


def compute(
    storage: Any,
    window: Window,
    service: str | None = None,
    rollup_ok: bool = True,
    max_lag_secs: float = 0.0,
) -> dict[str, Any]:
    """The map of ``window`` (uncached): from the per-minute rollups when the window is
    on whole minutes, else from the raw spans (same figures)."""
    got = (
        _from_rollup(storage, window, max_lag_secs)
        if rollup_ok and rollup.aligned(window)
        else None
    )
    if got is not None:
        edges_raw, nodes_raw = got
    else:
        con = spans_session(storage, window)
        if con is None:
            return {"nodes": [], "edges": [], "window": window.to_dict()}
        try:
            con.execute(_SPANS)
            edges_raw = _rows(con, _EDGES)
            nodes_raw = _rows(con, _NODES)
        finally:
            con.close()
    edges = []
    for e in edges_raw:
        est = bool(e["estimate"])
        calls = round(e["w_calls"]) if est else e["calls"]
        errors = round(e["w_errors"]) if est else e["errors"]
        edges.append(
            {
                "source": e["source"],
                "target": e["target"],
                "calls": int(calls),
                "errors": int(errors),
                "p99_ms": _r(e["p99_ms"]),
                "call_count": int(calls),
                "avg_latency_ms": _r(e["avg_ms"]),
                "error_rate": round(errors / calls, 6) if calls else 0.0,
                "virtual": e["target_type"] != "service",
                "target_type": e["target_type"],
                "estimate": est,
            }
        )
    nodes: dict[str, dict[str, Any]] = {}
    for n in nodes_raw:
        req = int(n["requests"])
        nodes[n["id"]] = {
            "id": n["id"],
            "service_name": n["id"],
            "type": "service",
            "virtual": False,
            "request_count": req,
            "span_count": int(n["spans"]),
            "error_count": int(n["request_errors"]),
            "avg_latency_ms": _r(n["avg_ms"]),
            "p99_ms": _r(n["p99_ms"]),
            "error_rate": round(n["request_errors"] / req, 6) if req else 0.0,
            "estimate": bool(n["estimate"]),
        }
    for e in edges:
        if e["virtual"] and e["target"] not in nodes:
            nodes[e["target"]] = {
                "id": e["target"],
                "service_name": e["target"],
                "type": e["target_type"],
                "virtual": True,
                "request_count": 0,
                "span_count": 0,
                "error_count": 0,
                "avg_latency_ms": None,
                "p99_ms": None,
                "error_rate": 0.0,
                "estimate": False,
                "_lat": [],
            }
        if e["virtual"]:
            v = nodes[e["target"]]
            v["request_count"] += e["calls"]
            v["error_count"] += e["errors"]
            v["_lat"].append((e["avg_latency_ms"] or 0.0, e["calls"]))
    for v in nodes.values():
        lat = v.pop("_lat", None)
        if lat is not None:
            total = sum(c for _, c in lat)
            v["avg_latency_ms"] = round(sum(a * c for a, c in lat) / total, 3) if total else None
            v["error_rate"] = round(v["error_count"] / total, 6) if total else 0.0
            v["p99_ms"] = max(
                (e["p99_ms"] or 0.0 for e in edges if e["target"] == v["id"]), default=None
            )
    if service:
        edges = [e for e in edges if service in (e["source"], e["target"])]
        keep = {service} | {e["source"] for e in edges} | {e["target"] for e in edges}
        nodes = {k: v for k, v in nodes.items() if k in keep}
    return {"nodes": list(nodes.values()), "edges": edges, "window": window.to_dict()}


class ServiceMapCache:
    """Maps per (window rounded to the minute, service), kept ``ttl`` seconds and
    dropped as soon as the window's files change (a flush or a compaction)."""

    def __init__(self, ttl: float = 300.0) -> None:
        self.ttl = ttl
        self.lock = threading.Lock()
        self.entries: dict[tuple[Any, ...], tuple[float, tuple[Any, ...], dict[str, Any]]] = {}

    def get(
        self,
        storage: Any,
        window: Window,
        service: str | None = None,
        max_lag_secs: float = 0.0,
    ) -> dict[str, Any]:
        lo = window.since.replace(second=0, microsecond=0) if window.since else None
        hi = window.until.replace(second=0, microsecond=0) if window.until else None
        key = (str(storage.uri()), lo, hi, service)
        sig = _signature(storage, window)
        now = time.monotonic()
        # a map of the live hour may come from a rollup up to max_lag_secs old: keep it
        # no longer than that, so the spans it misses show up within that lag
        ttl = min(self.ttl, max_lag_secs) if max_lag_secs > 0 and hi is None else self.ttl
        with self.lock:
            hit = self.entries.get(key)
            if hit and now - hit[0] < ttl and hit[1] == sig:
                return {**hit[2], "cached": True}
        result = compute(
            storage, Window(lo, hi) if lo else window, service, max_lag_secs=max_lag_secs
        )
        with self.lock:
            if len(self.entries) > 256:
                self.entries.clear()
            self.entries[key] = (now, sig, result)
        return {**result, "cached": False}


def _signature(storage: Any, window: Window) -> tuple[Any, ...]:
    files = []
    for o in storage.list(lake.TRACES, ".parquet"):
        files.append((o.key, o.size))
    return (len(files), hash(tuple(sorted(files))))


CACHE = ServiceMapCache()


def service_map(
    storage: Any,
    window: Window,
    service: str | None = None,
    cache: bool = True,
    rollup: bool = True,
    max_lag_secs: float = 0.0,
) -> dict[str, Any]:
    """The service map of ``window`` (cached 5 minutes unless ``cache`` is false; from the
    per-minute rollups unless ``rollup`` is false; see :func:`mantissa.apm.rollup.ensure`
    for ``max_lag_secs``)."""
    if not cache or not rollup:
        return {
            **compute(storage, window, service, rollup_ok=rollup, max_lag_secs=max_lag_secs),
            "cached": False,
        }
    return CACHE.get(storage, window, service, max_lag_secs)
