"""The ``traces`` and ``metrics`` tables: registration, writes, compaction, trace index.

* ``<lake>/traces/year=/month=/day=/hour=/<batch>.parquet``: one row per span, sorted
  by ``trace_id`` inside each file so a lookup by id reads few row groups;
* ``<lake>/metrics/year=/...``: one row per data point;
* ``<lake>/index/traces/<batch>.parquet``: ``(trace_id, year, month, day, hour)`` per
  flush: finding a trace without a time hint reads this small index, then only the
  hour partitions that hold the trace.

Writes go through :class:`mantissa.lake.writer.LakeWriter` (atomic publish, dedup on
``event_id`` = trace id + span id, or the data point key). Small files of a trickle are
merged by :func:`compact` so an hour partition holds a handful of files, not thousands.
"""

from __future__ import annotations

import shutil
import threading
import time
from dataclasses import dataclass
from typing import Any

import duckdb
import pyarrow as pa

from mantissa.apm import otlp
from mantissa.lake.catalog import TableSpec, parse_partition, register_table
from mantissa.lake.storage import Storage
from mantissa.lake.writer import LakeWriter, WriteResult, new_batch_id, partition_key

TRACES = "traces"
METRICS = "metrics"
INDEX_PREFIX = "index/traces"


def trace_columns() -> list[tuple[str, str]]:
    return [(n, otlp.duckdb_type(t)) for n, t in otlp.TRACE_FIELDS]


def metric_columns() -> list[tuple[str, str]]:
    return [(n, otlp.duckdb_type(t)) for n, t in otlp.METRIC_FIELDS]


TRACES_SPEC = TableSpec(TRACES, TRACES, trace_columns, kind="traces", time_column="start_time")
METRICS_SPEC = TableSpec(METRICS, METRICS, metric_columns, kind="metrics", time_column="time")
register_table(TRACES_SPEC)
register_table(METRICS_SPEC)

SCHEMAS = {TRACES: otlp.TRACE_SCHEMA, METRICS: otlp.METRIC_SCHEMA}
#: rows per Parquet row group of ``traces`` files: files are sorted by ``trace_id``, so a
#: lookup by id reads one small group (min/max statistics) instead of the whole file
TRACE_ROW_GROUP = 8192
INDEX_ROW_GROUP = 2048


@dataclass
class CompactPolicy:
    #: merge a partition's small files once it has more than this many
    max_files: int = 12
    #: files at or above this size are left alone
    small_bytes: int = 64 * 1024 * 1024


_BASE: duckdb.DuckDBPyConnection | None = None
_BASE_LOCK = threading.Lock()


def connection() -> duckdb.DuckDBPyConnection:
    """A private DuckDB session: a cursor on one in-memory database per process (opening
    a new database costs ~100 ms on a busy machine, a cursor almost nothing). Temp
    views and tables stay private to the cursor; close it when done."""
    global _BASE
    with _BASE_LOCK:
        if _BASE is None:
            _BASE = duckdb.connect(config={"threads": 2, "memory_limit": "2GB"})
            # lake files are immutable (new name per write): their footers can be cached
            _BASE.execute("SET parquet_metadata_cache = true")
        con = _BASE.cursor()
    con.execute("SET TimeZone='UTC'")
    return con


def write_table(
    storage: Storage,
    table: str,
    data: pa.Table,
    con: duckdb.DuckDBPyConnection | None = None,
    policy: CompactPolicy | None = None,
    dedup_window_secs: float | None = None,
) -> WriteResult:
    """Write ``data`` (rows of :data:`SCHEMAS` ``[table]``) to the lake, deduplicated,
    index the trace ids, and merge small files of the touched partitions.

    Dedup checks every file of the touched hour partitions, or with
    ``dedup_window_secs`` only the files written in that many seconds (the receiver's
    regular flushes: a duplicate there is a client's retry of a recent request; merging
    small files removes duplicates among them too)."""
    own = con is None
    con = con or connection()
    try:
        batch_id = new_batch_id()
        data = data.cast(SCHEMAS[table]) if data.schema != SCHEMAS[table] else data
        con.register("_apm_in", data)
        # raw: the span's (or point's) own attributes as one JSON object, for Sigma fields
        # that have no column of their own (computed here, columnar, not per span)
        con.execute(
            "CREATE OR REPLACE TEMP TABLE _apm_batch AS SELECT * REPLACE ("
            "coalesce(raw, CAST(to_json(attributes) AS VARCHAR)) AS raw) FROM _apm_in"
        )
        con.unregister("_apm_in")
        order = "trace_id, start_time" if table == TRACES else "name, service_name, time"
        since = (
            f"{time.time_ns() - int(dedup_window_secs * 1e9):x}"
            if dedup_window_secs is not None
            else None
        )
        res = LakeWriter(storage, con, table).write(
            "_apm_batch",
            batch_id,
            order_by=order,
            row_group_size=TRACE_ROW_GROUP if table == TRACES else 122880,
            since_batch=since,
        )
        if table == TRACES and res.rows:
            _write_index(storage, con, batch_id)
        con.execute("DROP TABLE IF EXISTS _apm_batch")
        for part in sorted(res.partitions):
            compact(storage, con, part, policy or CompactPolicy())
        if table == TRACES:
            compact_index(storage, con)
        return res
    finally:
        if own:
            con.close()


