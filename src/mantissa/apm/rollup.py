"""Per-minute rollups of the ``traces`` table: service edges and per-service RED.

A rollup is kept per hour partition of ``traces`` in ``<lake>/index/apm_rollup/``, as two
small Parquet files (``<hour>-<signature>.edges.parquet`` and ``.nodes.parquet``). Each
row is one minute pair:

* **edges**: ``(source, target, target_type, cmin, pmin)`` → ``calls``, ``errors``,
  weighted counts, ``sum_ms`` and the callee spans' durations (``durs``); ``cmin`` is the
  minute the callee span started, ``pmin`` the minute its parent started (for a virtual
  node, both are the client span's minute);
* **nodes**: ``(service, cmin, pmin)`` → spans, errors, weighted counts, ``sum_ms``,
  ``max_ms`` and durations; ``pmin`` is the parent's minute when the parent is in the
  same service and the span is no SERVER/CONSUMER span, else NULL.

Counts stay exact for any window on whole minutes: an edge is counted when both its
minutes are inside the window (the plain self-join's "both spans in the window"), a
span is an entry span when ``pmin`` is NULL or outside the window (the join found no
parent in the window). Percentiles are exact too (the durations are kept, not a sketch).

A rollup is valid while the files it was built from are unchanged: its signature hashes
the keys and sizes of the files of its hour and the hours before and after (parents and
callees are looked up there). A late span, a flush or a compaction changes the
signature, and the next query (or the receiver's background pass) rebuilds that hour
only. Parents or callees more than an hour away are not looked up: such a span counts
as an entry span (and a client span with such a callee as a call to a virtual node).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import shutil
import threading
import time
from collections import defaultdict
from typing import Any

import duckdb

from mantissa.apm import lake
from mantissa.lake.catalog import parse_partition
from mantissa.lake.writer import new_batch_id

PREFIX = "index/apm_rollup"
Hour = tuple[int, int, int, int]

#: hour → (signature, edges uri, nodes uri, built at (monotonic)) of the rollups this
#: process built or found valid
MEMO: dict[tuple[str, Hour], tuple[str, str, str, float]] = {}
_LOCK = threading.Lock()

_SPANS = """
CREATE OR REPLACE TEMP TABLE _rs AS
SELECT trace_id, span_id, parent_span_id, service_name, kind, status_code, duration_ms,
       coalesce(sampling_weight, 1.0) AS w, start_time, "db.system", "db.namespace",
       "messaging.system", "messaging.destination.name", "peer.service"
FROM read_parquet({files}, union_by_name=true)
"""

_NODES = """
SELECT c.service_name AS service, date_trunc('minute', c.start_time) AS cmin,
       CASE WHEN c.kind IN ('SERVER', 'CONSUMER') OR c.parent_span_id IS NULL
                 OR p.service_name IS NULL OR p.service_name <> c.service_name THEN NULL
            ELSE date_trunc('minute', p.start_time) END AS pmin,
       count(*) AS n,
       count(*) FILTER (WHERE c.status_code = 'ERROR') AS errors,
       sum(c.w) AS w,
       coalesce(sum(c.w) FILTER (WHERE c.status_code = 'ERROR'), 0) AS w_errors,
       bool_or(c.w <> 1.0) AS est,
       sum(c.duration_ms) AS sum_ms,
       max(c.duration_ms) AS max_ms,
       list(c.duration_ms) AS durs
FROM _rs c LEFT JOIN (SELECT trace_id, span_id, service_name, start_time FROM _rs) p
  ON p.trace_id = c.trace_id AND p.span_id = c.parent_span_id
