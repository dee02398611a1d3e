"""Azure Synapse serverless SQL over the Parquet lake in ADLS Gen2, through TDS.

``engine: {type: synapse, server: myws-ondemand.sql.azuresynapse.net, database: mantissa,
user: mantissa_reader, lake_url: "https://acct.dfs.core.windows.net/lake/prod"}``. The
driver is ``python-tds`` (pure Python, no ODBC driver to install). Views are created by
``mantissa lake register --engine synapse``: one ``CREATE OR ALTER VIEW`` per lake table
over ``OPENROWSET(BULK '<lake_url>/logs/<t>/year=*/month=*/day=*/hour=*/*.parquet',
FORMAT = 'PARQUET')`` with the hive keys taken from ``r.filepath(n)``, plus an
``events`` view.

SQL arrives in the DuckDB dialect, passes the guard and partition pruning (the
``year/month/day/hour`` predicates become ``filepath()`` folder elimination in
Synapse), and is rendered as T-SQL by the dialect layer (``detect/dialects/synapse.py``)
with every identifier bracket-quoted. Parameters are bound as typed literals in the
syntax tree, as on Athena and Spark. Cost: serverless SQL bills $5 per TB processed
with a 10 MB minimum per query (https://azure.microsoft.com/pricing/details/synapse-analytics/);
the estimate prices the pruned lake files.

Credentials: ``auth: sql`` reads the password from the environment variable named by
``password_env`` (default ``MANTISSA_SYNAPSE_PASSWORD``), never from the config file;
``auth: entra`` gets an access token from ``azure-identity``'s ``DefaultAzureCredential``
(environment, managed identity, workload identity, Azure CLI). Connections are encrypted
(TLS through pyOpenSSL) unless ``encrypt: false``.
"""

from __future__ import annotations

import datetime as dt
import os
import threading
import time
import warnings
from typing import Any

from sqlglot import exp

from mantissa.engines.base import CostEstimate, QueryEngine, QueryResult
from mantissa.engines.guard import GuardedQuery, guard
from mantissa.engines.pruning import add_partition_filters
from mantissa.engines.scan import Budget, bind_parameters, budget_options, plan_scan
from mantissa.errors import ConfigError, QueryError, QueryTimeout
from mantissa.lake.catalog import EVENTS_VIEW, tables
from mantissa.lake.storage import Storage

REQUIRES = {"pytds": "synapse", "OpenSSL": "synapse"}  # checked by `mantissa engines list`
MIN_BILLED_BYTES = 10 * 1024 * 1024
USD_PER_TB = 5.0
PARTITION_KEYS = ("year", "month", "day", "hour")
ENTRA_SCOPE = "https://database.windows.net/.default"


def synapse_price(nbytes: int, usd_per_tb: float = USD_PER_TB) -> float:
    """Serverless SQL's bill for processing ``nbytes`` (10 MB minimum per query)."""
    return max(nbytes, MIN_BILLED_BYTES) / 1e12 * usd_per_tb


def to_tsql(tree: exp.Expression) -> str:
    """T-SQL for a guarded DuckDB-dialect tree, via the detection dialect layer.

    Identifiers are bracket-quoted (``user`` is a T-SQL function), and ``GROUP BY 1``
    ordinals, which T-SQL does not accept, become the expressions they point at.
    """
    from mantissa.detect.dialects import dialect_class

    tree = tree.copy()
    for select in tree.find_all(exp.Select):
        group = select.args.get("group")
        if not group:
            continue
        projections = select.expressions
        new = []
        for g in group.expressions:
            if isinstance(g, exp.Literal) and g.is_int and 0 < int(g.this) <= len(projections):
                target = projections[int(g.this) - 1]
                new.append((target.this if isinstance(target, exp.Alias) else target).copy())
            else:
                new.append(g)
        group.set("expressions", new)
    for node in list(tree.find_all(exp.Anonymous)):
        if node.name.lower() == "now" and not node.expressions:
            node.replace(exp.CurrentTimestamp())
    return dialect_class("synapse")().generate(tree, identify=True)


