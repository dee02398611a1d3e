"""DuckDB over the local (or mounted) Parquet lake: the embedded default engine.

Each query gets a fresh in-memory session: one view per table over its hive-partitioned
files, then the session is locked (``enable_external_access=false``,
``allowed_directories`` = the lake, ``lock_configuration=true``) before the guarded
SQL runs, with a statement timeout (``interrupt``) and a row cap.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from typing import Any

import duckdb as _duckdb

from mantissa.engines.base import CostEstimate, QueryEngine, QueryResult
from mantissa.engines.guard import guard
from mantissa.engines.pruning import add_partition_filters, bounds_for_table, hours_in_range
from mantissa.errors import QueryError, QueryTimeout
from mantissa.lake.catalog import EVENTS_VIEW, TableSpec, parse_partition, table_files, tables
from mantissa.lake.storage import Storage
from mantissa.sources.base import COMMON_COLUMNS

_HIVE_TYPES = "{'year': INTEGER, 'month': INTEGER, 'day': INTEGER, 'hour': INTEGER}"


def _q(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def committed_files(storage: Storage, specs: dict[str, TableSpec]) -> dict[str, list[str]]:
    """URIs of every table's committed Parquet files, from one listing per top-level prefix."""
    out: dict[str, list[str]] = {}
    roots = sorted({spec.prefix.split("/", 1)[0] for spec in specs.values()})
    by_prefix = sorted(((spec.prefix, name) for name, spec in specs.items()), reverse=True)
    for root in roots:
        for obj in storage.list(root, ".parquet"):
            if parse_partition(obj.key) is None:
                continue
            for prefix, name in by_prefix:
                if obj.key.startswith(prefix + "/"):
                    out.setdefault(name, []).append(storage.uri(obj.key))
                    break
    return out


def _file_list_view_sql(spec: TableSpec, uris: list[str], empty: Any) -> str:
    if not uris:
        return str(empty(spec, False))
    files = ", ".join(_q(u) for u in uris)
    return (
        f"SELECT * FROM read_parquet([{files}], hive_partitioning=true, "
        f"union_by_name=true, hive_types={_HIVE_TYPES})"
    )


