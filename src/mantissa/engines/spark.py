"""Apache Spark: Spark SQL over the same hive-partitioned Parquet lake.

``engine: {type: spark, master: "local[2]"}`` runs an embedded local Spark (tests, one
big machine); ``master: "spark://host:7077"`` or ``"yarn"`` uses a cluster, and
``connect_url: "sc://host:15002"`` uses Spark Connect. Each table is a temporary view
over the lake's *committed* files (``spark.read.parquet(*files)`` with ``basePath`` so
that ``year/month/day/hour`` become partition columns), so Spark never reads an
uncommitted or compacted-away object. SQL arrives in the DuckDB dialect, passes the
guard and partition pruning, and is transpiled to Spark SQL with sqlglot.

Results come back through Arrow (``DataFrame.toArrow``) with the session time zone
pinned to UTC, so timestamps are the same UTC instants DuckDB returns.

Reading ``s3://`` from Spark needs the ``hadoop-aws`` connector of your Spark
distribution (``spark.jars.packages: org.apache.hadoop:hadoop-aws:<hadoop version>``);
the engine rewrites ``s3://`` to ``s3a://`` for it. See docs/scale.md.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
import uuid
from typing import Any

from sqlglot import exp

from mantissa.engines.base import CostEstimate, QueryEngine, QueryResult
from mantissa.engines.guard import guard
from mantissa.engines.pruning import add_partition_filters
from mantissa.engines.scan import (
    Budget,
    all_table_files,
    bind_parameters,
    budget_options,
    plan_scan,
)
from mantissa.errors import ConfigError, QueryError, QueryTimeout
from mantissa.lake.catalog import EVENTS_VIEW, TableSpec, tables
from mantissa.lake.storage import Storage
from mantissa.sources.base import COMMON_COLUMNS

_SESSIONS: dict[str, Any] = {}
_SESSION_LOCK = threading.Lock()
# SQL settings every engine session runs with (a new session starts from Spark's defaults)
_RUNTIME_CONF = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.shuffle.partitions": "8",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.sql.parquet.mergeSchema": "false",
    # vendor tables carry columns differing only in case (``source``/``Source``)
    "spark.sql.caseSensitive": "true",
    # Constraint propagation infers filters from every aliased expression; over a packed
    # rule unit (a CASE and a match flag per rule, OR-ed per rule) it grows exponentially
    # and the optimizer never finishes. The SQL carries its own filters.
    "spark.sql.constraintPropagation.enabled": "false",
}


def spark_type(duckdb_type: str) -> str:
    """A DuckDB column type in Spark SQL (via sqlglot; JSON and unknowns become STRING)."""
    t = duckdb_type.strip()
    try:
        tree = exp.DataType.build(t, dialect="duckdb")
    except Exception:
        return "STRING"
    text_types = {exp.DataType.Type.JSON, exp.DataType.Type.UUID}
    ts_types = {exp.DataType.Type.TIMESTAMPTZ, exp.DataType.Type.TIMESTAMPLTZ}

    def fix(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.DataType) and node.this in text_types:
            return exp.DataType.build("STRING")
        if isinstance(node, exp.DataType) and node.this in ts_types:
            return exp.DataType.build("TIMESTAMP")
        return node

    try:
        return tree.transform(fix).sql(dialect="spark")
    except Exception:
        return "STRING"


def _now_to_current_timestamp(tree: exp.Expression) -> exp.Expression:
    tree = tree.copy()
    for node in list(tree.find_all(exp.Anonymous)):
        # DuckDB's now() is Spark's current_timestamp()
        if node.name.lower() == "now" and not node.expressions:
            node.replace(exp.CurrentTimestamp())
    return tree


def _percentiles(tree: exp.Expression) -> exp.Expression:
    """DuckDB's ``quantile_cont(x, p)`` as Spark's ``percentile(x, p)``.

    sqlglot writes ``percentile_cont(x, p)``, which Spark 4 rejects (it takes only the
    WITHIN GROUP form); ``percentile`` is the same exact, linearly interpolated value.
    """

    def fix(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.PercentileCont) and node.args.get("expression") is not None:
            return exp.Anonymous(
                this="percentile", expressions=[node.this.copy(), node.expression.copy()]
            )
        return node

    return tree.transform(fix)


def to_spark_sql(tree: exp.Expression) -> str:
    """Spark SQL for a guarded DuckDB-dialect tree, with the fixes sqlglot does not make."""
    return _percentiles(_now_to_current_timestamp(tree)).sql(dialect="spark")


class SparkEngine(QueryEngine):
    type = "spark"
    dialect = "spark"

    def __init__(
        self,
        storage: Storage,
        master: str = "local[2]",
        connect_url: str | None = None,
        app_name: str = "mantissa",
        conf: dict[str, Any] | None = None,
        timeout_secs: float = 300.0,
        max_rows: int = 100_000,
        usd_per_tb: float = 0.0,
        **options: Any,
    ) -> None:
        self.storage = storage
        self.master = master
        self.connect_url = connect_url
        self.app_name = app_name
        self.conf = dict(conf or {})
        self.timeout_secs = timeout_secs
        self.max_rows = max_rows
        self.usd_per_tb = usd_per_tb
        self.budget = Budget(storage, self.type, **budget_options(options))
        self._registered: tuple[tuple[str, int], ...] | None = None
        self._session: Any = None

    # -- session ------------------------------------------------------------------
    @property
    def spark(self) -> Any:
        """This engine's own session: temp views and SQL conf isolated from other engines.

        One Spark application (JVM, executors, caches) serves every engine on the same
        master; each engine works in a ``newSession()`` of it, so two engines over two
        lakes (a test's lake and the demo's, two tenants) never see each other's views.
        """
        if self._session is None:
            key = self.connect_url or self.master
            with _SESSION_LOCK:
                if key not in _SESSIONS:
                    _SESSIONS[key] = self._build_session()
                base = _SESSIONS[key]
            session = base.newSession()
            for k, v in self._settings().items():
                if k.startswith("spark.sql.") and session.conf.isModifiable(k):
                    session.conf.set(k, v)  # static ones came with the application
            self._session = session
        return self._session

    def _settings(self) -> dict[str, str]:
        """Spark settings: ours, then ``engine.conf`` from mantissa.yaml on top."""
        defaults = {
            **_RUNTIME_CONF,
            "spark.ui.enabled": "false",
            "spark.ui.showConsoleProgress": "false",
            "spark.driver.extraJavaOptions": "-Duser.timezone=UTC",
            "spark.executor.extraJavaOptions": "-Duser.timezone=UTC",
        }
        if not self.connect_url and self.master.startswith("local"):
            # Listing the committed files "in parallel" is one Spark task per file; in local
            # mode those tasks run in this JVM anyway, so list on the driver instead.
            defaults["spark.sql.sources.parallelPartitionDiscovery.threshold"] = "100000"
            # Spark's 1 GB default heap thrashes in GC on the packed rule library's plans
            # (hundreds of predicates per scan) and can die collecting the result
            defaults["spark.driver.memory"] = "3g"
        return {k: str(v) for k, v in {**defaults, **self.conf}.items()}

    def _build_session(self) -> Any:
        try:
            from pyspark.sql import SparkSession
        except ImportError:
            raise ConfigError(
                "the spark engine needs pyspark", hint="pip install 'mantissa-log[spark]'"
            ) from None
        builder = SparkSession.builder.appName(self.app_name)
        builder = (
            builder.remote(self.connect_url) if self.connect_url else builder.master(self.master)
        )
        for k, v in self._settings().items():
            builder = builder.config(k, str(v))
        try:
            session = builder.getOrCreate()
        except Exception as exc:
            raise ConfigError(
                f"cannot start Spark ({self.connect_url or self.master}): {str(exc).splitlines()[0]}",
                hint="is Java 17+ installed (java -version) and the master reachable?",
            ) from None
        if not self.connect_url:
            session.sparkContext.setLogLevel("ERROR")
        # PySpark logs every failed query as a JSON stack trace on stderr; the caller gets
        # the error (first line, with its SQLSTATE) as a QueryError instead
        from pyspark.logger import PySparkLogger

        for name in ("SQLQueryContextLogger", "DataFrameQueryContextLogger"):
            PySparkLogger.getLogger(name).setLevel(logging.CRITICAL)
        return session

    def _uri(self, uri: str) -> str:
        """A lake URI as Hadoop's connectors name it (s3a://, gs://, abfss://c@account...)."""
        if uri.startswith("s3://"):
            return "s3a://" + uri[5:]
        if uri.startswith("abfs://"):
            # hadoop-azure addresses a container as abfss://<container>@<account>.dfs...
            account = getattr(getattr(self.storage, "fs", None), "account_name", None)
            container, _, rest = uri[len("abfs://") :].partition("/")
            if account:
                return f"abfss://{container}@{account}.dfs.core.windows.net/{rest}"
        return uri

    def _register(self) -> None:
        """(Re)define one temp view per table over its committed files."""
        specs = tables()
        files = all_table_files(self.storage, specs)
        fingerprint = tuple(sorted((n, hash(tuple(u))) for n, u in files.items()))
        if fingerprint == self._registered:
            return
        spark = self.spark
        log_tables = []
        for name, spec in specs.items():
            uris = files.get(name)
            if uris:
                df = (
                    spark.read.option("basePath", self._uri(self.storage.uri(spec.prefix)))
                    .option("mergeSchema", "true")
                    .parquet(*[self._uri(u) for u in uris])
                )
                df.createOrReplaceTempView(name)
            else:
                spark.sql(self._empty_view_sql(spec)).createOrReplaceTempView(name)
            if spec.kind == "logs":
                log_tables.append(name)
        common = ", ".join(f"`{c}`" for c in COMMON_COLUMNS)
        union = " UNION ALL ".join(
            f"SELECT {common}, year, month, day, hour FROM `{t}`" for t in log_tables
        )
        spark.sql(union).createOrReplaceTempView(EVENTS_VIEW)
        self._registered = fingerprint

    @staticmethod
    def _empty_view_sql(spec: TableSpec) -> str:
        cols = ", ".join(f"CAST(NULL AS {spark_type(t)}) AS `{c}`" for c, t in spec.schema())
        return (
            f"SELECT {cols}, CAST(NULL AS INT) AS year, CAST(NULL AS INT) AS month, "
            "CAST(NULL AS INT) AS day, CAST(NULL AS INT) AS hour WHERE false"
        )

    # -- interface ------------------------------------------------------------------
    def tables(self) -> list[str]:
        return [*tables(), EVENTS_VIEW]

    def prepare(self, sql: str, parameters: dict[str, Any] | None = None) -> str:
        guarded = guard(sql, self.tables())
        tree = add_partition_filters(guarded.expression, set(tables()) | {EVENTS_VIEW})
        if parameters:
            tree = bind_parameters(tree, parameters)
        return to_spark_sql(tree)

    def estimate_cost(self, sql: str) -> CostEstimate:
        guarded = guard(sql, self.tables())
        scan = plan_scan(self.storage, guarded)
        return CostEstimate(
            engine=self.type,
            bytes_scanned=scan.bytes,
            files=scan.file_count,
            partitions=scan.partitions,
            price_usd=scan.bytes / 1e12 * self.usd_per_tb,
            tables=scan.tables,
            note=f"Spark reads {scan.file_count} files; price from engine.usd_per_tb "
            f"(${self.usd_per_tb}/TB, 0 = your own cluster)",
        )

    def execute(self, sql: str, parameters: dict[str, Any] | None = None) -> QueryResult:
        final = self.prepare(sql, parameters)
        return self._run(final, self.estimate_cost(sql))

    def execute_tree(self, tree: exp.Expression) -> QueryResult:
        """Run a detection tree from the Sigma backend, rendered by the Spark dialect layer.

        Transpiling the DuckDB text would lose what sqlglot cannot carry across (any-element
        array matching, JSON paths, LIKE escapes): the tree renders directly.
        """
        from mantissa.detect.dialects import render

        duck = render(tree, "duckdb")
        guard(duck, self.tables())  # read-only, known tables
        pruned = add_partition_filters(tree.copy(), set(tables()) | {EVENTS_VIEW})
        final = render(_now_to_current_timestamp(pruned), "spark")
        return self._run(final, self.estimate_cost(duck))

    def _run(self, final: str, est: CostEstimate) -> QueryResult:
        self.budget.check(est)
        self._register()
        spark = self.spark
        group = f"mantissa-{uuid.uuid4().hex[:12]}"
        timer: threading.Timer | None = None
        timed_out = threading.Event()
        if not self.connect_url:
            sc = spark.sparkContext
            sc.setJobGroup(group, "mantissa query", interruptOnCancel=True)

            def cancel() -> None:
                timed_out.set()
                sc.cancelJobGroup(group)

            timer = threading.Timer(self.timeout_secs, cancel)
            timer.start()
        start = time.perf_counter()
        try:
            df = spark.sql(final)
            table = df.limit(self.max_rows + 1).toArrow()
        except Exception as exc:
            if timed_out.is_set():
                raise QueryTimeout(
                    f"query ran longer than {self.timeout_secs:g}s and was cancelled",
                    hint="narrow the time range or raise engine.timeout_secs",
                ) from None
            raise QueryError(f"Spark: {_first_line(exc)}") from None
        finally:
            if timer is not None:
                timer.cancel()
        elapsed = (time.perf_counter() - start) * 1000
        columns = list(table.column_names)
        cols = [_column_values(table.column(i)) for i in range(table.num_columns)]
        rows = [list(r) for r in zip(*cols, strict=True)] if cols else []
        truncated = len(rows) > self.max_rows
        self.budget.record(est.price_usd, est.bytes_scanned)
        return QueryResult(
            sql=final,
            columns=columns,
            rows=rows[: self.max_rows],
            elapsed_ms=elapsed,
            truncated=truncated,
            column_types=[str(f.type) for f in table.schema],
        )

    def register(self, only: list[str] | None = None) -> list[dict[str, str]]:
        """Catalog tables over the lake (persistent with a Hive metastore), partitions recovered.

        Queries through this engine use the committed file lists; the catalog tables are
        for other Spark users (notebooks, jobs) of the same cluster.
        """
        spark = self.spark
        actions = []
        for name, spec in tables().items():
            if only and name not in only:
                continue
            if not any(True for _ in self.storage.list(spec.prefix, ".parquet")):
                continue
            loc = self._uri(self.storage.uri(spec.prefix)).replace("'", "\\'")
            existed = spark.catalog.tableExists(f"mantissa_{name}")
            if not existed:
                # schema and the year/month/day/hour partition columns are inferred
                spark.sql(f"CREATE TABLE mantissa_{name} USING parquet LOCATION '{loc}'")
            spark.sql(f"ALTER TABLE mantissa_{name} RECOVER PARTITIONS")
            actions.append(
                {
                    "object": f"mantissa_{name}",
                    "action": "recovered partitions" if existed else "created table",
                }
            )
        return actions

    def close(self) -> None:
        self._registered = None


def _column_values(col: Any) -> list[Any]:
    """Python values of an Arrow column; timestamps as aware UTC datetimes."""
    values = col.to_pylist()
    if str(col.type).startswith("timestamp") and "tz=" not in str(col.type):
        return [v.replace(tzinfo=dt.UTC) if isinstance(v, dt.datetime) else v for v in values]
    return values


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    for line in text.splitlines():
        if line.strip():
            return line.strip()[:500]
    return type(exc).__name__