def lake_https_url(storage_uri: str, account: str | None) -> str | None:
    """The ``https://<account>.dfs.core.windows.net/<container>/<prefix>`` of an Azure lake."""
    uri = storage_uri.rstrip("/")
    for scheme in ("az://", "abfs://", "abfss://"):
        if uri.startswith(scheme):
            rest = uri[len(scheme) :]
            container, _, prefix = rest.partition("/")
            if "@" in container:  # abfs://container@account.dfs.core.windows.net/prefix
                container, host = container.split("@", 1)
                return f"https://{host}/{container}/{prefix}".rstrip("/")
            if account:
                return f"https://{account}.dfs.core.windows.net/{container}/{prefix}".rstrip("/")
    return None


class SynapseEngine(QueryEngine):
    """Queries the lake through Synapse serverless SQL views."""

    type = "synapse"
    dialect = "synapse"
    native_questions = True  # questions run as their plan rendered in this dialect

    def __init__(
        self,
        storage: Storage,
        server: str | None = None,
        database: str = "mantissa",
        port: int = 1433,
        user: str | None = None,
        auth: str = "sql",
        password_env: str = "MANTISSA_SYNAPSE_PASSWORD",
        encrypt: bool = True,
        cafile: str | None = None,
        lake_url: str | None = None,
        storage_account: str | None = None,
        timeout_secs: float = 300.0,
        login_timeout_secs: float = 15.0,
        max_rows: int = 100_000,
        usd_per_tb: float = USD_PER_TB,
        **options: Any,
    ) -> None:
        self.storage = storage
        self.server = server
        self.database = database
        self.port = int(port)
        self.user = user
        self.auth = auth
        self.password_env = password_env
        self.encrypt = encrypt
        self.cafile = cafile
        self.lake_url = (lake_url or "").rstrip("/") or lake_https_url(
            storage.uri(), storage_account or os.environ.get("AZURE_STORAGE_ACCOUNT_NAME")
        )
        self.timeout_secs = float(timeout_secs)
        self.login_timeout_secs = float(login_timeout_secs)
        self.max_rows = max_rows
        self.usd_per_tb = usd_per_tb
        self.budget = Budget(storage, self.type, **budget_options(options))
        self._conn: Any = None
        self._lock = threading.Lock()
        self.last_execution: dict[str, Any] | None = None

    # -- connection -----------------------------------------------------------------
    def connect(self, database: str | None = None) -> Any:
        """A new autocommit DB-API connection (``database`` defaults to the configured one)."""
        try:
            import pytds
        except ImportError:
            raise ConfigError(
                "the synapse engine needs python-tds", hint="pip install 'mantissa-log[synapse]'"
            ) from None
        if not self.server:
            raise ConfigError(
                "engine.server is not set",
                hint="the serverless SQL endpoint, e.g. myworkspace-ondemand.sql.azuresynapse.net",
            )
        kwargs: dict[str, Any] = {
            "dsn": self.server,
            "port": self.port,
            "database": database or self.database,
            "autocommit": True,
            "login_timeout": self.login_timeout_secs,
            "timeout": self.timeout_secs,
            "appname": "mantissa",
            "use_mars": False,
        }
        if self.encrypt:
            kwargs["cafile"] = self.cafile or _default_cafile()
            kwargs["validate_host"] = True
        if self.auth == "sql":
            password = os.environ.get(self.password_env)
            if not self.user or password is None:
                raise ConfigError(
                    "Synapse SQL authentication needs engine.user and a password",
                    hint=f"export {self.password_env}=... (passwords never go in mantissa.yaml), "
                    "or use auth: entra",
                )
            kwargs.update(user=self.user, password=password)
        elif self.auth == "entra":
            kwargs["access_token_callable"] = _entra_token
        else:
            raise ConfigError(f"unknown engine.auth {self.auth!r}", hint="use sql or entra")
        try:
            with warnings.catch_warnings():
                # python-tds validates the host name with pyOpenSSL's X509 accessors, which
                # pyOpenSSL deprecates in favour of cryptography's: not ours to fix
                warnings.filterwarnings(
                    "ignore", message=r"X509\.\w+ is deprecated", category=DeprecationWarning
                )
                return pytds.connect(**kwargs)
        except pytds.Error as exc:
            raise self._error(exc, "login") from None
        except Exception as exc:
            if type(exc).__module__.startswith("OpenSSL"):
                reasons = exc.args[0] if exc.args and isinstance(exc.args[0], list) else []
                why = "; ".join(r[-1] for r in reasons if isinstance(r, tuple)) or str(exc)
                raise QueryError(
                    f"Synapse: TLS with {self.server}:{self.port} failed: {why}",
                    hint="the server's certificate must chain to engine.cafile (default: the "
                    "system CA bundle) and name engine.server",
                ) from None
            if not isinstance(exc, ValueError):
                raise
            if "pyopenssl" in str(exc).lower():
                raise ConfigError(
                    "encrypted Synapse connections need pyOpenSSL",
                    hint="pip install 'mantissa-log[synapse]'",
                ) from None
            raise
        except OSError as exc:
            cause = exc.__cause__ or exc.__context__
            if isinstance(cause, pytds.Error):
                raise self._error(cause, "login") from None
            raise QueryError(
                f"Synapse: cannot reach {self.server}:{self.port}: {exc or type(exc).__name__}",
                hint="check engine.server (the workspace's -ondemand endpoint) and the firewall",
            ) from None

    def _connection(self) -> Any:
        if self._conn is None:
            self._conn = self.connect()
        return self._conn

    def _error(self, exc: Exception, what: str) -> QueryError:
        number = getattr(exc, "number", None)
        text = str(exc.args[0] if exc.args else exc)
        low = text.lower()
        hint = None
        if number == 4060 or "cannot open database" in low:
            number = 4060
            hint = (
                f"database {self.database!r} does not exist or the login may not open it: run "
                "`mantissa lake register --engine synapse` (it creates the database)"
            )
        elif number == 18456 or "login failed" in low:
            hint = (
                f"check engine.user and ${self.password_env} (or the Entra identity); the login "
                "needs CONNECT on the database"
            )
        elif number == 208 or "invalid object name" in low:
            hint = "run `mantissa lake register --engine synapse` to create the views"
        elif number in (13807, 13822, 15151) or "cannot be listed" in low or "permission" in low:
            hint = (
                "grant the identity Storage Blob Data Reader on the lake's container, and the "
                "login db_datareader + ADMINISTER DATABASE BULK OPERATIONS"
            )
        elif "encryption" in low:
            hint = (
                "Synapse endpoints always offer TLS: check engine.server; "
                "engine.encrypt: false is only for a local test server"
            )
        elif "parquet" in low and ("corrupt" in low or "not" in low):
            hint = "a file in the lake is not valid Parquet: find it with `mantissa engines check --deep`"
        code = f" (error {number})" if number else ""
        return QueryError(f"Synapse {what} failed{code}: {text[:400]}", hint=hint)

    def run(self, sql: str, database: str | None = None) -> tuple[list[str], list[list[Any]], bool]:
        """Run one T-SQL batch; columns, up to ``max_rows`` rows, and whether more were left."""
        import pytds

        with self._lock:
            conn = self._connection() if database is None else self.connect(database)
            try:
                cur = conn.cursor()
                cur.execute(sql)
                if cur.description is None:
                    return [], [], False
                columns = [d[0] for d in cur.description]
                rows = [list(r) for r in cur.fetchmany(self.max_rows + 1)]
                truncated = len(rows) > self.max_rows
                if truncated:
                    cur.cancel()
                return columns, rows[: self.max_rows], truncated
            except pytds.tds_base.TimeoutError:
                self._drop(conn)
                raise QueryTimeout(
                    f"Synapse query ran longer than {self.timeout_secs:g}s and was cancelled",
                    hint="narrow the time range or raise engine.timeout_secs",
                ) from None
            except pytds.Error as exc:
                if isinstance(exc, pytds.OperationalError) and "timeout" in str(exc).lower():
                    self._drop(conn)
                    raise QueryTimeout(
                        f"Synapse query ran longer than {self.timeout_secs:g}s",
                        hint="narrow the time range or raise engine.timeout_secs",
                    ) from None
                raise self._error(exc, "query") from None
            finally:
                if database is not None:
                    conn.close()

    def _drop(self, conn: Any) -> None:
        try:
            conn.close()
        except Exception:
            pass  # the connection is being discarded after a timeout anyway
        if conn is self._conn:
            self._conn = None

    def close(self) -> None:
        if self._conn is not None:
            self._drop(self._conn)

    # -- interface ------------------------------------------------------------------
    def tables(self) -> list[str]:
        return [*tables(), EVENTS_VIEW]

    def _bound(self, sql: str, parameters: dict[str, Any] | None) -> GuardedQuery:
        guarded = guard(sql, self.tables())
        if parameters:
            # bound first, so that time bounds given as parameters prune partitions too
            guarded = GuardedQuery(bind_parameters(guarded.expression, parameters), guarded.tables)
        return guarded

    def prepare(self, sql: str, parameters: dict[str, Any] | None = None) -> str:
        """Guard, bind, prune and render ``sql`` (DuckDB dialect) as T-SQL."""
        guarded = self._bound(sql, parameters)
        return to_tsql(add_partition_filters(guarded.expression, set(tables()) | {EVENTS_VIEW}))

    def estimate_cost(self, sql: str, parameters: dict[str, Any] | None = None) -> CostEstimate:
        scan = plan_scan(self.storage, self._bound(sql, parameters))
        return CostEstimate(
            engine=self.type,
            bytes_scanned=scan.bytes,
            files=scan.file_count,
            partitions=scan.partitions,
            price_usd=synapse_price(scan.bytes, self.usd_per_tb),
            tables=scan.tables,
            note=f"Synapse serverless ${self.usd_per_tb}/TB processed, 10 MB minimum per query; "
            "column pruning reads less, result transfer adds a little",
        )

    def execute(self, sql: str, parameters: dict[str, Any] | None = None) -> QueryResult:
        final = self.prepare(sql, parameters)
        return self._execute(final, self.estimate_cost(sql, parameters))

    def execute_tree(self, tree: exp.Expression) -> QueryResult:
        """Run a detection tree from the Sigma backend, rendered by the T-SQL dialect layer
        (``OPENJSON`` for arrays, ``CASE`` for Sigma's not): no lossy DuckDB → T-SQL step."""
        from mantissa.detect.dialects import render

        guarded = guard(render(tree, "duckdb"), self.tables())  # read-only, known tables
        pruned = add_partition_filters(tree.copy(), set(tables()) | {EVENTS_VIEW})
        scan = plan_scan(self.storage, guarded)
        est = CostEstimate(
            engine=self.type,
            bytes_scanned=scan.bytes,
            files=scan.file_count,
            partitions=scan.partitions,
            price_usd=synapse_price(scan.bytes, self.usd_per_tb),
            tables=scan.tables,
        )
        return self._execute(to_tsql(pruned), est)

    def _execute(self, final: str, est: CostEstimate) -> QueryResult:
        self.budget.check(est)
        start = time.perf_counter()
        columns, rows, truncated = self.run(final)
        rows = [[_utc(v) for v in r] for r in rows]
        self.last_execution = {"bytes_estimated": est.bytes_scanned, "price_usd": est.price_usd}
        self.budget.record(est.price_usd, est.bytes_scanned)
        return QueryResult(
            sql=final,
            columns=columns,
            rows=rows,
            elapsed_ms=(time.perf_counter() - start) * 1000,
            truncated=truncated,
        )

    # -- catalog --------------------------------------------------------------------
    def view_sql(self, name: str, prefix: str) -> str:
        """``CREATE OR ALTER VIEW`` over one lake table's Parquet files."""
        url = f"{self.lake_url}/{prefix.strip('/')}/year=*/month=*/day=*/hour=*/*.parquet"
        keys = ", ".join(
            f"CAST([r].filepath({i}) AS INT) AS [{k}]" for i, k in enumerate(PARTITION_KEYS, 1)
        )
        return (
            f"CREATE OR ALTER VIEW [dbo].[{name}] AS SELECT [r].*, {keys} "
            f"FROM OPENROWSET(BULK '{url}', FORMAT = 'PARQUET') AS [r]"
        )

    def register(self, only: list[str] | None = None) -> list[dict[str, str]]:
        """Create the database if missing and (re)create one view per lake table + ``events``."""
        from mantissa.sources.base import COMMON_COLUMNS

        if not self.lake_url or not self.lake_url.startswith("https://"):
            raise ConfigError(
                "Synapse reads the lake from ADLS Gen2 over https only",
                hint='set lake.url to "az://container/prefix" with engine.storage_account, '
                'or engine.lake_url: "https://<account>.dfs.core.windows.net/<container>/<prefix>"',
            )
        actions: list[dict[str, str]] = []
        db = self.database.replace("]", "]]")
        _cols, rows, _ = self.run(
            f"SELECT name FROM sys.databases WHERE name = N'{self.database}'", database="master"
        )
        if not rows:
            self.run(
                f"IF DB_ID(N'{self.database}') IS NULL CREATE DATABASE [{db}]", database="master"
            )
            actions.append({"object": self.database, "action": "created database"})
        _cols, rows, _ = self.run("SELECT name FROM sys.views")
        present = {r[0] for r in rows}
        log_tables: list[str] = []
        for name, spec in tables().items():
            if only and name not in only:
                continue
            if not any(True for _ in self.storage.list(spec.prefix, ".parquet")):
                # OPENROWSET infers the schema from a file: a table without one waits for data
                actions.append(
                    {"object": f"{self.database}.dbo.{name}", "action": "skipped (no files yet)"}
                )
                continue
            self.run(self.view_sql(name, spec.prefix))
            verb = "altered view" if name in present else "created view"
            actions.append({"object": f"{self.database}.dbo.{name}", "action": verb})
            if spec.kind == "logs":
                log_tables.append(name)
        if log_tables and not only:
            cols = ", ".join(f"[{c}]" for c in COMMON_COLUMNS)
            union = " UNION ALL ".join(
                f"SELECT {cols}, [year], [month], [day], [hour] FROM [dbo].[{t}]"
                for t in log_tables
            )
            self.run(f"CREATE OR ALTER VIEW [dbo].[{EVENTS_VIEW}] AS {union}")
            verb = "altered view" if EVENTS_VIEW in present else "created view"
            actions.append({"object": f"{self.database}.dbo.{EVENTS_VIEW}", "action": verb})
        return actions


def _utc(v: Any) -> Any:
    """Synapse returns Parquet timestamps as DATETIME2 (UTC, no zone): make them aware."""
    if isinstance(v, dt.datetime):
        return v.replace(tzinfo=dt.UTC) if v.tzinfo is None else v.astimezone(dt.UTC)
    return v


def _default_cafile() -> str:
    for path in ("/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt"):
        if os.path.exists(path):
            return path
    try:
        import certifi

        return str(certifi.where())
    except ImportError:
        raise ConfigError(
            "no CA bundle found to verify the Synapse endpoint's certificate",
            hint="set engine.cafile, or install certifi",
        ) from None


def _entra_token() -> str:
    try:
        from azure.identity import DefaultAzureCredential
    except ImportError:
        raise ConfigError(
            "auth: entra needs azure-identity", hint="pip install azure-identity"
        ) from None
    return str(DefaultAzureCredential().get_token(ENTRA_SCOPE).token)