WHERE c.start_time >= {lo} AND c.start_time < {hi}
GROUP BY ALL
"""

_EDGES = """
WITH pairs AS MATERIALIZED (
  SELECT p.service_name AS source, c.service_name AS target, c.trace_id, c.parent_span_id,
         c.start_time AS ct, p.start_time AS pt, c.status_code, c.duration_ms, c.w
  FROM _rs c JOIN _rs p ON c.trace_id = p.trace_id AND c.parent_span_id = p.span_id
  WHERE c.service_name <> p.service_name
),
callee AS (SELECT DISTINCT trace_id, parent_span_id AS span_id FROM pairs),
calls AS (
  SELECT source, target, 'service' AS tt, ct, pt, status_code, duration_ms, w FROM pairs
  WHERE ct >= {lo} AND ct < {hi}
),
virt AS (
  SELECT s.service_name AS source,
         CASE WHEN s."peer.service" IS NOT NULL THEN s."peer.service"
              WHEN s."db.system" IS NOT NULL THEN s."db.system" || coalesce('/' || s."db.namespace", '')
              ELSE s."messaging.system" || coalesce('/' || s."messaging.destination.name", '') END
           AS target,
         CASE WHEN s."db.system" IS NOT NULL THEN 'database'
              WHEN s."messaging.system" IS NOT NULL THEN 'queue' ELSE 'peer' END AS tt,
         s.start_time AS ct, s.start_time AS pt, s.status_code, s.duration_ms, s.w
  FROM _rs s ANTI JOIN callee k ON k.trace_id = s.trace_id AND k.span_id = s.span_id
  WHERE s.start_time >= {lo} AND s.start_time < {hi} AND s.kind IN ('CLIENT', 'PRODUCER')
    AND (s."db.system" IS NOT NULL OR s."messaging.system" IS NOT NULL
         OR s."peer.service" IS NOT NULL)
),
allc AS (SELECT * FROM calls UNION ALL SELECT * FROM virt)
SELECT source, target, any_value(tt) AS tt,
       date_trunc('minute', ct) AS cmin, date_trunc('minute', pt) AS pmin,
       count(*) AS calls,
       count(*) FILTER (WHERE status_code = 'ERROR') AS errors,
       sum(w) AS w, coalesce(sum(w) FILTER (WHERE status_code = 'ERROR'), 0) AS w_errors,
       bool_or(w <> 1.0) AS est,
       sum(duration_ms) AS sum_ms,
       list(duration_ms) AS durs