class DuckDBEngine(QueryEngine):
    type = "duckdb"
    dialect = "duckdb"

    def __init__(
        self,
        storage: Storage,
        timeout_secs: float = 60.0,
        max_rows: int = 100_000,
        memory_limit: str = "2GB",
        threads: int | None = None,
        **_: Any,
    ) -> None:
        self.storage = storage
        self.timeout_secs = timeout_secs
        self.max_rows = max_rows
        self.memory_limit = memory_limit
        self.threads = threads

    # -- catalog --------------------------------------------------------------
    def tables(self) -> list[str]:
        return [*tables(), EVENTS_VIEW]

    def _view_sql(self, spec: TableSpec, files_exist: bool) -> str:
        if files_exist:
            glob = self.storage.uri(f"{spec.prefix}/*/*/*/*/*.parquet")
            return (
                f"SELECT * FROM read_parquet({_q(glob)}, hive_partitioning=true, "
                f"union_by_name=true, hive_types={_HIVE_TYPES})"
            )
        cols = (
            ", ".join(f'CAST(NULL AS {t}) AS "{c}"' for c, t in spec.schema())
            + ", NULL::INTEGER AS year, NULL::INTEGER AS month, NULL::INTEGER AS day, NULL::INTEGER AS hour"
        )
        return f"SELECT {cols} WHERE false"

    def connect(self) -> _duckdb.DuckDBPyConnection:
        """A locked-down session with every table defined as a view."""
        con = _duckdb.connect(config={"threads": self.threads} if self.threads else {})
        con.execute("SET TimeZone='UTC'")
        con.execute(f"SET memory_limit={_q(self.memory_limit)}")
        # Views read with union_by_name re-read every file footer at each bind; caching the
        # footers halves that for sessions that run several queries (detection runs).
        con.execute("SET parquet_metadata_cache=true")
        specs = tables()
        log_tables = []
        # Object stores: hand DuckDB the committed file list (a glob would also see
        # uncommitted or compacted-away objects; see lake/objectstore.py).
        remote = None if self.storage.is_local() else committed_files(self.storage, specs)
        if remote is not None:
            self.storage.attach(con)
        for name, spec in specs.items():
            if remote is not None:
                view = _file_list_view_sql(spec, remote.get(name, []), self._view_sql)
            else:
                has_files = any(True for _ in self.storage.list(spec.prefix, ".parquet"))
                view = self._view_sql(spec, has_files)
            try:
                con.execute(f'CREATE VIEW "{name}" AS {view}')
            except _duckdb.Error as exc:
                con.close()
                raise QueryError(
                    f"table {name}: {str(exc).splitlines()[0]}",
                    hint="a file in the lake is not valid Parquet: `mantissa engines check --deep` lists it",
                ) from None
            if spec.kind == "logs":
                log_tables.append(name)
        common = ", ".join(f'"{c}"' for c in COMMON_COLUMNS)
        union = " UNION ALL ".join(
            f'SELECT {common}, year, month, day, hour FROM "{t}"' for t in log_tables
        )
        con.execute(f"CREATE VIEW {EVENTS_VIEW} AS {union}")
        con.execute(f"SET allowed_directories=[{_q(self.storage.uri() + '/')}]")
        con.execute("SET enable_external_access=false")
        con.execute("SET autoinstall_known_extensions=false")
        con.execute("SET autoload_known_extensions=false")
        con.execute("SET lock_configuration=true")
        return con

    # -- queries --------------------------------------------------------------
    def prepare(self, sql: str) -> str:
        """Guard the SQL and add partition filters; returns the SQL that will run."""
        guarded = guard(sql, self.tables())
        partitioned = set(tables()) | {EVENTS_VIEW}
        tree = add_partition_filters(guarded.expression, partitioned)
        return tree.sql(dialect="duckdb")

    def execute(self, sql: str, parameters: dict[str, Any] | None = None) -> QueryResult:
        final = self.prepare(sql)
        con = self.connect()
        timer = threading.Timer(self.timeout_secs, con.interrupt)
        start = time.perf_counter()
        timer.start()
        try:
            cur = con.execute(final, parameters or None)
            columns = [d[0] for d in cur.description or []]
            types = [str(d[1]) for d in cur.description or []]
            rows = cur.fetchmany(self.max_rows + 1)
        except _duckdb.InterruptException:
            raise QueryTimeout(
                f"query ran longer than {self.timeout_secs:g}s and was stopped",
                hint="narrow the time range or raise engine.timeout_secs",
            ) from None
        except _duckdb.PermissionException as exc:
            raise QueryError(f"blocked by the engine sandbox: {exc}") from None
        except _duckdb.Error as exc:
            raise QueryError(str(exc).split("\n")[0]) from None
        finally:
            timer.cancel()
            con.close()
        elapsed = (time.perf_counter() - start) * 1000
        truncated = len(rows) > self.max_rows
        return QueryResult(
            sql=final,
            columns=columns,
            rows=[list(r) for r in rows[: self.max_rows]],
            elapsed_ms=elapsed,
            truncated=truncated,
            column_types=types,
        )

    def estimate_cost(self, sql: str) -> CostEstimate:
        guarded = guard(sql, self.tables())
        now = dt.datetime.now(dt.UTC)
        specs = tables()
        names = [t for t in guarded.tables if t in specs]
        if EVENTS_VIEW in guarded.tables:
            names = [*names, *[n for n, s in specs.items() if s.kind == "logs" and n not in names]]
        nbytes = nfiles = 0
        parts: set[tuple[str, tuple[int, int, int, int]]] = set()
        for name in names:
            lo, hi = bounds_for_table(guarded.expression, name, now)
            if lo is None and hi is None and EVENTS_VIEW in guarded.tables:
                lo, hi = bounds_for_table(guarded.expression, EVENTS_VIEW, now)
            for obj in table_files(self.storage, specs[name]):
                p = parse_partition(obj.key)
                if p is None or not hours_in_range(lo, hi, p):
                    continue
                nbytes += obj.size
                nfiles += 1
                parts.add((name, p))
        return CostEstimate(
            engine=self.type,
            bytes_scanned=nbytes,
            files=nfiles,
            partitions=len(parts),
            price_usd=0.0,
            tables=names,
            note="local DuckDB: no per-query charge; Athena-equivalent "
            f"${nbytes / 1e12 * 5:.6f} at $5/TB",
        )
