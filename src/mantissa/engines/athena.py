"""Amazon Athena (Trino) over the lake in S3, tables in the Glue catalog.

``engine: {type: athena, database: mantissa, workgroup: primary,
output_location: "s3://bucket/athena-results/", region: us-east-1}``. The tables are
created by ``mantissa lake register --engine athena`` (Glue tables with partition
projection, so new hours need no ``MSCK REPAIR``).

The request flow follows the Athena API reference: ``StartQueryExecution`` (workgroup,
database, output location), ``GetQueryExecution`` polled with exponential backoff until
``SUCCEEDED`` / ``FAILED`` / ``CANCELLED`` (``StopQueryExecution`` on our timeout), then
``GetQueryResults`` paginated with ``NextToken`` (the first row of the first page is the
header). Throttling (``ThrottlingException``, ``TooManyRequestsException``) is retried
with backoff. Cost: Athena bills $5 per TB scanned with a 10 MB minimum per query
(https://aws.amazon.com/athena/pricing/); the estimate prices our pruned scan, the
actual ``Statistics.DataScannedInBytes`` is what the daily budget records.
"""

from __future__ import annotations

import datetime as dt
import decimal
import os
import random
import time
from collections.abc import Callable
from typing import Any

from mantissa.engines.base import CostEstimate, QueryEngine, QueryResult
from mantissa.engines.guard import guard
from mantissa.engines.pruning import add_partition_filters
from mantissa.engines.scan import Budget, bind_parameters, budget_options, plan_scan
from mantissa.errors import ConfigError, QueryError, QueryTimeout
from mantissa.lake.catalog import EVENTS_VIEW, tables
from mantissa.lake.storage import Storage

MIN_BILLED_BYTES = 10 * 1024 * 1024
THROTTLE_CODES = {
    "ThrottlingException",
    "TooManyRequestsException",
    "SlowDown",
    "RequestLimitExceeded",
}


def athena_price(nbytes: int, usd_per_tb: float = 5.0) -> float:
    """Athena's bill for scanning ``nbytes`` (10 MB minimum per query)."""
    return max(nbytes, MIN_BILLED_BYTES) / 1e12 * usd_per_tb


def _convert(value: str | None, typ: str) -> Any:
    """An Athena result cell (always text) as a Python value of its column type."""
    if value is None:
        return None
    t = typ.lower()
    if t in ("tinyint", "smallint", "integer", "int", "bigint"):
        return int(value)
    if t in ("double", "float", "real"):
        return float(value)
    if t.startswith("decimal"):
        return float(decimal.Decimal(value))
    if t == "boolean":
        return value.lower() == "true"
    if t.startswith("timestamp"):
        text = value.replace(" UTC", "").strip()
        v = dt.datetime.fromisoformat(text.replace(" ", "T"))
        return v.replace(tzinfo=dt.UTC) if v.tzinfo is None else v.astimezone(dt.UTC)
    if t == "date":
        return dt.date.fromisoformat(value)
    return value


