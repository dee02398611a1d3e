"""The lake's table catalog: which tables exist, where their files are, their schemas.

Every source is a table under ``logs/<source>``. Other modules register tables of their
own (``traces``, ``metrics``) with :func:`register_table`. The ``events`` view unions
the common columns of all log tables.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

from mantissa.lake.storage import ObjectInfo, Storage
from mantissa.lake.writer import PARTITION_COLUMNS
from mantissa.sources.base import COMMON_COLUMNS, registry

EVENTS_VIEW = "events"


@dataclass(frozen=True)
class TableSpec:
    name: str
    prefix: str
    #: Returns ``[(column, duckdb_type)]`` for the table when it has no files yet.
    schema: Callable[[], list[tuple[str, str]]]
    kind: str = "logs"
    time_column: str = "event_time"


_EXTRA: dict[str, TableSpec] = {}

# Modules that register non-log tables when imported (APM ...); one line each.
EXTRA_TABLE_MODULES: list[str] = ["mantissa.apm.lake"]


def register_table(spec: TableSpec) -> None:
    """Add a non-log table (traces, metrics ...) to every engine's catalog."""
    _EXTRA[spec.name] = spec


@cache
def source_schema(name: str) -> tuple[tuple[str, str], ...]:
    """The column names and types a source writes (computed by running it on no input)."""
    from mantissa.lake.ingest import ingest_connection
    from mantissa.sources.base import get_source

    con = ingest_connection(threads=1)
    con.execute("CREATE TEMP TABLE input (line BIGINT, raw VARCHAR, file VARCHAR, ctx VARCHAR)")
    src = get_source(name)
    desc = con.execute(f"DESCRIBE SELECT * FROM ({src.select_sql()})").fetchall()
    con.close()
    cols: dict[str, str] = {c: t for c, t in COMMON_COLUMNS.items()}
    for row in desc:
        if row[0] not in cols and row[0] not in ("line", "file", "_error", "_skip"):
            cols[row[0]] = row[1]
    return tuple(cols.items())


def tables() -> dict[str, TableSpec]:
    import importlib

    for mod in EXTRA_TABLE_MODULES:
        importlib.import_module(mod)
    out: dict[str, TableSpec] = {}
    for name in registry():
        out[name] = TableSpec(name, f"logs/{name}", lambda n=name: list(source_schema(n)))  # type: ignore[misc]
    out.update(_EXTRA)
    return out


def parse_partition(key: str) -> tuple[int, int, int, int] | None:
    """``.../year=2026/month=01/day=02/hour=03/x.parquet`` → (2026, 1, 2, 3)."""
    vals: dict[str, int] = {}
    for part in key.split("/"):
        if "=" in part:
            k, _, v = part.partition("=")
            if k in PARTITION_COLUMNS:
                try:
                    vals[k] = int(v)
                except ValueError:
                    return None
    if len(vals) != 4:
        return None
    return (vals["year"], vals["month"], vals["day"], vals["hour"])


def table_files(storage: Storage, spec: TableSpec) -> list[ObjectInfo]:
    return [o for o in storage.list(spec.prefix, ".parquet") if parse_partition(o.key)]


@dataclass
class TableStats:
    table: str
    rows: int
    files: int
    partitions: int
    bytes: int
    first_event: dt.datetime | None
    last_event: dt.datetime | None
    max_files_per_partition: int


def table_stats(storage: Storage, spec: TableSpec) -> TableStats:
    """Rows, time range, partitions, files and bytes of one table (reads footers only)."""
    import duckdb

    files = table_files(storage, spec)
    per_part: dict[tuple[int, int, int, int], int] = {}
    for f in files:
        p = parse_partition(f.key)
        if p is not None:
            per_part[p] = per_part.get(p, 0) + 1
    rows = 0
    first = last = None
    if files:
        con = duckdb.connect()
        con.execute("SET TimeZone='UTC'")
        storage.attach(con)
        uris = ", ".join("'" + storage.uri(f.key).replace("'", "''") + "'" for f in files)
        col = spec.time_column
        r = con.execute(
            f"SELECT sum(num_rows), min(stats_min), max(stats_max) FROM ("
            f"SELECT file_name, max(row_group_num_rows) FILTER (WHERE column_id = 0) AS num_rows, "
            f"min(stats_min) FILTER (WHERE path_in_schema = '{col}') AS stats_min, "
            f"max(stats_max) FILTER (WHERE path_in_schema = '{col}') AS stats_max "
            f"FROM parquet_metadata([{uris}]) GROUP BY file_name, row_group_id)"
        ).fetchone()
        con.close()
        if r:
            rows = int(r[0] or 0)
            first = _meta_ts(r[1])
            last = _meta_ts(r[2])
    return TableStats(
        table=spec.name,
        rows=rows,
        files=len(files),
        partitions=len(per_part),
        bytes=sum(f.size for f in files),
        first_event=first,
        last_event=last,
        max_files_per_partition=max(per_part.values(), default=0),
    )


def _meta_ts(v: object) -> dt.datetime | None:
    if v is None:
        return None
    text = str(v)
    try:
        return dt.datetime.fromisoformat(
            text.replace(" ", "T").replace("+00", "+00:00") if text.endswith("+00") else text
        ).astimezone(dt.UTC)
    except ValueError:
        return None
