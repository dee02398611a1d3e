"""APM questions over the ``traces`` table: RED per service and operation, a trace by
id, span search.

Queries run in a private DuckDB session over exactly the hour partitions of the window
(the SQL is ours, user values are bound parameters). Where spans carry their sampling
probability (OTel ``th`` in ``tracestate``), span and error counts are weighted by
``1/p`` and flagged ``"estimate": true``; unsampled data gives exact counts.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from dataclasses import dataclass
from typing import Any

from mantissa.apm import lake
from mantissa.errors import MantissaError, NotFound

log = logging.getLogger(__name__)

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ns|us|µs|ms|s|sec|m|min|h|d|w)?\s*$", re.I)
_UNITS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "sec": 1.0,
    "m": 60.0,
    "min": 60.0,
    "h": 3600.0,
    "d": 86400.0,
    "w": 604800.0,
}
TRACE_ID = re.compile(r"^[0-9a-fA-F]{32}$")


class ApmQueryError(MantissaError):
    code = "apm_query_error"
    http_status = 400


def parse_seconds(text: str | float | int, default_unit: str = "s") -> float:
    """``"1h"`` → 3600, ``"500ms"`` → 0.5, ``90`` → 90 (in ``default_unit``)."""
    if isinstance(text, int | float):
        return float(text) * _UNITS[default_unit]
    m = _DURATION.match(text or "")
    if not m:
        raise ApmQueryError(f"not a duration: {text!r}", hint="e.g. 500ms, 30s, 15m, 1h, 7d")
    return float(m.group(1)) * _UNITS[(m.group(2) or default_unit).lower()]


def parse_time(text: str) -> dt.datetime:
    t = text.strip()
    if t.endswith("Z"):
        t = t[:-1] + "+00:00"
    try:
        v = dt.datetime.fromisoformat(t)
    except ValueError:
        raise ApmQueryError(
            f"not a time: {text!r}", hint="ISO 8601, e.g. 2026-11-28T10:00Z"
        ) from None
    return v if v.tzinfo else v.replace(tzinfo=dt.UTC)


@dataclass
class Window:
    since: dt.datetime | None
    until: dt.datetime | None

    @classmethod
    def parse(
        cls, since: str | None = "1h", until: str | None = None, now: dt.datetime | None = None
    ) -> Window:
        now = now or dt.datetime.now(dt.UTC)
        lo = hi = None
        if since:
            lo = (
                parse_time(since)
                if re.match(r"^\d{4}-", since)
                else _minute(now - dt.timedelta(seconds=parse_seconds(since)))
            )
        if until:
            hi = (
                parse_time(until)
                if re.match(r"^\d{4}-", until)
                else _minute(now - dt.timedelta(seconds=parse_seconds(until)))
            )
        return cls(lo, hi)

    def to_dict(self) -> dict[str, str | None]:
        return {
            "since": _iso(self.since),
            "until": _iso(self.until),
        }


def _minute(t: dt.datetime) -> dt.datetime:
    """Relative windows (``--since 1h``) start on a whole minute: the per-minute rollups
    answer them exactly."""
    return t.replace(second=0, microsecond=0)


def _iso(v: dt.datetime | None) -> str | None:
    return v.isoformat().replace("+00:00", "Z") if v else None


def _lit(v: dt.datetime) -> str:
    return f"TIMESTAMPTZ '{v.astimezone(dt.UTC).isoformat()}'"


def _files_sql(files: list[str]) -> str:
    return "[" + ", ".join("'" + f.replace("'", "''") + "'" for f in files) + "]"


def spans_session(storage: Any, window: Window, files: list[str] | None = None) -> Any:
    """A DuckDB session with view ``spans`` = the traces of ``window`` (None when empty)."""
    files = (
        files
        if files is not None
        else lake.files_between(storage, lake.TRACES, window.since, window.until)
    )
    if not files:
        return None
    con = lake.connection()
    conds = []
    if window.since:
        conds.append(f"start_time >= {_lit(window.since)}")
    if window.until:
        conds.append(f"start_time < {_lit(window.until)}")
    where = f"WHERE {' AND '.join(conds)}" if conds else ""
    con.execute(
        f"CREATE TEMP VIEW spans AS SELECT * EXCLUDE (year, month, day, hour) FROM "
        f"read_parquet({_files_sql(files)}, hive_partitioning=true, union_by_name=true) {where}"
    )
    return con


def _rows(con: Any, sql: str, params: list[Any] | None = None) -> list[dict[str, Any]]:
    cur = con.execute(sql, params or [])
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]


# the parent side of the join only needs spans that are somebody's parent
_ENTRY = """
    WITH s AS MATERIALIZED (
      SELECT trace_id, span_id, parent_span_id, service_name, name, kind, status_code,
             duration_ms, sampling_weight FROM spans {filter}),
    p AS MATERIALIZED (
      SELECT trace_id, span_id, service_name FROM spans
      WHERE (trace_id, span_id) IN (SELECT (trace_id, parent_span_id) FROM s)),
    e AS (
      SELECT s.*, (s.kind IN ('SERVER', 'CONSUMER') OR s.parent_span_id IS NULL
                   OR p.service_name IS NULL OR p.service_name <> s.service_name) AS entry
      FROM s LEFT JOIN p ON p.trace_id = s.trace_id AND p.span_id = s.parent_span_id
    )