class AthenaEngine(QueryEngine):
    type = "athena"
    dialect = "athena"

    def __init__(
        self,
        storage: Storage,
        database: str = "mantissa",
        workgroup: str = "primary",
        output_location: str | None = None,
        catalog: str = "AwsDataCatalog",
        region: str | None = None,
        endpoint_url: str | None = None,
        timeout_secs: float = 300.0,
        max_rows: int = 100_000,
        usd_per_tb: float = 5.0,
        poll_initial_secs: float = 0.2,
        poll_max_secs: float = 5.0,
        max_retries: int = 6,
        client: Any = None,
        **options: Any,
    ) -> None:
        self.storage = storage
        self.database = database
        self.workgroup = workgroup
        self.output_location = output_location
        self.catalog = catalog
        self.region = region
        self.endpoint_url = endpoint_url
        self.timeout_secs = timeout_secs
        self.max_rows = max_rows
        self.usd_per_tb = usd_per_tb
        self.poll_initial_secs = poll_initial_secs
        self.poll_max_secs = poll_max_secs
        self.max_retries = max_retries
        self.budget = Budget(storage, self.type, **budget_options(options))
        self._client = client
        self.last_execution: dict[str, Any] | None = None

    # -- clients --------------------------------------------------------------------
    def _boto(self, service: str) -> Any:
        try:
            import boto3
            from botocore.config import Config
        except ImportError:
            raise ConfigError(
                "the athena engine needs boto3", hint="pip install 'mantissa-log[aws]'"
            ) from None
        # Credentials: the standard AWS chain only (env, profile, SSO, instance role).
        ep = (
            self.endpoint_url
            or os.environ.get(f"AWS_ENDPOINT_URL_{service.upper()}")
            or os.environ.get("AWS_ENDPOINT_URL")
        )
        return boto3.client(
            service,
            region_name=self.region,
            endpoint_url=ep,
            # our own loop retries throttling (with jitter) so the count is ours to bound
            config=Config(retries={"mode": "standard", "max_attempts": 1}),
        )

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = self._boto("athena")
        return self._client

    def _call(self, name: str, **kwargs: Any) -> Any:
        """One API call, retried with jittered backoff while Athena throttles."""
        from botocore.exceptions import ClientError, NoCredentialsError

        fn: Callable[..., Any] = getattr(self.client, name)
        delay = self.poll_initial_secs
        for attempt in range(self.max_retries + 1):
            try:
                return fn(**kwargs)
            except ClientError as exc:
                code = exc.response.get("Error", {}).get("Code", "")
                msg = exc.response.get("Error", {}).get("Message", "")
                if code in THROTTLE_CODES and attempt < self.max_retries:
                    time.sleep(delay * (0.5 + random.random()))
                    delay = min(delay * 2, self.poll_max_secs)
                    continue
                raise self._error(name, code, msg) from None
            except NoCredentialsError:
                raise QueryError(
                    f"Athena {name}: no AWS credentials found",
                    hint="provide them through the standard chain (env, profile, instance role)",
                ) from None
        raise QueryError(f"Athena {name}: still throttled after {self.max_retries} retries")

    def _error(self, call: str, code: str, msg: str) -> QueryError:
        low = msg.lower()
        if code in ("AccessDeniedException", "UnrecognizedClientException"):
            return QueryError(
                f"Athena {call}: permission denied ({code})",
                hint="grant athena:StartQueryExecution/GetQueryExecution/GetQueryResults, "
                "glue:GetTable/GetPartitions and s3:GetObject on the lake and PutObject on "
                "the output location",
            )
        if "expired" in low:
            return QueryError(
                f"Athena {call}: the AWS credentials have expired", hint="refresh them"
            )
        if "database" in low and ("not found" in low or "does not exist" in low):
            return QueryError(
                f"Athena {call}: database {self.database!r} does not exist",
                hint="run `mantissa lake register --engine athena`",
            )
        if "output location" in low or "outputlocation" in low:
            return QueryError(
                f"Athena {call}: no query result location",
                hint="set engine.output_location (s3://bucket/prefix/) or a workgroup with one",
            )
        return QueryError(f"Athena {call}: {code}: {msg[:300]}")

    # -- interface ------------------------------------------------------------------
    def tables(self) -> list[str]:
        return [*tables(), EVENTS_VIEW]

    def prepare(self, sql: str, parameters: dict[str, Any] | None = None) -> str:
        guarded = guard(sql, self.tables())
        tree = add_partition_filters(guarded.expression, set(tables()) | {EVENTS_VIEW})
        if parameters:
            tree = bind_parameters(tree, parameters)
        return tree.sql(dialect="athena")

    def estimate_cost(self, sql: str) -> CostEstimate:
        scan = plan_scan(self.storage, guard(sql, self.tables()))
        return CostEstimate(
            engine=self.type,
            bytes_scanned=scan.bytes,
            files=scan.file_count,
            partitions=scan.partitions,
            price_usd=athena_price(scan.bytes, self.usd_per_tb),
            tables=scan.tables,
            note=f"Athena ${self.usd_per_tb}/TB scanned, 10 MB minimum per query; "
            "Parquet column pruning usually scans less",
        )

    def start(self, sql: str) -> str:
        """Submit ``sql`` (already in Athena's dialect); returns the execution id."""
        kwargs: dict[str, Any] = {
            "QueryString": sql,
            "QueryExecutionContext": {"Database": self.database, "Catalog": self.catalog},
            "WorkGroup": self.workgroup,
        }
        if self.output_location:
            kwargs["ResultConfiguration"] = {"OutputLocation": self.output_location}
        return str(self._call("start_query_execution", **kwargs)["QueryExecutionId"])

    def wait(self, qid: str) -> dict[str, Any]:
        """Poll until the execution ends; returns its ``QueryExecution`` document."""
        deadline = time.monotonic() + self.timeout_secs
        delay = self.poll_initial_secs
        while True:
            qe = self._call("get_query_execution", QueryExecutionId=qid)["QueryExecution"]
            state = qe["Status"]["State"]
            if state == "SUCCEEDED":
                return qe
            if state in ("FAILED", "CANCELLED"):
                reason = qe["Status"].get("StateChangeReason") or state.lower()
                hint = None
                if "HIVE_CANNOT_OPEN_SPLIT" in reason or "HIVE_BAD_DATA" in reason:
                    hint = "a file in the lake is not valid Parquet: find it with `mantissa engines check`"
                elif "TABLE_NOT_FOUND" in reason or "does not exist" in reason:
                    hint = "run `mantissa lake register --engine athena`"
                raise QueryError(f"Athena query {qid} {state}: {reason[:400]}", hint=hint)
            if time.monotonic() >= deadline:
                self._call("stop_query_execution", QueryExecutionId=qid)
                raise QueryTimeout(
                    f"Athena query {qid} ran longer than {self.timeout_secs:g}s and was stopped",
                    hint="narrow the time range or raise engine.timeout_secs",
                )
            time.sleep(delay)
            delay = min(delay * 1.6, self.poll_max_secs)

    def results(self, qid: str) -> tuple[list[str], list[str], list[list[Any]], bool]:
        """Every page of ``GetQueryResults`` up to ``max_rows``: columns, types, rows, truncated."""
        columns: list[str] = []
        types: list[str] = []
        rows: list[list[Any]] = []
        token: str | None = None
        first = True
        while True:
            kwargs: dict[str, Any] = {"QueryExecutionId": qid, "MaxResults": 1000}
            if token:
                kwargs["NextToken"] = token
            page = self._call("get_query_results", **kwargs)
            rs = page["ResultSet"]
            if first:
                info = rs.get("ResultSetMetadata", {}).get("ColumnInfo", [])
                columns = [c.get("Label") or c["Name"] for c in info]
                types = [c.get("Type", "varchar") for c in info]
            data = rs.get("Rows", [])
            if first and data:
                header = [d.get("VarCharValue") for d in data[0].get("Data", [])]
                if header == columns:
                    data = data[1:]  # SELECT results repeat the column names as row one
            first = False
            for r in data:
                cells = [d.get("VarCharValue") for d in r.get("Data", [])]
                rows.append([_convert(v, t) for v, t in zip(cells, types, strict=False)])
                if len(rows) > self.max_rows:
                    return columns, types, rows[: self.max_rows], True
            token = page.get("NextToken")
            if not token:
                return columns, types, rows, False

    def execute(self, sql: str, parameters: dict[str, Any] | None = None) -> QueryResult:
        final = self.prepare(sql, parameters)
        est = self.estimate_cost(sql)
        self.budget.check(est)
        start = time.perf_counter()
        qid = self.start(final)
        qe = self.wait(qid)
        columns, types, rows, truncated = self.results(qid)
        scanned = int(qe.get("Statistics", {}).get("DataScannedInBytes", 0) or 0)
        self.last_execution = {
            "id": qid,
            "data_scanned_bytes": scanned,
            "price_usd": athena_price(scanned, self.usd_per_tb),
        }
        self.budget.record(athena_price(scanned, self.usd_per_tb), scanned)
        return QueryResult(
            sql=final,
            columns=columns,
            rows=rows,
            elapsed_ms=(time.perf_counter() - start) * 1000,
            truncated=truncated,
            column_types=types,
        )


