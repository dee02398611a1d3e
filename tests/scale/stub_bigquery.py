"""A stub of the BigQuery REST API v2 on 127.0.0.1 that answers with real query results.

It enforces what the REST reference documents for the calls the Python client makes
(https://cloud.google.com/bigquery/docs/reference/rest/v2): a bearer token on every
request; ``jobs.insert`` with ``jobReference`` (projectId, jobId, location) and
``configuration.query`` carrying ``query``, ``useLegacySql: false``, ``defaultDataset``
and, for parameters, ``parameterMode: NAMED`` with typed ``queryParameters`` that the SQL
references as ``@name``; ``configuration.dryRun``; jobs that go PENDING → RUNNING → DONE
over successive polls; ``jobs.getQueryResults`` with ``location``, ``maxResults`` and
``pageToken``; ``errorResult`` on failed jobs; and the dataset / table calls of
``lake register``. Queries run on DuckDB over the local lake the registered external
tables point at (their ``gs://`` URIs mapped to a folder), after translating the
BigQuery SQL with sqlglot, so a test compares real rows.

Fault injection: ``rate_limit`` (a list of HTTP statuses answered to the next
``jobs.insert`` calls: 403 ``rateLimitExceeded`` or 429), ``fail_next_job`` (an
``errorResult`` for the next job), ``polls_before_done``.
"""

from __future__ import annotations

import datetime as dt
import http.server
import json
import re
import threading
import urllib.parse
from pathlib import Path
from typing import Any

import duckdb
import sqlglot
from sqlglot import exp

BQ_TYPES = {
    "BIGINT": "INTEGER",
    "INTEGER": "INTEGER",
    "HUGEINT": "INTEGER",
    "SMALLINT": "INTEGER",
    "TINYINT": "INTEGER",
    "UBIGINT": "INTEGER",
    "DOUBLE": "FLOAT",
    "FLOAT": "FLOAT",
    "BOOLEAN": "BOOLEAN",
    "VARCHAR": "STRING",
    "DATE": "DATE",
    "TIMESTAMP": "TIMESTAMP",
    "TIMESTAMP WITH TIME ZONE": "TIMESTAMP",
}
PARAM_TYPES = {"STRING", "INT64", "FLOAT64", "BOOL", "TIMESTAMP", "DATE", "NUMERIC", "BYTES"}