def _write_index(storage: Storage, con: duckdb.DuckDBPyConnection, batch_id: str) -> None:
    staging = storage.scratch_dir() / f"idx-{batch_id}"
    staging.mkdir(parents=True, exist_ok=True)
    try:
        f = staging / "index.parquet"
        con.execute(
            f"""COPY (SELECT DISTINCT trace_id, year(event_time) AS year,
                    month(event_time) AS month, day(event_time) AS day,
                    hour(event_time) AS hour
                FROM _apm_batch ORDER BY trace_id)
                TO '{f}' (FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE {INDEX_ROW_GROUP})"""
        )
        storage.put_file(f, f"{INDEX_PREFIX}/{batch_id}.parquet")
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def compact(
    storage: Storage, con: duckdb.DuckDBPyConnection, partition: str, policy: CompactPolicy
) -> int:
    """Merge the small files of one hour partition into one; returns files removed.

    The merged file is published before the small ones are deleted, and duplicates
    (same ``event_id``) are dropped while merging, so a crash between the two steps
    leaves at worst rows that the next merge or the writer's dedup removes.
    """
    files = [o for o in storage.list(partition, ".parquet") if o.size < policy.small_bytes]
    if len(files) <= policy.max_files:
        return 0
    batch_id = new_batch_id()
    staging = storage.scratch_dir() / f"compact-{batch_id}"
    staging.mkdir(parents=True, exist_ok=True)
    table = partition.split("/", 1)[0]
    order = "trace_id, start_time" if table == TRACES else "name, service_name, time"
    rg = TRACE_ROW_GROUP if table == TRACES else 122880
    try:
        uris = ", ".join("'" + storage.uri(o.key).replace("'", "''") + "'" for o in files)
        out = staging / "merged.parquet"
        con.execute(
            f"""COPY (SELECT * EXCLUDE (year, month, day, hour) FROM read_parquet([{uris}],
                    hive_partitioning=true, union_by_name=true)
                QUALIFY row_number() OVER (PARTITION BY event_id ORDER BY ingested_at) = 1
                ORDER BY {order})
                TO '{out}' (FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE {rg})"""
        )
        storage.put_file(out, f"{partition}/{batch_id}.parquet")
        for o in files:
            storage.delete(o.key)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return len(files)


def compact_index(storage: Storage, con: duckdb.DuckDBPyConnection, max_files: int = 32) -> None:
    files = list(storage.list(INDEX_PREFIX, ".parquet"))
    if len(files) <= max_files:
        return
    batch_id = new_batch_id()
    staging = storage.scratch_dir() / f"idxc-{batch_id}"
    staging.mkdir(parents=True, exist_ok=True)
    try:
        uris = ", ".join("'" + storage.uri(o.key).replace("'", "''") + "'" for o in files)
        out = staging / "index.parquet"
        con.execute(
            f"""COPY (SELECT DISTINCT * FROM read_parquet([{uris}]) ORDER BY trace_id)
                TO '{out}' (FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE {INDEX_ROW_GROUP})"""
        )
        storage.put_file(out, f"{INDEX_PREFIX}/{batch_id}.parquet")
        for o in files:
            storage.delete(o.key)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def trace_files(
    storage: Storage, con: duckdb.DuckDBPyConnection, trace_id: str
) -> list[str] | None:
    """The data files that may hold ``trace_id`` (via the index); None = no index."""
    index = list(storage.list(INDEX_PREFIX, ".parquet"))
    if not index:
        return None
    uris = ", ".join("'" + storage.uri(o.key).replace("'", "''") + "'" for o in index)
    try:
        parts = con.execute(
            f"SELECT DISTINCT year, month, day, hour FROM read_parquet([{uris}]) "
            "WHERE trace_id = ?",
            [trace_id],
        ).fetchall()
    except duckdb.IOException:
        return None  # an index file merged away under us: fall back to a scan
    files: list[str] = []
    for y, m, d, h in parts:
        for o in storage.list(partition_key(TRACES, y, m, d, h), ".parquet"):
            files.append(storage.uri(o.key))
    return files


def all_files(storage: Storage, table: str) -> list[str]:
    return [storage.uri(o.key) for o in storage.list(table, ".parquet") if parse_partition(o.key)]


def files_between(storage: Storage, table: str, lo: Any, hi: Any) -> list[str]:
    """Data files of the hour partitions overlapping ``[lo, hi)`` (datetimes, UTC)."""
    out = []
    for o in storage.list(table, ".parquet"):
        p = parse_partition(o.key)
        if p is None:
            continue
        if lo is not None or hi is not None:
            import datetime as dt

            start = dt.datetime(*p, tzinfo=dt.UTC)
            end = start + dt.timedelta(hours=1)
            if (lo is not None and end <= lo) or (hi is not None and start >= hi):
                continue
        out.append(storage.uri(o.key))
    return out