def hive_type(duckdb_type: str) -> str:
    """A DuckDB column type as a Glue/Hive type string (``struct<a:string>``)."""
    from mantissa.engines.spark import spark_type

    return spark_type(duckdb_type).lower().replace(": ", ":").replace(", ", ",")


def glue_table_input(name: str, location: str, columns: list[tuple[str, str]]) -> dict[str, Any]:
    """A Glue ``TableInput`` for one lake table: Parquet, hive partitions, partition projection.

    Partition projection (https://docs.aws.amazon.com/athena/latest/ug/partition-projection.html)
    computes partitions from the template, so new hours are queryable without crawlers,
    ``MSCK REPAIR TABLE`` or ``BatchCreatePartition``.
    """
    location = location.rstrip("/") + "/"
    return {
        "Name": name,
        "TableType": "EXTERNAL_TABLE",
        "Parameters": {
            "classification": "parquet",
            "EXTERNAL": "TRUE",
            "projection.enabled": "true",
            "projection.year.type": "integer",
            "projection.year.range": "2000,2100",
            "projection.month.type": "integer",
            "projection.month.range": "1,12",
            "projection.month.digits": "2",
            "projection.day.type": "integer",
            "projection.day.range": "1,31",
            "projection.day.digits": "2",
            "projection.hour.type": "integer",
            "projection.hour.range": "0,23",
            "projection.hour.digits": "2",
            "storage.location.template": location
            + "year=${year}/month=${month}/day=${day}/hour=${hour}",
        },
        "StorageDescriptor": {
            "Columns": [{"Name": c, "Type": hive_type(t)} for c, t in columns],
            "Location": location,
            "InputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
            "OutputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
            "SerdeInfo": {
                "SerializationLibrary": "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
            },
        },
        "PartitionKeys": [{"Name": k, "Type": "int"} for k in ("year", "month", "day", "hour")],
    }


