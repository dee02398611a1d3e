"""Google BigQuery over the lake in GCS, as external tables with hive partitioning.

``engine: {type: bigquery, project: my-project, dataset: mantissa, location: EU,
max_bytes_billed: 10000000000}``. The tables are created by ``mantissa lake register
--engine bigquery`` (one external Parquet table per lake table with
``hivePartitioningOptions``, plus an ``events`` view).

The request flow is the one ``google-cloud-bigquery`` drives over the REST API
(https://cloud.google.com/bigquery/docs/reference/rest): ``jobs.insert`` with
``configuration.query`` (``useLegacySql: false``, ``defaultDataset``, named
``queryParameters`` — values are never spliced into the SQL), then
``jobs.getQueryResults`` until the job is ``DONE`` and the rows paged with ``pageToken``.
``estimate_cost`` is a dry run (``configuration.dryRun``): ``totalBytesProcessed`` priced
at the on-demand list price, $6.25 per TiB with a 10 MB minimum per query
(https://cloud.google.com/bigquery/pricing). ``rateLimitExceeded`` (403) and 429 answers
are retried with backoff; a job's ``errorResult`` becomes a :class:`QueryError` naming
the job and the fix.

Credentials come from Application Default Credentials only (``GOOGLE_APPLICATION_CREDENTIALS``,
``gcloud auth application-default login``, the metadata server / workload identity).
``endpoint`` overrides the API root (tests point it at a stub on 127.0.0.1).
"""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import decimal
import time
from typing import Any

from sqlglot import exp

from mantissa.engines.base import CostEstimate, QueryEngine, QueryResult
from mantissa.engines.guard import GuardedQuery, guard
from mantissa.engines.pruning import add_partition_filters
from mantissa.engines.scan import Budget, budget_options, plan_scan
from mantissa.errors import ConfigError, QueryError, QueryTimeout
from mantissa.lake.catalog import EVENTS_VIEW, tables
from mantissa.lake.storage import Storage

REQUIRES = {"google.cloud.bigquery": "gcp"}  # checked by `mantissa engines list`
TIB = 1024**4
MIN_BILLED_BYTES = 10 * 1024 * 1024
USD_PER_TIB = 6.25
RETRY_REASONS = {"rateLimitExceeded", "backendError", "internalError", "badGateway"}
PARTITION_KEYS = ("year", "month", "day", "hour")


def bigquery_price(nbytes: int, usd_per_tib: float = USD_PER_TIB) -> float:
    """BigQuery on-demand price of processing ``nbytes`` (10 MB minimum per query)."""
    return max(nbytes, MIN_BILLED_BYTES) / TIB * usd_per_tib


def _param_type(value: Any) -> str:
    if isinstance(value, bool):
        return "BOOL"
    if isinstance(value, int):
        return "INT64"
    if isinstance(value, float):
        return "FLOAT64"
    if isinstance(value, decimal.Decimal):
        return "NUMERIC"
    if isinstance(value, dt.datetime):
        return "TIMESTAMP"
    if isinstance(value, dt.date):
        return "DATE"
    if isinstance(value, bytes):
        return "BYTES"
    return "STRING"


_NAIVE_TS = {
    t
    for t in (
        getattr(exp.DataType.Type, n, None) for n in ("TIMESTAMP", "TIMESTAMPNTZ", "DATETIME")
    )
    if t is not None
}


def to_bigquery_sql(tree: exp.Expression) -> tuple[str, list[str]]:
    """BigQuery SQL for a guarded DuckDB-dialect tree; ``$x`` / ``:x`` become ``@x``."""
    names: list[str] = []

    def repl(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Placeholder | exp.Parameter):
            if node.name not in names:
                names.append(node.name)
            return exp.Parameter(this=exp.Var(this=node.name))
        if isinstance(node, exp.Anonymous) and node.name.lower() == "now" and not node.expressions:
            return exp.CurrentTimestamp()
        if isinstance(node, exp.DataType) and node.this in _NAIVE_TS:
            # the lake's timestamps are UTC instants: BigQuery TIMESTAMP, not DATETIME
            # (comparing TIMESTAMP with DATETIME has no matching signature)
            return exp.DataType.build("TIMESTAMPTZ")
        return node

    return tree.copy().transform(repl).sql(dialect="bigquery"), names


