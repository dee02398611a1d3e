"""DuckDB over the local (or mounted) Parquet lake: the embedded default engine.

Each engine owns one in-memory database: one view per table over its hive-partitioned
files, locked once (``enable_external_access=false``, ``allowed_directories`` = the lake,
``lock_configuration=true``); each query runs on its own cursor with a statement timeout
(``interrupt``) and a row cap.
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
        self._lock = threading.Lock()
        self._db: _duckdb.DuckDBPyConnection | None = None
        self._views: dict[str, object] = {}

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
        """A locked-down session (a cursor on this engine's database) with every table as a view.

        The database is created and locked once per engine; its views are refreshed only
        when a table's file set changes (its first file, or a new committed list on object
        stores), so Parquet footers stay cached (``parquet_metadata_cache``) across queries.
        """
        with self._lock:
            if self._db is None:
                self._db = self._open_database()
            self._refresh_views(self._db)
            return self._db.cursor()

    def _open_database(self) -> _duckdb.DuckDBPyConnection:
        db = _duckdb.connect(config={"threads": self.threads} if self.threads else {})
        db.execute("SET TimeZone='UTC'")
        db.execute(f"SET memory_limit={_q(self.memory_limit)}")
        # Views read with union_by_name re-read every file footer at each bind; the cache
        # keeps footers between queries of this long-lived database.
        db.execute("SET parquet_metadata_cache=true")
        if not self.storage.is_local():
            self.storage.attach(db)
        db.execute(f"SET allowed_directories=[{_q(self.storage.uri() + '/')}]")
        db.execute("SET enable_external_access=false")
        db.execute("SET autoinstall_known_extensions=false")
        db.execute("SET autoload_known_extensions=false")
        db.execute("SET lock_configuration=true")
        return db

    def _refresh_views(self, db: _duckdb.DuckDBPyConnection) -> None:
        specs = tables()
        # Object stores: hand DuckDB the committed file list (a glob would also see
        # uncommitted or compacted-away objects; see lake/objectstore.py).
        remote = None if self.storage.is_local() else committed_files(self.storage, specs)
        log_tables = []
        changed = False
        for name, spec in specs.items():
            if remote is not None:
                files = tuple(remote.get(name, []))
                signature: object = files
                view = _file_list_view_sql(spec, list(files), self._view_sql)
            else:
                has_files = self._views.get(name) is True or any(
                    True for _ in self.storage.list(spec.prefix, ".parquet")
                )
                signature = has_files
                view = self._view_sql(spec, has_files) if self._views.get(name) != has_files else ""
            if spec.kind == "logs":
                log_tables.append(name)
            if self._views.get(name) == signature:
                continue
            try:
                db.execute(f'CREATE OR REPLACE VIEW "{name}" AS {view}')
            except _duckdb.Error as exc:
                raise QueryError(
                    f"table {name}: {str(exc).splitlines()[0]}",
                    hint="a file in the lake is not valid Parquet: `mantissa engines check --deep` lists it",
                ) from None
            self._views[name] = signature
            changed = True
        if changed or EVENTS_VIEW not in self._views:
            common = ", ".join(f'"{c}"' for c in COMMON_COLUMNS)
            union = " UNION ALL ".join(
                f'SELECT {common}, year, month, day, hour FROM "{t}"' for t in log_tables
            )
            db.execute(f"CREATE OR REPLACE VIEW {EVENTS_VIEW} AS {union}")
            self._views[EVENTS_VIEW] = True

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None
                self._views = {}

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