def register_athena(engine: AthenaEngine, only: list[str] | None = None) -> list[dict[str, str]]:
    """Create or update the Glue database, one table per lake table and the ``events`` view."""
    from botocore.exceptions import ClientError

    from mantissa.sources.base import COMMON_COLUMNS

    storage = engine.storage
    if not storage.uri().startswith("s3://"):
        raise ConfigError(
            "Athena reads the lake from S3 only",
            hint='set lake.url to "s3://bucket/prefix" in mantissa.yaml',
        )
    glue = engine._boto("glue")
    actions: list[dict[str, str]] = []
    try:
        glue.get_database(Name=engine.database)
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "EntityNotFoundException":
            raise engine._error("GetDatabase", exc.response["Error"]["Code"], str(exc)) from None
        glue.create_database(DatabaseInput={"Name": engine.database})
        actions.append({"object": engine.database, "action": "created database"})
    specs = tables()
    log_tables = []
    for name, spec in specs.items():
        if only and name not in only:
            continue
        table_input = glue_table_input(name, storage.uri(spec.prefix), list(spec.schema()))
        try:
            glue.get_table(DatabaseName=engine.database, Name=name)
            glue.update_table(DatabaseName=engine.database, TableInput=table_input)
            actions.append({"object": f"{engine.database}.{name}", "action": "updated table"})
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "EntityNotFoundException":
                raise engine._error("GetTable", exc.response["Error"]["Code"], str(exc)) from None
            glue.create_table(DatabaseName=engine.database, TableInput=table_input)
            actions.append({"object": f"{engine.database}.{name}", "action": "created table"})
        if spec.kind == "logs":
            log_tables.append(name)
    if log_tables and not only:
        common = ", ".join(f'"{c}"' for c in COMMON_COLUMNS)
        union = " UNION ALL ".join(
            f'SELECT {common}, year, month, day, hour FROM "{t}"' for t in log_tables
        )
        qid = engine.start(f'CREATE OR REPLACE VIEW "{EVENTS_VIEW}" AS {union}')
        engine.wait(qid)
        actions.append({"object": f"{engine.database}.{EVENTS_VIEW}", "action": "replaced view"})
    return actions