"""

_RED = """
    count(*) AS sampled_spans,
    count(*) FILTER (WHERE status_code = 'ERROR') AS sampled_errors,
    sum(sampling_weight) AS w_spans,
    coalesce(sum(sampling_weight) FILTER (WHERE status_code = 'ERROR'), 0) AS w_errors,
    bool_or(sampling_weight <> 1.0) AS estimate,
    count(*) FILTER (WHERE entry) AS entry_spans,
    coalesce(quantile_cont(duration_ms, 0.5) FILTER (WHERE entry), quantile_cont(duration_ms, 0.5)) AS p50_ms,
    coalesce(quantile_cont(duration_ms, 0.95) FILTER (WHERE entry), quantile_cont(duration_ms, 0.95)) AS p95_ms,
    coalesce(quantile_cont(duration_ms, 0.99) FILTER (WHERE entry), quantile_cont(duration_ms, 0.99)) AS p99_ms,
    coalesce(avg(duration_ms) FILTER (WHERE entry), avg(duration_ms)) AS avg_ms,
    max(duration_ms) AS max_ms
"""


_RED_KEYS = {
    "service", "sampled_spans", "sampled_errors", "w_spans", "w_errors", "estimate",
    "entry_spans", "p50_ms", "p95_ms", "p99_ms", "avg_ms", "max_ms",
}  # fmt: skip


def _red_row(r: dict[str, Any], minutes: float | None) -> dict[str, Any]:
    est = bool(r.pop("estimate"))
    w_spans, w_errors = r.pop("w_spans"), r.pop("w_errors")
    spans = round(w_spans) if est else r["sampled_spans"]
    errors = round(w_errors) if est else r["sampled_errors"]
    out = {
        **{k: v for k, v in r.items() if k in ("service", "operation")},
        "spans": int(spans),
        "errors": int(errors),
        "p50_ms": _round(r["p50_ms"]),
        "p99_ms": _round(r["p99_ms"]),
        "p95_ms": _round(r["p95_ms"]),
        "avg_ms": _round(r["avg_ms"]),
        "max_ms": _round(r["max_ms"]),
        "error_rate": round(errors / spans, 6) if spans else 0.0,
        "entry_spans": int(r["entry_spans"]),
        "rate_per_min": round(spans / minutes, 3) if minutes else None,
        "estimate": est,
    }
    if est:
        out["sampled_spans"] = int(r["sampled_spans"])
        out["sampled_errors"] = int(r["sampled_errors"])
    return out


def _round(v: Any) -> float | None:
    return None if v is None else round(float(v), 3)


def _minutes(window: Window) -> float | None:
    if window.since is None:
        return None
    hi = window.until or dt.datetime.now(dt.UTC)
    return max((hi - window.since).total_seconds() / 60.0, 1e-9)


def services(
    storage: Any,
    window: Window,
    service: str | None = None,
    rollup: bool = True,
    max_lag_secs: float = 0.0,
) -> list[dict[str, Any]]:
    """RED per service: all spans and error spans; percentiles over entry spans.

    Windows on whole minutes are answered from the per-minute rollups
    (:mod:`mantissa.apm.rollup`, same figures), others from the raw spans."""
    from mantissa.apm import rollup as rollups

    if rollup and rollups.aligned(window):
        got = rollups.node_rows(storage, window, service, max_lag_secs)
        minutes = _minutes(window)
        return [
            _red_row({k: v for k, v in r.items() if k in _RED_KEYS}, minutes) for r in got or []
        ]
    con = spans_session(storage, window)
    if con is None:
        return []
    try:
        flt, params = ("WHERE service_name = ?", [service]) if service else ("", [])
        rows = _rows(
            con,
            _ENTRY.format(filter=flt)
            + f"SELECT service_name AS service, {_RED} FROM e GROUP BY 1 ORDER BY 1",
            params,
        )
    finally:
        con.close()
    minutes = _minutes(window)
    return [_red_row(r, minutes) for r in rows]


def operations(storage: Any, window: Window, service: str) -> list[dict[str, Any]]:
    """RED per operation (span name) of one service."""
    con = spans_session(storage, window)
    if con is None:
        return []
    try:
        rows = _rows(
            con,
            _ENTRY.format(filter="WHERE service_name = ?")
            + f"SELECT service_name AS service, name AS operation, {_RED} FROM e "
            "GROUP BY 1, 2 ORDER BY sampled_spans DESC, 2",
            [service],
        )
    finally:
        con.close()
    minutes = _minutes(window)
    return [_red_row(r, minutes) for r in rows]


SPAN_COLUMNS = (
    "trace_id, span_id, parent_span_id, service_name, name, kind, start_time, end_time, "
    "start_time_unix_nano, end_time_unix_nano, duration_ms, status_code, status_message, "
    "attributes, resource_attributes, events, links, exception_type, exception_message, "
    '"http.route", "http.request.method", "http.response.status_code", "db.system", '
    '"db.query.text", "messaging.system", "peer.service", clock_skew_ms, sampling_weight'
)


def trace(storage: Any, trace_id: str) -> dict[str, Any]:
    """Every span of one trace, as a tree (children under parents; orphans at the top).

    Found through the trace-id index without a time hint; falls back to a full scan
    (with row-group pruning on the sorted ``trace_id``) for files written before it.
    """
    if not TRACE_ID.match(trace_id or ""):
        raise ApmQueryError(
            f"not a trace id: {trace_id!r}", hint="a trace id is 32 hexadecimal characters"
        )
    tid = trace_id.lower()
    con = lake.connection()
    try:
        files = lake.trace_files(storage, con, tid)
        if files is None:
            files = lake.all_files(storage, lake.TRACES)
        if not files:
            raise NotFound(f"trace {tid} not found")
        spans = _rows(
            con,
            f"SELECT {SPAN_COLUMNS} FROM read_parquet({_files_sql(files)}, union_by_name=true) "
            "WHERE trace_id = ? QUALIFY row_number() OVER (PARTITION BY span_id ORDER BY start_time) = 1 "
            "ORDER BY start_time_unix_nano, span_id",
            [tid],
        )
    finally:
        con.close()
    if not spans:
        raise NotFound(f"trace {tid} not found")
    return build_tree(tid, spans)


def trace_logs(runtime: Any, tree: dict[str, Any], limit: int = 200) -> list[dict[str, Any]]:
    """Log lines carrying the trace's id (the ``events`` view's ``trace_id``), from an
    hour before the trace to an hour after it: what the waterfall lists under the spans."""
    start = tree["start_time"]
    if not isinstance(start, dt.datetime):
        return []
    lo = (start - dt.timedelta(hours=1)).isoformat()
    hi = (start + dt.timedelta(hours=1, milliseconds=tree["duration_ms"])).isoformat()
    tid = tree["trace_id"]
    if not TRACE_ID.match(tid):
        return []
    sql = (
        "SELECT event_time, source, host, event_type, outcome, message FROM events "
        f"WHERE trace_id = '{tid.lower()}' AND event_time >= TIMESTAMPTZ '{lo}' "
        f"AND event_time < TIMESTAMPTZ '{hi}' ORDER BY event_time LIMIT {int(limit)}"
    )
    if "events" not in runtime.engine.tables():
        return []  # no log table in the lake yet: nothing can carry the trace id
    try:
        res = runtime.engine.execute(sql)
    except MantissaError as exc:
        # the waterfall still shows the spans; the reason is logged, not swallowed
        log.warning("log lines of trace %s could not be read: %s", tid, exc)
        return []
    return [dict(zip(res.columns, r, strict=True)) for r in res.rows]


def _jsonable_span(s: dict[str, Any]) -> dict[str, Any]:
    out = dict(s)
    for k in ("attributes", "resource_attributes"):
        out[k] = dict(out[k]) if out.get(k) is not None else {}
    for ev in out.get("events") or []:
        ev["attributes"] = dict(ev["attributes"]) if ev.get("attributes") is not None else {}
    for ln in out.get("links") or []:
        ln["attributes"] = dict(ln["attributes"]) if ln.get("attributes") is not None else {}
    return out


def build_tree(trace_id: str, spans: list[dict[str, Any]]) -> dict[str, Any]:
    """Nest spans under their parents. A span whose parent is missing from the trace is
    kept as a root and marked ``"orphan": true`` (never dropped)."""
    by_id = {s["span_id"]: _jsonable_span(s) for s in spans}
    start = min(s["start_time_unix_nano"] for s in spans)
    end = max(s["end_time_unix_nano"] for s in spans)
    roots: list[dict[str, Any]] = []
    for s in by_id.values():
        s["children"] = []
        s["offset_ms"] = round((s["start_time_unix_nano"] - start) / 1e6, 3)
    for s in by_id.values():
        parent = s.get("parent_span_id")
        if parent and parent in by_id and parent != s["span_id"]:
            by_id[parent]["children"].append(s)
            s["orphan"] = False
        else:
            s["orphan"] = bool(parent)
            roots.append(s)
    # depth-first order, each level by start time; guard against cycles
    seen: set[str] = set()

    def depth(node: dict[str, Any], d: int) -> None:
        seen.add(node["span_id"])
        node["depth"] = d
        node["children"] = [c for c in node["children"] if c["span_id"] not in seen]
        node["children"].sort(key=lambda c: c["start_time_unix_nano"])
        for c in node["children"]:
            depth(c, d + 1)

    roots.sort(key=lambda c: c["start_time_unix_nano"])
    for r in roots:
        depth(r, 0)
    cyclic = [s for s in by_id.values() if s["span_id"] not in seen]
    for s in cyclic:
        s["orphan"] = True
        s["children"] = []
        s["depth"] = 0
        roots.append(s)
    services = sorted({s["service_name"] for s in by_id.values()})
    return {
        "trace_id": trace_id,
        "span_count": len(by_id),
        "services": services,
        "start_time": min(s["start_time"] for s in spans),
        "duration_ms": round((end - start) / 1e6, 3),
        "errors": sum(1 for s in by_id.values() if s["status_code"] == "ERROR"),
        "orphans": sum(1 for s in by_id.values() if s["orphan"]),
        "roots": roots,
    }


def flatten(tree: dict[str, Any]) -> list[dict[str, Any]]:
    """The tree's spans in waterfall order (parents before children)."""
    out: list[dict[str, Any]] = []

    def walk(n: dict[str, Any]) -> None:
        out.append(n)
        for c in n["children"]:
            walk(c)

    for r in tree["roots"]:
        walk(r)
    return out