class BigQueryEngine(QueryEngine):
    """Queries the lake through BigQuery external tables."""

    type = "bigquery"
    dialect = "bigquery"
    native_questions = True  # questions run as their plan rendered in this dialect

    def __init__(
        self,
        storage: Storage,
        project: str | None = None,
        dataset: str = "mantissa",
        location: str = "US",
        max_bytes_billed: int | None = None,
        endpoint: str | None = None,
        timeout_secs: float = 300.0,
        max_rows: int = 100_000,
        page_size: int = 10_000,
        usd_per_tib: float = USD_PER_TIB,
        dry_run: bool = True,
        lake_uri: str | None = None,
        retry_initial_secs: float = 1.0,
        credentials: Any = None,
        client: Any = None,
        **options: Any,
    ) -> None:
        self.storage = storage
        self.project = project
        self.dataset = dataset
        self.location = location
        self.max_bytes_billed = int(max_bytes_billed) if max_bytes_billed else None
        self.endpoint = endpoint
        self.timeout_secs = float(timeout_secs)
        self.max_rows = max_rows
        self.page_size = page_size
        self.usd_per_tib = usd_per_tib
        self.dry_run = dry_run
        self.lake_uri = (lake_uri or storage.uri()).rstrip("/")
        self.retry_initial_secs = retry_initial_secs
        self.budget = Budget(storage, self.type, **budget_options(options))
        self._credentials = credentials
        self._client = client
        self.last_execution: dict[str, Any] | None = None

    # -- client ---------------------------------------------------------------------
    def _bq(self) -> Any:
        try:
            from google.cloud import bigquery
        except ImportError:
            raise ConfigError(
                "the bigquery engine needs google-cloud-bigquery",
                hint="pip install 'mantissa-log[gcp]'",
            ) from None
        return bigquery

    @property
    def client(self) -> Any:
        if self._client is None:
            from google.api_core.client_options import ClientOptions
            from google.auth.exceptions import DefaultCredentialsError

            bigquery = self._bq()
            opts = ClientOptions(api_endpoint=self.endpoint) if self.endpoint else None
            try:
                self._client = bigquery.Client(
                    project=self.project,
                    credentials=self._credentials,
                    location=self.location,
                    client_options=opts,
                )
            except DefaultCredentialsError:
                raise QueryError(
                    "BigQuery: no Google credentials found",
                    hint="set GOOGLE_APPLICATION_CREDENTIALS, run `gcloud auth "
                    "application-default login`, or run on a VM / pod with a service account",
                ) from None
            if not self.project:
                self.project = self._client.project
        return self._client

    @property
    def retry(self) -> Any:
        """Backoff on ``rateLimitExceeded`` / 429 / backend errors, bounded by the timeout."""
        from google.api_core import exceptions
        from google.api_core.retry import Retry

        def predicate(exc: Exception) -> bool:
            if isinstance(exc, exceptions.TooManyRequests | exceptions.ServiceUnavailable):
                return True
            errors = getattr(exc, "errors", None) or []
            reason = errors[0].get("reason") if errors and isinstance(errors[0], dict) else None
            return reason in RETRY_REASONS

        return Retry(
            predicate=predicate,
            initial=self.retry_initial_secs,
            maximum=max(self.retry_initial_secs * 16, 1.0),
            multiplier=2.0,
            timeout=self.timeout_secs,
        )

    def _job_config(self, params: dict[str, Any], names: list[str], dry_run: bool) -> Any:
        bigquery = self._bq()
        missing = [n for n in names if n not in params]
        if missing:
            raise QueryError(f"no value for query parameter {missing[0]!r}")
        qparams = [
            bigquery.ScalarQueryParameter(n, _param_type(params[n]), params[n]) for n in names
        ]
        cfg = bigquery.QueryJobConfig(
            dry_run=dry_run,
            use_query_cache=not dry_run,
            use_legacy_sql=False,
            default_dataset=f"{self.project}.{self.dataset}",
            query_parameters=qparams,
            labels={"app": "mantissa"},
        )
        if self.max_bytes_billed:
            cfg.maximum_bytes_billed = self.max_bytes_billed
        return cfg

    def _error(self, job_id: str | None, exc: Exception) -> QueryError:
        """A BigQuery API or job error as a message naming the job and the fix."""
        from google.api_core import exceptions
        from google.auth.exceptions import GoogleAuthError

        errors = getattr(exc, "errors", None) or []
        first = errors[0] if errors and isinstance(errors[0], dict) else {}
        reason = first.get("reason", "")
        msg = first.get("message") or getattr(exc, "message", None) or str(exc)
        what = f"BigQuery job {job_id}" if job_id else "BigQuery"
        hint = None
        if isinstance(exc, exceptions.Unauthorized | GoogleAuthError) or reason in (
            "authError",
            "required",
        ):
            hint = "the credentials are missing or expired: refresh Application Default Credentials"
        elif isinstance(exc, exceptions.Forbidden) and reason in ("accessDenied", ""):
            hint = (
                "grant the service account roles/bigquery.jobUser on the project and "
                "roles/bigquery.dataViewer on the dataset (and storage.objectViewer on the bucket)"
            )
        elif reason == "bytesBilledLimitExceeded":
            hint = "the query would bill more than engine.max_bytes_billed: narrow the time range"
        elif reason in ("quotaExceeded", "rateLimitExceeded"):
            hint = "a BigQuery quota is exhausted: retry later or raise the quota"
        elif reason == "notFound" or isinstance(exc, exceptions.NotFound):
            hint = (
                f"check engine.project/dataset/location ({self.project}.{self.dataset} in "
                f"{self.location}) and run `mantissa lake register --engine bigquery`"
            )
        elif reason == "invalidQuery":
            hint = "the SQL is not valid BigQuery SQL (see the position in the message)"
        elif reason == "invalid" and "parquet" in msg.lower():
            hint = "a file in the lake is not valid Parquet: find it with `mantissa engines check --deep`"
        elif reason == "stopped":
            hint = "the job was cancelled"
        code = f" ({reason})" if reason else ""
        return QueryError(f"{what} failed{code}: {msg[:400]}", hint=hint)

    # -- interface ------------------------------------------------------------------
    def tables(self) -> list[str]:
        return [*tables(), EVENTS_VIEW]

    def prepare(self, sql: str) -> tuple[str, list[str]]:
        """Guard, prune and render ``sql`` (DuckDB dialect) as BigQuery SQL and its parameters."""
        guarded = guard(sql, self.tables())
        tree = add_partition_filters(guarded.expression, set(tables()) | {EVENTS_VIEW})
        return to_bigquery_sql(tree)

    def estimate_cost(self, sql: str, parameters: dict[str, Any] | None = None) -> CostEstimate:
        guarded = guard(sql, self.tables())
        final, names = self.prepare(sql)
        return self._estimate(final, names, parameters, guarded)

    def _estimate(
        self,
        final: str,
        names: list[str],
        parameters: dict[str, Any] | None,
        guarded: GuardedQuery,
    ) -> CostEstimate:
        """A dry run of ``final`` (BigQuery SQL); the pruned lake files when it cannot run."""
        scan = plan_scan(self.storage, guarded)
        note = f"BigQuery on-demand ${self.usd_per_tib}/TiB, 10 MB minimum per query"
        nbytes = scan.bytes
        if self.dry_run and (not names or parameters is not None):
            job = self._dry_run(final, parameters or {}, names)
            nbytes = int(job.total_bytes_processed or 0)
            note += "; bytes from a dry run"
        else:
            note += "; bytes from the pruned lake files (no dry run)"
        return CostEstimate(
            engine=self.type,
            bytes_scanned=nbytes,
            files=scan.file_count,
            partitions=scan.partitions,
            price_usd=bigquery_price(nbytes, self.usd_per_tib),
            tables=scan.tables,
            note=note,
        )

    def _dry_run(self, final: str, params: dict[str, Any], names: list[str]) -> Any:
        try:
            return self.client.query(
                final,
                job_config=self._job_config(params, names, dry_run=True),
                location=self.location,
                retry=self.retry,
                timeout=self.timeout_secs,
            )
        except QueryError:
            raise
        except Exception as exc:
            raise self._error("(dry run)", exc) from None

    def execute(self, sql: str, parameters: dict[str, Any] | None = None) -> QueryResult:
        params = dict(parameters or {})
        guarded = guard(sql, self.tables())
        final, names = self.prepare(sql)
        est = self._estimate(final, names, params, guarded) if self._budgeted else None
        return self._run(final, names, params, est)

    def execute_tree(self, tree: exp.Expression) -> QueryResult:
        """Run a detection tree from the Sigma backend, rendered by the BigQuery dialect layer.

        Transpiling the DuckDB text would lose the constructs sqlglot cannot carry across
        (any-element array matching, JSON paths, LIKE escapes): the tree renders directly.
        """
        from mantissa.detect.dialects import render

        guarded = guard(render(tree, "duckdb"), self.tables())  # read-only, known tables
        pruned = add_partition_filters(tree.copy(), set(tables()) | {EVENTS_VIEW})
        final = render(pruned, "bigquery")
        est = self._estimate(final, [], None, guarded) if self._budgeted else None
        return self._run(final, [], {}, est)

    @property
    def _budgeted(self) -> bool:
        """Whether a budget needs the estimate (a dry run) before each job."""
        b = self.budget
        return any(v is not None for v in (b.max_query_usd, b.max_day_usd, b.max_query_bytes))

    def _run(
        self, final: str, names: list[str], params: dict[str, Any], est: CostEstimate | None
    ) -> QueryResult:
        if est is not None:
            self.budget.check(est)
        start = time.perf_counter()
        try:
            job = self.client.query(
                final,
                job_config=self._job_config(params, names, dry_run=False),
                job_id_prefix="mantissa_",
                location=self.location,
                retry=self.retry,
                job_retry=None,
                timeout=self.timeout_secs,
            )
        except QueryError:
            raise
        except Exception as exc:
            raise self._error("(not started)", exc) from None
        columns, types, rows, truncated = self._rows(job)
        billed = int(job.total_bytes_billed or job.total_bytes_processed or 0)
        self.last_execution = {
            "id": job.job_id,
            "bytes_processed": int(job.total_bytes_processed or 0),
            "bytes_billed": billed,
            "price_usd": bigquery_price(billed, self.usd_per_tib) if billed else 0.0,
        }
        self.budget.record(self.last_execution["price_usd"], billed)
        return QueryResult(
            sql=final,
            columns=columns,
            rows=rows,
            elapsed_ms=(time.perf_counter() - start) * 1000,
            truncated=truncated,
            column_types=types,
        )

    def _rows(self, job: Any) -> tuple[list[str], list[str], list[list[Any]], bool]:
        deadline = time.monotonic() + self.timeout_secs
        try:
            it = job.result(
                timeout=self.timeout_secs,
                page_size=self.page_size,
                max_results=self.max_rows + 1,
                retry=self.retry,
                job_retry=None,
            )
            columns = [f.name for f in it.schema]
            types = [f.field_type for f in it.schema]
            rows: list[list[Any]] = []
            for row in it:
                rows.append(list(row.values()))
                if len(rows) > self.max_rows:
                    return columns, types, rows[: self.max_rows], True
                if time.monotonic() > deadline:
                    raise concurrent.futures.TimeoutError()
            return columns, types, rows, False
        except concurrent.futures.TimeoutError:
            try:
                job.cancel(retry=self.retry, timeout=10)
            except Exception:
                pass  # the timeout is the error to report; a failed cancel must not hide it
            raise QueryTimeout(
                f"BigQuery job {job.job_id} ran longer than {self.timeout_secs:g}s and was cancelled",
                hint="narrow the time range or raise engine.timeout_secs",
            ) from None
        except QueryError:
            raise
        except Exception as exc:
            raise self._error(job.job_id, exc) from None

    # -- catalog --------------------------------------------------------------------
    def table_resource(self, name: str, prefix: str) -> dict[str, Any]:
        """The REST ``Table`` resource of one lake table: external Parquet, hive partitions."""
        base = f"{self.lake_uri}/{prefix.strip('/')}"
        return {
            "tableReference": {
                "projectId": self.project,
                "datasetId": self.dataset,
                "tableId": name,
            },
            "externalDataConfiguration": {
                "sourceFormat": "PARQUET",
                "sourceUris": [f"{base}/*"],
                "autodetect": True,
                "hivePartitioningOptions": {
                    "mode": "CUSTOM",
                    "sourceUriPrefix": base
                    + "/"
                    + "/".join(f"{{{k}:INTEGER}}" for k in PARTITION_KEYS),
                    "requirePartitionFilter": False,
                },
            },
            "labels": {"app": "mantissa"},
        }

    def register(self, only: list[str] | None = None) -> list[dict[str, str]]:
        """Create or update the dataset, one external table per lake table and ``events``."""
        from google.api_core import exceptions
        from google.auth.exceptions import GoogleAuthError

        from mantissa.sources.base import COMMON_COLUMNS

        if not self.lake_uri.startswith("gs://"):
            raise ConfigError(
                "BigQuery external tables read the lake from GCS only",
                hint='set lake.url to "gs://bucket/prefix" (or engine.lake_uri)',
            )
        bigquery = self._bq()
        client = self.client
        actions: list[dict[str, str]] = []
        ds_ref = f"{self.project}.{self.dataset}"
        try:
            try:
                client.get_dataset(ds_ref, retry=self.retry)
            except exceptions.NotFound:
                ds = bigquery.Dataset(ds_ref)
                ds.location = self.location
                client.create_dataset(ds, retry=self.retry)
                actions.append({"object": ds_ref, "action": "created dataset"})
            log_tables: list[str] = []
            for name, spec in tables().items():
                if only and name not in only:
                    continue
                ref = f"{ds_ref}.{name}"
                if not any(True for _ in self.storage.list(spec.prefix, ".parquet")):
                    # schema autodetection reads a file: a table without one waits for data
                    actions.append({"object": ref, "action": "skipped (no files yet)"})
                    continue
                table = bigquery.Table.from_api_repr(self.table_resource(name, spec.prefix))
                try:
                    client.get_table(ref, retry=self.retry)
                    client.update_table(
                        table, ["external_data_configuration", "labels"], retry=self.retry
                    )
                    actions.append({"object": ref, "action": "updated table"})
                except exceptions.NotFound:
                    client.create_table(table, retry=self.retry)
                    actions.append({"object": ref, "action": "created table"})
                if spec.kind == "logs":
                    log_tables.append(name)
            if log_tables and not only:
                present = {t.table_id for t in client.list_tables(ds_ref, retry=self.retry)}
                cols = ", ".join(f"`{c}`" for c in COMMON_COLUMNS)
                union = " UNION ALL ".join(
                    f"SELECT {cols}, year, month, day, hour FROM `{ds_ref}.{t}`"
                    for t in log_tables
                    if t in present
                )
                view = bigquery.Table(f"{ds_ref}.{EVENTS_VIEW}")
                view.view_query = union
                view.view_use_legacy_sql = False
                try:
                    client.get_table(view.reference, retry=self.retry)
                    client.update_table(view, ["view_query"], retry=self.retry)
                    actions.append({"object": f"{ds_ref}.{EVENTS_VIEW}", "action": "updated view"})
                except exceptions.NotFound:
                    client.create_table(view, retry=self.retry)
                    actions.append({"object": f"{ds_ref}.{EVENTS_VIEW}", "action": "created view"})
        except (exceptions.GoogleAPICallError, GoogleAuthError) as exc:
            raise self._error(None, exc) from None
        return actions