FROM allc GROUP BY source, target, cmin, pmin
"""


def aligned(window: Any) -> bool:
    """Whether ``window`` starts (and ends, if it does) on a whole minute: rollups answer
    exactly such windows."""

    def whole(t: dt.datetime | None) -> bool:
        return t is None or (t.second == 0 and t.microsecond == 0)

    return window.since is not None and whole(window.since) and whole(window.until)


def _lit(t: dt.datetime) -> str:
    return f"TIMESTAMPTZ '{t.astimezone(dt.UTC).isoformat()}'"


def _hour_start(h: Hour) -> dt.datetime:
    return dt.datetime(*h, tzinfo=dt.UTC)


def _shift(h: Hour, hours: int) -> Hour:
    t = _hour_start(h) + dt.timedelta(hours=hours)
    return (t.year, t.month, t.day, t.hour)


def _files_by_hour(storage: Any) -> dict[Hour, list[Any]]:
    out: dict[Hour, list[Any]] = defaultdict(list)
    for o in storage.list(lake.TRACES, ".parquet"):
        p = parse_partition(o.key)
        if p is not None:
            out[p].append(o)
    return out


def signature(files: dict[Hour, list[Any]], h: Hour) -> str:
    """A hash of the files a rollup of hour ``h`` is built from."""
    d = hashlib.sha256()
    for hh in (_shift(h, -1), h, _shift(h, 1)):
        for o in sorted(files.get(hh, []), key=lambda o: o.key):
            d.update(f"{o.key}:{o.size};".encode())
    return d.hexdigest()[:16]


def _name(h: Hour) -> str:
    return f"{h[0]:04d}{h[1]:02d}{h[2]:02d}{h[3]:02d}"


def build(storage: Any, files: dict[Hour, list[Any]], h: Hour, sig: str) -> tuple[str, str]:
    """Build and publish the rollup of hour ``h``; returns the (edges, nodes) URIs."""
    src = [storage.uri(o.key) for hh in (_shift(h, -1), h, _shift(h, 1)) for o in files.get(hh, [])]
    lo, hi = _hour_start(h), _hour_start(h) + dt.timedelta(hours=1)
    staging = storage.scratch_dir() / f"rollup-{new_batch_id()}"
    staging.mkdir(parents=True, exist_ok=True)
    con = lake.connection()
    try:
        listing = "[" + ", ".join("'" + f.replace("'", "''") + "'" for f in src) + "]"
        con.execute(_SPANS.format(files=listing))
        out = {}
        for kind, sql in (("edges", _EDGES), ("nodes", _NODES)):
            f = staging / f"{kind}.parquet"
            con.execute(
                f"COPY ({sql.format(lo=_lit(lo), hi=_lit(hi))}) TO '{f}' "
                "(FORMAT parquet, COMPRESSION zstd)"
            )
            key = f"{PREFIX}/{_name(h)}-{sig}.{kind}.parquet"
            storage.put_file(f, key)
            out[kind] = storage.uri(key)
        con.execute("DROP TABLE IF EXISTS _rs")
    finally:
        con.close()
        shutil.rmtree(staging, ignore_errors=True)
    return out["edges"], out["nodes"]


def _hours_of(window: Any, files: dict[Hour, list[Any]]) -> list[Hour]:
    lo, hi = window.since, window.until
    out = []
    for h in sorted(files):
        start = _hour_start(h)
        if lo is not None and start + dt.timedelta(hours=1) <= lo:
            continue
        if hi is not None and start >= hi:
            continue
        out.append(h)
    return out


def ensure(
    storage: Any, window: Any, build_missing: bool = True, max_lag_secs: float = 0.0
) -> tuple[list[str], list[str]]:
    """The (edges, nodes) rollup URIs covering ``window``, building stale or missing
    ones (unless ``build_missing`` is false: then only the valid ones are returned).

    ``max_lag_secs`` > 0 accepts a rollup this process built less than that long ago
    even if its hour's files changed since (the live hour of a busy receiver changes
    every flush): the answer may then miss the last seconds of spans. 0 = exact."""
    files = _files_by_hour(storage)
    hours = _hours_of(window, files)
    root = str(storage.uri())
    existing: dict[str, set[str]] = defaultdict(set)
    for o in storage.list(PREFIX, ".parquet"):
        name = o.key.rsplit("/", 1)[-1]
        existing[name.split("-", 1)[0]].add(name)
    edges, nodes = [], []
    for h in hours:
        sig = signature(files, h)
        with _LOCK:
            hit = MEMO.get((root, h))
        have = existing.get(_name(h), set())
        if (
            hit
            and (hit[0] == sig or (max_lag_secs > 0 and time.monotonic() - hit[3] < max_lag_secs))
            # another process may have replaced it since
            and {hit[1].rsplit("/", 1)[-1], hit[2].rsplit("/", 1)[-1]} <= have
        ):
            edges.append(hit[1])
            nodes.append(hit[2])
            continue
        stem = f"{_name(h)}-{sig}"
        if {f"{stem}.edges.parquet", f"{stem}.nodes.parquet"} <= have:
            e = storage.uri(f"{PREFIX}/{stem}.edges.parquet")
            n = storage.uri(f"{PREFIX}/{stem}.nodes.parquet")
        elif build_missing:
            e, n = build(storage, files, h, sig)
        else:
            continue
        for stale in have - {f"{stem}.edges.parquet", f"{stem}.nodes.parquet"}:
            try:
                storage.delete(f"{PREFIX}/{stale}")
            except FileNotFoundError:
                pass
        with _LOCK:
            MEMO[(root, h)] = (sig, e, n, time.monotonic())
        edges.append(e)
        nodes.append(n)
    return edges, nodes


def refresh(storage: Any, since: dt.datetime | None = None) -> int:
    """Build the rollups of every hour whose files changed (the receiver's background
    pass; ``since`` limits it to recent hours). Returns the hours rebuilt."""
    from mantissa.apm.queries import Window

    files = _files_by_hour(storage)
    if not files:
        return 0
    lo = since or _hour_start(min(files))
    before = dict(MEMO)
    ensure(storage, Window(lo, None))
    return sum(1 for k, v in MEMO.items() if before.get(k) != v)


def _window_sql(window: Any, col: str) -> str:
    conds = [f"{col} >= {_lit(window.since)}"]
    if window.until is not None:
        conds.append(f"{col} < {_lit(window.until)}")
    return " AND ".join(conds)


def _in_window(window: Any, col: str) -> str:
    return "(" + _window_sql(window, col) + ")"


def _retrying(fn: Any) -> Any:
    """Run ``fn(max_lag_secs)``; if a rollup file vanished under it (another process
    rebuilt the hour), forget what this process knew and run it once more, exactly."""

    def run(storage: Any, *args: Any, max_lag_secs: float = 0.0) -> Any:
        try:
            return fn(storage, *args, max_lag_secs=max_lag_secs)
        except duckdb.IOException:
            root = str(storage.uri())
            with _LOCK:
                for k in [k for k in MEMO if k[0] == root]:
                    del MEMO[k]
            return fn(storage, *args, max_lag_secs=0.0)

    return run


def _map_rows(
    storage: Any, window: Any, max_lag_secs: float = 0.0
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]] | None:
    edges, nodes = ensure(storage, window, max_lag_secs=max_lag_secs)
    if not edges:
        return None
    con = lake.connection()
    try:
        return _edge_rows(con, edges, window), _node_rows(con, nodes, window, None)
    finally:
        con.close()


def map_rows(
    storage: Any, window: Any, max_lag_secs: float = 0.0
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]] | None:
    """(edges, nodes) of ``window`` for the service map, in one pass (None: no data)."""
    return _retrying(_map_rows)(storage, window, max_lag_secs=max_lag_secs)


def edge_rows(storage: Any, window: Any) -> list[dict[str, Any]] | None:
    """Edges of ``window`` as :func:`mantissa.apm.service_map.compute` reads them."""
    edges, _ = ensure(storage, window)
    if not edges:
        return None
    con = lake.connection()
    try:
        return _edge_rows(con, edges, window)
    finally:
        con.close()


def _edge_rows(con: Any, edges: list[str], window: Any) -> list[dict[str, Any]]:
    listing = "[" + ", ".join("'" + f.replace("'", "''") + "'" for f in edges) + "]"
    sql = f"""
    WITH r AS MATERIALIZED (
      SELECT * FROM read_parquet({listing})
      WHERE {_window_sql(window, "cmin")} AND {_window_sql(window, "pmin")}),
    agg AS (
      SELECT source, target, any_value(tt) AS target_type, sum(calls) AS calls,
             sum(errors) AS errors, sum(w) AS w_calls, sum(w_errors) AS w_errors,
             bool_or(est) AS estimate, sum(sum_ms) / sum(calls) AS avg_ms
      FROM r GROUP BY 1, 2),
    q AS (
      SELECT source, target, quantile_cont(d, 0.99) AS p99_ms
      FROM (SELECT source, target, unnest(durs) AS d FROM r) GROUP BY 1, 2)
    SELECT agg.*, q.p99_ms FROM agg JOIN q USING (source, target) ORDER BY source, target
    """
    cur = con.execute(sql)
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]


def node_rows(
    storage: Any, window: Any, service: str | None = None, max_lag_secs: float = 0.0
) -> list[dict[str, Any]] | None:
    """Per-service RED of ``window``: every span counted, percentiles and averages over
    entry spans (over all spans when a service has none), as ``apm services`` reports."""
    return _retrying(_nodes)(storage, window, service, max_lag_secs=max_lag_secs)


def _nodes(
    storage: Any, window: Any, service: str | None, max_lag_secs: float = 0.0
) -> list[dict[str, Any]] | None:
    _, nodes = ensure(storage, window, max_lag_secs=max_lag_secs)
    if not nodes:
        return None
    con = lake.connection()
    try:
        return _node_rows(con, nodes, window, service)
    finally:
        con.close()


def _node_rows(
    con: Any, nodes: list[str], window: Any, service: str | None
) -> list[dict[str, Any]]:
    listing = "[" + ", ".join("'" + f.replace("'", "''") + "'" for f in nodes) + "]"
    flt = "AND service = ?" if service else ""
    sql = f"""
    WITH r AS MATERIALIZED (
      SELECT *, (pmin IS NULL OR NOT {_in_window(window, "pmin")}) AS entry
      FROM read_parquet({listing}) WHERE {_window_sql(window, "cmin")} {flt}),
    agg AS (
      SELECT service, sum(n) AS sampled_spans, sum(errors) AS sampled_errors,
             sum(w) AS w_spans, sum(w_errors) AS w_errors, bool_or(est) AS estimate,
             coalesce(sum(n) FILTER (WHERE entry), 0) AS entry_spans,
             coalesce(sum(errors) FILTER (WHERE entry), 0) AS request_errors,
             sum(sum_ms) FILTER (WHERE entry) / sum(n) FILTER (WHERE entry) AS avg_entry,
             sum(sum_ms) / sum(n) AS avg_all, max(max_ms) AS max_ms
      FROM r GROUP BY 1),
    q AS (
      SELECT service,
             quantile_cont(d, [0.5, 0.95, 0.99]) FILTER (WHERE entry) AS qe,
             quantile_cont(d, [0.5, 0.95, 0.99]) AS qa
      FROM (SELECT service, entry, unnest(durs) AS d FROM r) GROUP BY 1)
    SELECT agg.*, q.qe, q.qa FROM agg JOIN q USING (service) ORDER BY service
    """
    cur = con.execute(sql, [service] if service else [])
    cols = [d[0] for d in cur.description]
    rows = [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]
    for r in rows:
        qe, qa = r.pop("qe"), r.pop("qa")
        r["entry_p50"], r["entry_p95"], r["entry_p99"] = qe if qe else (None, None, None)
        q = qe or qa
        r["p50_ms"], r["p95_ms"], r["p99_ms"] = q
        avg_entry, avg_all = r.pop("avg_entry"), r.pop("avg_all")
        r["entry_avg"] = avg_entry
        r["avg_ms"] = avg_entry if avg_entry is not None else avg_all
    return rows