STATUS_WORDS = {"error": "ERROR", "ok": "OK", "unset": "UNSET"}


def search(
    storage: Any,
    window: Window,
    *,
    service: str | None = None,
    operation: str | None = None,
    status: str | None = None,
    kind: str | None = None,
    min_duration_ms: float | None = None,
    max_duration_ms: float | None = None,
    attrs: list[tuple[str, str]] | None = None,
    trace_id: str | None = None,
    roots_only: bool = False,
    sort: str = "-duration_ms",
    limit: int = 50,
) -> list[dict[str, Any]]:
    """Spans matching every filter; ``attrs`` are ``(key, value)`` on promoted columns
    or ``attributes``/``resource_attributes`` (exact, ``*`` wildcards allowed)."""
    con = spans_session(storage, window)
    if con is None:
        return []
    try:
        conds: list[str] = []
        params: list[Any] = []
        if service:
            conds.append("service_name = ?")
            params.append(service)
        if operation:
            conds.append("name = ?")
            params.append(operation)
        if status:
            code = STATUS_WORDS.get(status.lower())
            if code is None:
                raise ApmQueryError(f"unknown status {status!r}", hint="error, ok or unset")
            conds.append("status_code = ?")
            params.append(code)
        if kind:
            conds.append("kind = ?")
            params.append(kind.upper())
        if min_duration_ms is not None:
            conds.append("duration_ms >= ?")
            params.append(float(min_duration_ms))
        if max_duration_ms is not None:
            conds.append("duration_ms <= ?")
            params.append(float(max_duration_ms))
        if trace_id:
            conds.append("trace_id = ?")
            params.append(trace_id.lower())
        if roots_only:
            conds.append("parent_span_id IS NULL")
        cols = {r[0] for r in con.execute("DESCRIBE spans").fetchall()}
        for key, value in attrs or []:
            like = "*" in value
            op = "LIKE" if like else "="
            val = value.replace("%", r"\%").replace("_", r"\_").replace("*", "%") if like else value
            esc = " ESCAPE '\\'" if like else ""
            if key in cols and key not in ("attributes", "resource_attributes"):
                conds.append(f'CAST("{key}" AS VARCHAR) {op} ?{esc}')
                params.append(val)
            else:
                conds.append(f"coalesce(attributes[?], resource_attributes[?]) {op} ?{esc}")
                params.extend([key, key, val])
        where = "WHERE " + " AND ".join(conds) if conds else ""
        desc = sort.startswith("-")
        col = sort.lstrip("-+")
        if col not in ("duration_ms", "start_time"):
            raise ApmQueryError(f"cannot sort by {col!r}", hint="duration_ms or start_time")
        limit = max(1, min(int(limit), 10_000))
        rows = _rows(
            con,
            "SELECT trace_id, span_id, parent_span_id, service_name, name, kind, start_time, "
            'duration_ms, status_code, status_message, "http.route", '
            '"http.response.status_code", "db.system", exception_type '
            f"FROM spans {where} ORDER BY {col} {'DESC' if desc else 'ASC'}, span_id LIMIT {limit}",
            params,
        )
    finally:
        con.close()
    return rows


def latency_series(
    storage: Any, window: Window, service: str, bucket_secs: int = 60
) -> list[dict[str, Any]]:
    """Per-bucket RED of a service's entry spans, with one exemplar (slowest trace) each."""
    con = spans_session(storage, window)
    if con is None:
        return []
    try:
        return _rows(
            con,
            _ENTRY.format(filter="WHERE service_name = ?")
            + ", b AS (SELECT e.*, sp.start_time FROM e JOIN spans sp USING (trace_id, span_id) "
            "WHERE entry) "
            f"SELECT time_bucket(INTERVAL '{int(bucket_secs)} seconds', start_time) AS t, "
            "count(*) AS spans, count(*) FILTER (WHERE status_code = 'ERROR') AS errors, "
            "quantile_cont(duration_ms, 0.5) AS p50_ms, quantile_cont(duration_ms, 0.99) AS p99_ms, "
            "arg_max(trace_id, duration_ms) AS exemplar_trace_id, max(duration_ms) AS exemplar_ms "
            "FROM b GROUP BY 1 ORDER BY 1",
            [service],
        )
    finally:
        con.close()
