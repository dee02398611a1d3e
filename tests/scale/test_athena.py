"""Athena on moto (server mode) behind a recording proxy on 127.0.0.1.

moto runs the Athena and Glue request flow for real (StartQueryExecution, the state
machine, GetQueryResults with results the test defines, Glue tables). What moto does not
model — throttling, FAILED/CANCELLED states, DataScannedInBytes, GetQueryResults pages —
the proxy adds on the wire, in the shapes the Athena API reference documents, so the
engine's retries, error messages, pagination and cost accounting are all exercised.
"""

from __future__ import annotations

import http.server
import json
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from mantissa.errors import BudgetExceeded, QueryError
from tests.scale.test_objectstore import cli_json, write_events


class AthenaProxy:
    """Forwards to moto; records X-Amz-Target calls; injects faults and pages."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.throttle: dict[str, int] = {}
        self.final_state: dict[str, str] = {}  # "next" → state for the next started query
        self.scanned = 0
        self.page_size = 0
        self._states: dict[str, str] = {}
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a: Any) -> None:
                pass

            def _forward(self, body: bytes) -> tuple[int, dict[str, str], bytes]:
                req = urllib.request.Request(
                    proxy.upstream + self.path, data=body or None, method=self.command
                )
                for k, v in self.headers.items():
                    if k.lower() not in ("host", "content-length"):
                        req.add_header(k, v)
                try:
                    with urllib.request.urlopen(req) as resp:
                        return resp.status, dict(resp.headers), resp.read()
                except urllib.error.HTTPError as e:
                    return e.code, dict(e.headers), e.read()

            def _send(
                self, code: int, body: bytes, ctype: str = "application/x-amz-json-1.1"
            ) -> None:
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                target = self.headers.get("X-Amz-Target", "")
                op = target.rsplit(".", 1)[-1]
                doc = json.loads(body) if body and target else {}
                if target.startswith("AmazonAthena."):
                    proxy.calls.append((op, doc))
                    if proxy.throttle.get(op, 0) > 0:
                        proxy.throttle[op] -= 1
                        err = {"__type": "ThrottlingException", "message": "Rate exceeded"}
                        return self._send(400, json.dumps(err).encode())
                if op == "GetQueryResults" and proxy.page_size and "NextToken" in doc:
                    doc_fwd = {k: v for k, v in doc.items() if k != "NextToken"}
                    code, _h, out = self._forward(json.dumps(doc_fwd).encode())
                    return self._send(code, self._page(json.loads(out), int(doc["NextToken"])))
                code, headers, out = self._forward(body)
                if op == "StartQueryExecution" and code == 200 and "next" in proxy.final_state:
                    proxy._states[json.loads(out)["QueryExecutionId"]] = proxy.final_state.pop(
                        "next"
                    )
                if op == "GetQueryExecution" and code == 200:
                    qe = json.loads(out)
                    q = qe["QueryExecution"]
                    if (
                        q["QueryExecutionId"] in proxy._states
                        and q["Status"]["State"] == "SUCCEEDED"
                    ):
                        q["Status"]["State"] = proxy._states[q["QueryExecutionId"]]
                        q["Status"]["StateChangeReason"] = "HIVE_BAD_DATA: not a Parquet file"
                    q.setdefault("Statistics", {})["DataScannedInBytes"] = proxy.scanned
                    out = json.dumps(qe).encode()
                if op == "GetQueryResults" and code == 200 and proxy.page_size:
                    out = self._page(json.loads(out), 0)
                self._send(code, out, headers.get("Content-Type", "application/x-amz-json-1.1"))

            def _page(self, doc: dict[str, Any], start: int) -> bytes:
                rows = doc["ResultSet"]["Rows"]
                doc["ResultSet"]["Rows"] = rows[start : start + proxy.page_size]
                if start + proxy.page_size < len(rows):
                    doc["NextToken"] = str(start + proxy.page_size)
                return json.dumps(doc).encode()

            do_GET = do_PUT = do_DELETE = do_HEAD = do_POST

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def ops(self) -> list[str]:
        return [c[0] for c in self.calls]


def queue_result(moto: str, columns: list[tuple[str, str]], rows: list[list[str | None]]) -> None:
    """moto's documented way to define what the next query returns."""
    data_rows = [{"Data": [{"VarCharValue": c} for c, _ in columns]}] + [
        {"Data": [{} if v is None else {"VarCharValue": v} for v in r]} for r in rows
    ]
    body = {
        "account_id": "123456789012",
        "region": "us-east-1",
        "results": [
            {
                "rows": data_rows,
                "column_info": [
                    {"Name": c, "Label": c, "Type": t, "Nullable": "NULLABLE"} for c, t in columns
                ],
            }
        ],
    }
    req = urllib.request.Request(
        moto + "/moto-api/static/athena/query-results",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(req) as resp:
        assert resp.status == 201


@pytest.fixture
def proxy(aws_env: str) -> Iterator[AthenaProxy]:
    p = AthenaProxy(aws_env)
    yield p
    p.close()


@pytest.fixture
def athena(s3_data_dir: Path, bucket: str, proxy: AthenaProxy, tmp_path: Path) -> Any:
    src = tmp_path / "ev.ndjson"
    write_events(src, 500, hours=3)
    cli_json(s3_data_dir, "ingest", "-s", "cloudtrail", str(src))
    from mantissa.runtime import Runtime

    rt = Runtime(s3_data_dir)
    return rt.make_engine(
        "athena",
        endpoint_url=proxy.url,
        region="us-east-1",
        output_location=f"s3://{bucket}/athena-results/",
        poll_initial_secs=0.01,
        poll_max_secs=0.05,
    )


def test_request_flow_types_pagination_and_cost(
    athena: Any, proxy: AthenaProxy, aws_env: str
) -> None:
    queue_result(
        aws_env,
        [("user", "varchar"), ("n", "bigint"), ("first", "timestamp"), ("ratio", "double")],
        [
            ["u1", "3", "2026-03-01 00:00:00.000", "0.5"],
            ["u2", "2", "2026-03-01 01:30:00.000", None],
        ]
        + [[f"x{i}", str(i), "2026-03-01 02:00:00.000", "1.0"] for i in range(5)],
    )
    proxy.scanned = 123_456_789
    proxy.page_size = 3
    proxy.throttle["StartQueryExecution"] = 2
    res = athena.execute(
        "SELECT user, count(*) AS n, min(event_time) AS first, 0.5 AS ratio FROM cloudtrail "
        "WHERE event_time >= '2026-03-01 01:00:00' GROUP BY user"
    )
    ops = proxy.ops()
    assert ops[:3] == ["StartQueryExecution"] * 3  # two throttled, then accepted
    assert (
        "GetQueryExecution" in ops and ops.count("GetQueryResults") == 3
    )  # 7 rows + header in pages of 3
    start = proxy.calls[2][1]
    assert start["WorkGroup"] == "primary"
    assert start["QueryExecutionContext"] == {"Database": "mantissa", "Catalog": "AwsDataCatalog"}
    assert start["ResultConfiguration"]["OutputLocation"].endswith("/athena-results/")
    sql = start["QueryString"]
    assert "year" in sql and "event_time" in sql  # partition pruning reached Athena's SQL
    assert res.columns == ["user", "n", "first", "ratio"]
    assert len(res.rows) == 7
    import datetime as dt

    assert res.rows[1] == ["u2", 2, dt.datetime(2026, 3, 1, 1, 30, tzinfo=dt.UTC), None]
    assert athena.last_execution["data_scanned_bytes"] == 123_456_789
    assert athena.last_execution["price_usd"] == pytest.approx(123_456_789 / 1e12 * 5)
    est = athena.estimate_cost("SELECT * FROM cloudtrail")
    assert est.files == 3 and est.price_usd == pytest.approx(10 * 1024 * 1024 / 1e12 * 5)


def test_failed_and_cancelled_states(athena: Any, proxy: AthenaProxy) -> None:
    proxy.final_state["next"] = "FAILED"
    with pytest.raises(QueryError) as ei:
        athena.execute("SELECT count(*) FROM cloudtrail")
    assert "FAILED" in str(ei.value) and "not valid Parquet" in str(ei.value)
    proxy.final_state["next"] = "CANCELLED"
    with pytest.raises(QueryError, match="CANCELLED"):
        athena.execute("SELECT count(*) FROM cloudtrail")


def test_throttled_for_good_gives_up(athena: Any, proxy: AthenaProxy) -> None:
    athena.max_retries = 2
    proxy.throttle["StartQueryExecution"] = 10
    with pytest.raises(QueryError, match=r"ThrottlingException|throttled"):
        athena.execute("SELECT count(*) FROM cloudtrail")


def test_budgets_refuse_with_the_estimate(
    s3_data_dir: Path, athena: Any, proxy: AthenaProxy
) -> None:
    from mantissa.runtime import Runtime

    capped = Runtime(s3_data_dir).make_engine(
        "athena", endpoint_url=proxy.url, region="us-east-1", max_query_usd=0.00001
    )
    with pytest.raises(BudgetExceeded) as ei:
        capped.execute("SELECT count(*) FROM cloudtrail")
    assert "$0.000052" in str(ei.value) and "bytes in 3 files" in str(ei.value)
    assert "StartQueryExecution" not in proxy.ops()
    # per day: a recorded spend counts against the next query
    day = Runtime(s3_data_dir).make_engine(
        "athena",
        endpoint_url=proxy.url,
        region="us-east-1",
        max_day_usd=0.0001,
        output_location="s3://x/y/",
        poll_initial_secs=0.01,
    )
    proxy.scanned = 30 * 10**6  # $0.00015 > the day's budget
    day.execute("SELECT count(*) FROM cloudtrail")
    with pytest.raises(BudgetExceeded, match="already spent today"):
        day.execute("SELECT count(*) FROM cloudtrail")


def test_register_glue_tables_idempotently(
    athena: Any, proxy: AthenaProxy, aws_env: str, bucket: str
) -> None:
    from mantissa.engines.athena import register_athena

    first = register_athena(athena, None)
    assert {"object": "mantissa", "action": "created database"} in first
    again = register_athena(athena, None)
    assert all(a["action"] != "created table" for a in again)
    glue = boto3.client("glue", endpoint_url=aws_env)
    t = glue.get_table(DatabaseName="mantissa", Name="cloudtrail")["Table"]
    params = t["Parameters"]
    assert params["projection.enabled"] == "true"
    assert params["storage.location.template"] == (
        f"s3://{bucket}/prod/lake/logs/cloudtrail/year=${{year}}/month=${{month}}/day=${{day}}/hour=${{hour}}"
    )
    assert [k["Name"] for k in t["PartitionKeys"]] == ["year", "month", "day", "hour"]
    cols = {c["Name"]: c["Type"] for c in t["StorageDescriptor"]["Columns"]}
    assert cols["event_time"] == "timestamp" and cols["eventName"] == "string"
    assert any("CREATE OR REPLACE VIEW" in c[1].get("QueryString", "") for c in proxy.calls)