class ApiError(Exception):
    def __init__(self, code: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.code, self.reason, self.message = code, reason, message

    def body(self) -> bytes:
        status = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED"}
        return json.dumps(
            {
                "error": {
                    "code": self.code,
                    "message": self.message,
                    "errors": [
                        {"message": self.message, "domain": "global", "reason": self.reason}
                    ],
                    "status": status.get(self.code, "FAILED_PRECONDITION"),
                }
            }
        ).encode()


class StubBigQuery:
    """The stub server; ``url`` is the ``api_endpoint`` to give the client."""

    def __init__(
        self,
        project: str,
        location: str,
        token: str,
        gcs: dict[str, Path],
        bytes_per_query: int | None = None,
    ) -> None:
        self.project = project
        self.location = location
        self.token = token
        self.gcs = gcs  # gs:// prefix → local folder
        self.bytes_per_query = bytes_per_query
        self.service_account_key: Any = None  # public key whose JWT assertions get a token
        self.calls: list[dict[str, Any]] = []
        self.datasets: dict[str, dict[str, Any]] = {}
        self.tables: dict[tuple[str, str], dict[str, Any]] = {}
        self.jobs: dict[str, dict[str, Any]] = {}
        self.rate_limit: list[int] = []
        self.fail_next_job: dict[str, str] | None = None
        self.polls_before_done = 2
        self._lock = threading.Lock()
        stub = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a: Any) -> None:
                pass

            def _reply(self, code: int, body: bytes) -> None:
                self.send_response(code)
                self.send_header("Content-Type", "application/json; charset=UTF-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _handle(self) -> None:
                n = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(n) if n else b""
                url = urllib.parse.urlsplit(self.path)
                if url.path == "/token":  # the OAuth token endpoint ADC refreshes against
                    return self._token(raw)
                query = {k: v[-1] for k, v in urllib.parse.parse_qs(url.query).items()}
                body = json.loads(raw) if raw else {}
                call = {"method": self.command, "path": url.path, "query": query, "body": body}
                with stub._lock:
                    stub.calls.append(call)
                try:
                    if self.headers.get("Authorization") != f"Bearer {stub.token}":
                        raise ApiError(
                            401,
                            "required",
                            "Request is missing required authentication credential.",
                        )
                    code, out = stub.route(self.command, url.path, query, body)
                    self._reply(code, json.dumps(out).encode())
                except ApiError as e:
                    self._reply(e.code, e.body())
                except Exception as e:  # a stub bug: answer 500 so the test fails loudly
                    self._reply(500, ApiError(500, "internalError", repr(e)).body())

            def _token(self, raw: bytes) -> None:
                form = {k: v[-1] for k, v in urllib.parse.parse_qs(raw.decode()).items()}
                stub.calls.append({"method": "POST", "path": "/token", "query": {}, "body": {}})
                if not stub.verify_assertion(form):
                    err = {"error": "invalid_grant", "error_description": "Invalid JWT Signature."}
                    return self._reply(400, json.dumps(err).encode())
                out = {"access_token": stub.token, "expires_in": 3600, "token_type": "Bearer"}
                self._reply(200, json.dumps(out).encode())

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def verify_assertion(self, form: dict[str, str]) -> bool:
        """RFC 7523 JWT bearer grant, as service-account credentials send it: RS256-signed."""
        import base64

        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer":
            return False
        try:
            head, claims, sig = form["assertion"].split(".")
            pad = lambda t: base64.urlsafe_b64decode(t + "=" * (-len(t) % 4))  # noqa: E731
            self.service_account_key.verify(
                pad(sig), f"{head}.{claims}".encode(), padding.PKCS1v15(), hashes.SHA256()
            )
            body = json.loads(pad(claims))
        except (KeyError, ValueError, AttributeError, InvalidSignature):
            return False
        scopes = body.get("scope", "").split()
        return (
            body.get("aud") == "https://oauth2.googleapis.com/token"  # google-auth's fixed audience
            and body.get("iss", "").endswith(".iam.gserviceaccount.com")
            and any(s.endswith(("/auth/bigquery", "/auth/cloud-platform")) for s in scopes)
        )

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def ops(self) -> list[str]:
        """The REST method of each call, e.g. ``jobs.insert``."""
        return [self.op_name(c["method"], c["path"]) for c in self.calls]

    @staticmethod
    def op_name(method: str, path: str) -> str:
        p = path.split("/bigquery/v2/", 1)[-1]
        if re.fullmatch(r"projects/[^/]+/jobs", p):
            return "jobs.insert" if method == "POST" else "jobs.list"
        if re.fullmatch(r"projects/[^/]+/jobs/[^/]+", p):
            return "jobs.get"
        if re.fullmatch(r"projects/[^/]+/jobs/[^/]+/cancel", p):
            return "jobs.cancel"
        if re.fullmatch(r"projects/[^/]+/queries/[^/]+", p):
            return "jobs.getQueryResults"
        if re.fullmatch(r"projects/[^/]+/queries", p):
            return "jobs.query"
        if re.fullmatch(r"projects/[^/]+/datasets/[^/]+/tables/[^/]+/data", p):
            return "tabledata.list"
        if re.fullmatch(r"projects/[^/]+/datasets/[^/]+/tables/[^/]+", p):
            return {"GET": "tables.get", "PATCH": "tables.patch", "PUT": "tables.update"}.get(
                method, "tables.delete"
            )
        if re.fullmatch(r"projects/[^/]+/datasets/[^/]+/tables", p):
            return "tables.insert" if method == "POST" else "tables.list"
        if re.fullmatch(r"projects/[^/]+/datasets/[^/]+", p):
            return "datasets.get"
        if re.fullmatch(r"projects/[^/]+/datasets", p):
            return "datasets.insert"
        return f"{method} {p}"

    # -- routing ----------------------------------------------------------------------
    def route(
        self, method: str, path: str, query: dict[str, str], body: dict[str, Any]
    ) -> tuple[int, dict[str, Any]]:
        if not path.startswith("/bigquery/v2/projects/"):
            raise ApiError(404, "notFound", f"Not found: {path}")
        parts = path.split("/bigquery/v2/projects/", 1)[1].split("/")
        if parts[0] != self.project:
            raise ApiError(403, "accessDenied", f"Access Denied: Project {parts[0]}")
        op = self.op_name(method, path)
        if op == "jobs.insert":
            return 200, self.jobs_insert(body)
        if op == "jobs.get":
            return 200, self.job_resource(self._job(parts[2], query), advance=True)
        if op == "jobs.cancel":
            job = self._job(parts[2], query)
            if job["state"] != "DONE":
                job["state"] = "DONE"
                job["error"] = {"reason": "stopped", "message": "Job execution was cancelled"}
            return 200, {"kind": "bigquery#jobCancelResponse", "job": self.job_resource(job)}
        if op == "jobs.getQueryResults":
            return 200, self.get_query_results(self._job(parts[2], query), query)
        if op == "datasets.get":
            ds = self.datasets.get(parts[2])
            if ds is None:
                raise ApiError(404, "notFound", f"Not found: Dataset {self.project}:{parts[2]}")
            return 200, ds
        if op == "datasets.insert":
            ref = body.get("datasetReference") or {}
            if ref.get("projectId") != self.project or not ref.get("datasetId"):
                raise ApiError(400, "invalid", "datasetReference.projectId/datasetId required")
            if body.get("location") != self.location:
                raise ApiError(400, "invalid", f"dataset location must be {self.location}")
            self.datasets[ref["datasetId"]] = {**body, "id": f"{self.project}:{ref['datasetId']}"}
            return 200, self.datasets[ref["datasetId"]]
        if op in ("tables.insert", "tables.get", "tables.patch", "tables.update", "tables.delete"):
            return 200, self.table_call(op, parts[2], parts[4] if len(parts) > 4 else None, body)
        if op == "tables.list":
            ds = parts[2]
            return 200, {
                "kind": "bigquery#tableList",
                "tables": [
                    {"tableReference": t["tableReference"], "type": t["type"]}
                    for (d, _), t in sorted(self.tables.items())
                    if d == ds
                ],
                "totalItems": sum(1 for d, _ in self.tables if d == ds),
            }
        raise ApiError(400, "invalid", f"the stub does not serve {op}")

    def _job(self, job_id: str, query: dict[str, str]) -> dict[str, Any]:
        job = self.jobs.get(job_id)
        if job is None:
            raise ApiError(404, "notFound", f"Not found: Job {self.project}:{job_id}")
        if query.get("location") != job["location"]:
            # the REST reference: location is required for jobs outside US / EU multi-regions
            raise ApiError(
                404, "notFound", f"Not found: Job {self.project}:{job_id} (location missing)"
            )
        return job

    # -- tables -----------------------------------------------------------------------
    def table_call(
        self, op: str, ds: str, table: str | None, body: dict[str, Any]
    ) -> dict[str, Any]:
        if ds not in self.datasets:
            raise ApiError(404, "notFound", f"Not found: Dataset {self.project}:{ds}")
        if op == "tables.insert":
            table = (body.get("tableReference") or {}).get("tableId")
            if not table:
                raise ApiError(400, "invalid", "tableReference.tableId is required")
            if (ds, table) in self.tables:
                raise ApiError(
                    409, "duplicate", f"Already Exists: Table {self.project}:{ds}.{table}"
                )
            self.tables[(ds, table)] = self._check_table(ds, table, body)
            return self.tables[(ds, table)]
        assert table is not None
        if (ds, table) not in self.tables:
            raise ApiError(404, "notFound", f"Not found: Table {self.project}:{ds}.{table}")
        if op == "tables.get":
            return self.tables[(ds, table)]
        if op == "tables.delete":
            del self.tables[(ds, table)]
            return {}
        merged = {**self.tables[(ds, table)], **body} if op == "tables.patch" else body
        self.tables[(ds, table)] = self._check_table(ds, table, merged)
        return self.tables[(ds, table)]

    def _check_table(self, ds: str, table: str, body: dict[str, Any]) -> dict[str, Any]:
        ext = body.get("externalDataConfiguration")
        view = body.get("view")
        if ext:
            if ext.get("sourceFormat") != "PARQUET":
                raise ApiError(400, "invalid", "sourceFormat must be PARQUET for the lake")
            uris = ext.get("sourceUris") or []
            hive = ext.get("hivePartitioningOptions") or {}
            prefix = hive.get("sourceUriPrefix", "")
            base = prefix.split("/{", 1)[0]
            # hive partitioning: every source URI starts with the prefix (docs: "Partition
            # keys ... the sourceUriPrefix"); one wildcard, at the end
            if hive.get("mode") not in ("AUTO", "STRINGS", "CUSTOM"):
                raise ApiError(400, "invalid", "hivePartitioningOptions.mode is required")
            if not uris or any(not u.startswith(base + "/") or u.count("*") != 1 for u in uris):
                raise ApiError(400, "invalid", "sourceUris must be under sourceUriPrefix")
            if hive["mode"] == "CUSTOM" and "{year:INTEGER}" not in prefix:
                raise ApiError(400, "invalid", "CUSTOM mode needs the key schema in the prefix")
            self._local(base)
            kind = "EXTERNAL"
        elif view:
            if view.get("useLegacySql") is not False:
                raise ApiError(400, "invalid", "views must set useLegacySql: false")
            kind = "VIEW"
        else:
            raise ApiError(400, "invalid", "only external tables and views are served")
        return {
            **body,
            "tableReference": {"projectId": self.project, "datasetId": ds, "tableId": table},
            "type": kind,
            "id": f"{self.project}:{ds}.{table}",
            "location": self.location,
        }

    def _local(self, uri: str) -> Path:
        for prefix, folder in self.gcs.items():
            if uri == prefix or uri.startswith(prefix.rstrip("/") + "/"):
                return folder / uri[len(prefix) :].lstrip("/")
        raise ApiError(404, "notFound", f"Not found: URI {uri} (no such bucket)")

    # -- jobs -------------------------------------------------------------------------
    def jobs_insert(self, body: dict[str, Any]) -> dict[str, Any]:
        if self.rate_limit:
            code = self.rate_limit.pop(0)
            raise ApiError(
                code,
                "rateLimitExceeded",
                "Exceeded rate limits: too many api requests per user per method",
            )
        cfg = body.get("configuration") or {}
        q = cfg.get("query")
        if not q or not isinstance(q.get("query"), str):
            raise ApiError(400, "invalid", "configuration.query.query is required")
        if q.get("useLegacySql") is not False:
            raise ApiError(400, "invalid", "the stub only runs GoogleSQL: set useLegacySql false")
        ref = body.get("jobReference") or {}
        if ref.get("projectId") != self.project:
            raise ApiError(400, "invalid", "jobReference.projectId is required")
        if ref.get("location") != self.location:
            raise ApiError(400, "invalid", f"jobReference.location must be {self.location}")
        dry = bool(cfg.get("dryRun"))
        if not dry and not ref.get("jobId"):
            raise ApiError(400, "invalid", "jobReference.jobId is required")
        params = self._params(q)
        job: dict[str, Any] = {
            "id": ref.get("jobId") or "dryrun",
            "location": ref["location"],
            "config": cfg,
            "state": "PENDING",
            "polls": 0,
            "error": None,
            "columns": [],
            "types": [],
            "rows": [],
        }
        try:
            sql, tables_used = self._duckdb_sql(q)
            job["bytes"] = (
                self.bytes_per_query
                if self.bytes_per_query is not None
                else sum(self._table_bytes(d, t) for d, t in tables_used)
            )
            if dry:
                job["state"] = "DONE"
                return self.job_resource(job)
            if self.fail_next_job:
                job["error"], self.fail_next_job = self.fail_next_job, None
            else:
                self._run(job, sql, params)
        except ApiError as e:
            if dry:
                raise
            job["error"] = {"reason": e.reason, "message": e.message, "location": "query"}
            job["bytes"] = 0
        max_billed = q.get("maximumBytesBilled")
        if not job["error"] and max_billed and job["bytes"] > int(max_billed):
            job["error"] = {
                "reason": "bytesBilledLimitExceeded",
                "message": f"Query exceeded limit for bytes billed: {max_billed}.",
            }
        if ref["jobId"] in self.jobs:
            raise ApiError(409, "duplicate", f"Already Exists: Job {self.project}:{ref['jobId']}")
        self.jobs[ref["jobId"]] = job
        return self.job_resource(job)

    def _params(self, q: dict[str, Any]) -> dict[str, Any]:
        qp = q.get("queryParameters") or []
        used = set(re.findall(r"@(\w+)", q["query"]))
        if qp and q.get("parameterMode") != "NAMED":
            raise ApiError(400, "invalid", "parameterMode must be NAMED for named parameters")
        out: dict[str, Any] = {}
        for p in qp:
            name = p.get("name")
            ptype = (p.get("parameterType") or {}).get("type")
            if not name or ptype not in PARAM_TYPES or "parameterValue" not in p:
                raise ApiError(400, "invalid", f"malformed query parameter {p}")
            value = (p["parameterValue"] or {}).get("value")
            out[name] = _param_value(ptype, value)
        missing = used - set(out)
        if missing:
            raise ApiError(400, "invalid", f"Query parameter '{sorted(missing)[0]}' not found")
        return out

    def _duckdb_sql(self, q: dict[str, Any]) -> tuple[str, list[tuple[str, str]]]:
        try:
            tree = sqlglot.parse_one(q["query"], read="bigquery")
        except sqlglot.errors.ParseError as e:
            raise ApiError(400, "invalidQuery", f"Syntax error: {e}") from None
        default = (q.get("defaultDataset") or {}).get("datasetId")
        used: list[tuple[str, str]] = []
        ctes = {c.alias_or_name for c in tree.find_all(exp.CTE)}
        for t in tree.find_all(exp.Table):
            if t.name in ctes and not t.db:
                continue
            ds = t.db or default
            if not ds:
                raise ApiError(
                    400,
                    "invalid",
                    f'Table name "{t.name}" missing dataset while no default dataset is set',
                )
            if (ds, t.name) not in self.tables:
                raise ApiError(
                    404,
                    "notFound",
                    f"Not found: Table {self.project}:{ds}.{t.name} was not found in location {self.location}",
                )
            used.append((ds, t.name))
            t.set("db", None)
            t.set("catalog", None)
        return tree.sql(dialect="duckdb"), used

    def _table_bytes(self, ds: str, table: str) -> int:
        t = self.tables[(ds, table)]
        if t["type"] == "VIEW":
            q = {"query": t["view"]["query"], "defaultDataset": {"datasetId": ds}}
            return sum(self._table_bytes(d, n) for d, n in self._duckdb_sql(q)[1])
        base = t["externalDataConfiguration"]["hivePartitioningOptions"]["sourceUriPrefix"]
        folder = self._local(base.split("/{", 1)[0])
        return sum(f.stat().st_size for f in folder.rglob("*.parquet"))

    def _connect(self) -> duckdb.DuckDBPyConnection:
        con = duckdb.connect()
        con.execute("SET TimeZone = 'UTC'")
        views = [(k, t) for k, t in self.tables.items() if t["type"] == "VIEW"]
        for (_ds, name), t in self.tables.items():
            if t["type"] != "EXTERNAL":
                continue
            base = t["externalDataConfiguration"]["hivePartitioningOptions"]["sourceUriPrefix"]
            folder = self._local(base.split("/{", 1)[0])
            files = sorted(str(f) for f in folder.rglob("*.parquet"))
            if not files:
                continue
            listing = ", ".join("'" + f.replace("'", "''") + "'" for f in files)
            con.execute(
                f'CREATE VIEW "{name}" AS SELECT * FROM read_parquet([{listing}], '
                "hive_partitioning = true, union_by_name = true, hive_types = {'year': INTEGER, 'month': INTEGER, 'day': INTEGER, 'hour': INTEGER})"
            )
        for (ds, name), t in views:
            sql, _ = self._duckdb_sql(
                {"query": t["view"]["query"], "defaultDataset": {"datasetId": ds}}
            )
            con.execute(f'CREATE VIEW "{name}" AS {sql}')
        return con

    def _run(self, job: dict[str, Any], sql: str, params: dict[str, Any]) -> None:
        con = self._connect()
        try:
            cur = con.execute(sql, params or None)
            job["columns"] = [d[0] for d in cur.description]
            job["types"] = [BQ_TYPES.get(str(d[1]).upper(), "STRING") for d in cur.description]
            job["rows"] = cur.fetchall()
        except duckdb.Error as e:
            raise ApiError(400, "invalidQuery", str(e).splitlines()[0]) from None
        finally:
            con.close()

    def job_resource(self, job: dict[str, Any], advance: bool = False) -> dict[str, Any]:
        if advance and job["state"] != "DONE":
            job["polls"] += 1
            job["state"] = "RUNNING" if job["polls"] < self.polls_before_done else "DONE"
        status: dict[str, Any] = {"state": job["state"]}
        if job["state"] == "DONE" and job["error"]:
            status["errorResult"] = job["error"]
            status["errors"] = [job["error"]]
        stats: dict[str, Any] = {"creationTime": str(int(dt.datetime.now().timestamp() * 1000))}
        if job["state"] == "DONE" and not job["error"]:
            billed = max(job["bytes"], 10 * 1024 * 1024) if job["bytes"] else 0
            stats["totalBytesProcessed"] = str(job["bytes"])
            stats["query"] = {
                "totalBytesProcessed": str(job["bytes"]),
                "totalBytesBilled": str(0 if job["config"].get("dryRun") else billed),
                "statementType": "SELECT",
            }
        return {
            "kind": "bigquery#job",
            "id": f"{self.project}:{job['location']}.{job['id']}",
            "jobReference": {
                "projectId": self.project,
                "jobId": job["id"],
                "location": job["location"],
            },
            "configuration": job["config"],
            "status": status,
            "statistics": stats,
        }

    def get_query_results(self, job: dict[str, Any], query: dict[str, str]) -> dict[str, Any]:
        self.job_resource(job, advance=True)
        ref = {"projectId": self.project, "jobId": job["id"], "location": job["location"]}
        if job["state"] != "DONE":
            return {
                "kind": "bigquery#getQueryResultsResponse",
                "jobReference": ref,
                "jobComplete": False,
            }
        if job["error"]:
            e = job["error"]
            code = 403 if e["reason"] in ("accessDenied", "bytesBilledLimitExceeded") else 400
            raise ApiError(code, e["reason"], e["message"])
        start = int(query.get("pageToken") or query.get("startIndex") or 0)
        size = int(query.get("maxResults") or 100_000)
        page = job["rows"][start : start + size]
        # formatOptions (REST: DataFormatOptions): int64 microseconds, ISO strings, or
        # the legacy float seconds
        int64_ts = str(query.get("formatOptions.useInt64Timestamp", "")).lower() == "true"
        if query.get("formatOptions.timestampOutputFormat") == "ISO8601_STRING":
            int64_ts = False
        out: dict[str, Any] = {
            "kind": "bigquery#getQueryResultsResponse",
            "jobReference": ref,
            "jobComplete": True,
            "schema": {
                "fields": [
                    {"name": c, "type": t, "mode": "NULLABLE"}
                    for c, t in zip(job["columns"], job["types"], strict=True)
                ]
            },
            "totalRows": str(len(job["rows"])),
            "rows": [
                {"f": [{"v": _cell(v, t, int64_ts)} for v, t in zip(r, job["types"], strict=True)]}
                for r in page
            ],
            "totalBytesProcessed": str(job["bytes"]),
            "cacheHit": False,
        }
        if start + size < len(job["rows"]):
            out["pageToken"] = str(start + size)
        return out


def _param_value(ptype: str, value: str | None) -> Any:
    if value is None:
        return None
    if ptype == "INT64":
        return int(value)
    if ptype in ("FLOAT64", "NUMERIC"):
        return float(value)
    if ptype == "BOOL":
        return value.lower() == "true"
    if ptype == "TIMESTAMP":
        v = dt.datetime.fromisoformat(value.replace(" ", "T").replace("Z", "+00:00"))
        return v if v.tzinfo else v.replace(tzinfo=dt.UTC)
    if ptype == "DATE":
        return dt.date.fromisoformat(value)
    return value


def _cell(v: Any, bq_type: str, int64_ts: bool) -> Any:
    """A value as the REST API encodes it (every scalar is a string)."""
    if v is None:
        return None
    if bq_type == "TIMESTAMP":
        if v.tzinfo is None:
            v = v.replace(tzinfo=dt.UTC)
        micros = int((v - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)) / dt.timedelta(microseconds=1))
        return str(micros) if int64_ts else f"{micros / 1e6:.6f}"
    if bq_type == "BOOLEAN":
        return "true" if v else "false"
    if bq_type == "STRING" and not isinstance(v, str):
        return json.dumps(v, default=str)
    return str(v)
