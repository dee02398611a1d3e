"""The API's endpoints as a client sees them: shapes, errors, limits, headers."""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest
from fastapi.testclient import TestClient

from mantissa.alerts.model import AlertCandidate
from mantissa.alerts.store import AlertStore
from mantissa.api.app import create_app
from mantissa.runtime import Runtime
from tests.api.conftest import bearer
from tests.conftest import FIXTURES


@pytest.fixture
def loaded(cli, data_dir):
    r = cli("ingest", "-s", "cloudtrail", str(FIXTURES / "cloudtrail"), "-f", "json")
    assert r.code == 0, r.err
    return data_dir


def _error(r, status: int, code: str) -> dict:
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error"}
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    assert "Traceback" not in r.text
    return body["error"]


# -- service ----------------------------------------------------------------------


def test_health_is_open_and_reports_checks(client):
    r = client.get("/health")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok" and body["checks"] == {"state": "ok", "lake": "ok"}
    assert body["version"]


def test_config_reports_features_and_version(client, tokens):
    body = client.get("/config", headers=bearer(tokens["viewer"])).json()
    assert body["features"]["siem"] is True
    assert isinstance(body["features"]["apm"], bool) and isinstance(body["features"]["soar"], bool)
    assert body["version"]
    assert body["principal"]["role"] == "viewer"


def test_metrics_are_prometheus_text(client, tokens):
    client.get("/health")
    client.get("/alerts")  # a 401
    r = client.get("/metrics", headers=bearer(tokens["viewer"]))
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    text = r.text
    assert 'mantissa_http_requests_total{method="GET",route="/health",status="200"}' in text
    assert 'mantissa_http_auth_failures_total{status="401"}' in text
    assert "mantissa_http_request_duration_seconds_bucket" in text


def test_unknown_route_is_json_404(client):
    _error(client.get("/nope"), 404, "not_found")


# -- query ------------------------------------------------------------------------


def test_query_sql_returns_rows_sql_summary_and_cost(client, tokens, loaded):
    r = client.post(
        "/query",
        json={"sql": "SELECT event_type, user FROM cloudtrail ORDER BY event_time LIMIT 2"},
        headers=bearer(tokens["analyst"]),
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["columns"] == ["event_type", "user"]
    assert body["rows"] == [["CreateBucket", "alice"], ["ConsoleLogin", "root"]]
    assert body["sql"].startswith("SELECT")
    assert body["summary"].startswith("2 rows")
    assert body["tier"] == "sql"
    assert body["cost"]["files"] >= 1 and body["cost"]["bytes_scanned"] > 0


def test_query_explain_does_not_run(client, tokens, loaded):
    r = client.post(
        "/query",
        json={"sql": "SELECT count(*) FROM cloudtrail", "explain": True},
        headers=bearer(tokens["analyst"]),
    )
    body = r.json()
    assert body["explain"] is True and body["rows"] == [] and body["cost"]["files"] >= 1


def test_query_max_rows(client, tokens, loaded):
    r = client.post(
        "/query",
        json={"sql": "SELECT * FROM cloudtrail", "max_rows": 2},
        headers=bearer(tokens["analyst"]),
    )
    body = r.json()
    assert len(body["rows"]) == 2 and body["truncated"] is True


def test_query_csv_export_neutralises_formulas(client, tokens, loaded):
    sql = "SELECT '=HYPERLINK(\"http://x\")' AS f, 3 AS n, 'plain' AS s"
    r = client.post("/query", json={"sql": sql, "format": "csv"}, headers=bearer(tokens["analyst"]))
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/csv")
    assert "attachment" in r.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(r.text)))
    assert rows == [["f", "n", "s"], ['\'=HYPERLINK("http://x")', "3", "plain"]]


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM read_text('/etc/passwd')",
        "SELECT read_text('/etc/passwd')",
        "DROP TABLE cloudtrail",
        "SELECT 1; SELECT 2",
        "COPY (SELECT 1) TO '/tmp/x.csv'",
        "ATTACH '/tmp/x.db'",
        "SELECT * FROM 'x.parquet'",
        "SELECT * FROM secrets_table",
        "SELECT getenv('HOME')",
        "'",
        "SELECT ((((",
    ],
)
def test_query_guard_rejects(client, tokens, loaded, sql):
    r = client.post("/query", json={"sql": sql}, headers=bearer(tokens["analyst"]))
    _error(r, 400, "query_rejected")


@pytest.mark.parametrize(
    "body",
    [{}, {"sql": "SELECT 1", "question": "and?"}, {"sql": "   "}, {"sql": "SELECT 1", "x": 1}],
)
def test_query_body_is_validated(client, tokens, body):
    r = client.post("/query", json=body, headers=bearer(tokens["analyst"]))
    err = _error(r, 422, "invalid_request")
    assert "details" in err


def test_query_question_goes_through_ask(client, tokens, loaded):
    pytest.importorskip("mantissa.ask", reason="the ask module is not installed in this build")
    r = client.post(
        "/query",
        json={"question": "how many events in the last 30 days?"},
        headers=bearer(tokens["analyst"]),
    )
    assert r.status_code in (200, 400), r.text
    if r.status_code == 200:
        body = r.json()
        assert {"question", "sql", "columns", "rows", "summary", "cost", "tier"} <= set(body)
        assert body["question"] == "how many events in the last 30 days?"


def test_internal_errors_never_leak(client, tokens, runtime, monkeypatch):
    def boom(*_a, **_k):
        raise RuntimeError("secret detail /home/op/.aws/credentials")

    monkeypatch.setattr(type(runtime.engine), "estimate_cost", boom)
    r = client.post("/query", json={"sql": "SELECT 1"}, headers=bearer(tokens["analyst"]))
    err = _error(r, 500, "internal_error")
    assert "secret" not in r.text and "credentials" not in r.text
    assert err["request_id"] == r.headers["x-request-id"]


# -- limits, CORS, headers ------------------------------------------------------------


def test_body_limit(client, tokens):
    big = "x" * (1024 * 1024 + 10)
    r = client.post("/query", json={"sql": big}, headers=bearer(tokens["analyst"]))
    _error(r, 413, "payload_too_large")


def test_body_limit_without_content_length(client, tokens):
    def chunks():
        for _ in range(200):
            yield b"x" * 8192

    r = client.post(
        "/query",
        content=chunks(),
        headers={**bearer(tokens["analyst"]), "content-type": "application/json"},
    )
    _error(r, 413, "payload_too_large")


def test_cors_is_off_by_default(client, tokens):
    r = client.options(
        "/alerts",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"},
    )
    assert "access-control-allow-origin" not in r.headers
    r = client.get(
        "/alerts", headers={**bearer(tokens["viewer"]), "Origin": "https://evil.example"}
    )
    assert "access-control-allow-origin" not in r.headers


def test_cors_when_configured(data_dir, tokens):
    (data_dir / "mantissa.yaml").write_text("api:\n  cors_origins: [https://soc.example]\n")
    with TestClient(create_app(Runtime(data_dir))) as c:
        r = c.options(
            "/alerts",
            headers={"Origin": "https://soc.example", "Access-Control-Request-Method": "GET"},
        )
        assert r.headers["access-control-allow-origin"] == "https://soc.example"
        r = c.options(
            "/alerts",
            headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"},
        )
        assert "access-control-allow-origin" not in r.headers


def test_bad_api_config_is_a_clear_error(data_dir):
    from mantissa.errors import ConfigError

    (data_dir / "mantissa.yaml").write_text("api:\n  max_body_bytez: 5\n")
    with pytest.raises(ConfigError, match=r"mantissa.yaml:2: api.max_body_bytez"):
        create_app(Runtime(data_dir))


def test_security_headers(client):
    for path in ("/console/login", "/health", "/console/static/common.js"):
        r = client.get(path)
        assert r.headers["x-frame-options"] == "DENY"
        assert r.headers["x-content-type-options"] == "nosniff"
        csp = r.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert "unsafe-inline" not in csp
    assert client.get("/health").headers["cache-control"] == "no-store"


def test_static_assets_come_from_an_allow_list(client):
    assert client.get("/console/static/style.css").status_code == 200
    for name in ("..%2F..%2Fconsole.py", "../templates/page.html", "%2Fetc%2Fpasswd", "nope.js"):
        assert client.get(f"/console/static/{name}").status_code == 404


def test_no_docs_pages_loading_third_party_code(client):
    assert client.get("/docs").status_code == 404
    assert client.get("/openapi.json").status_code == 200


# -- alerts -----------------------------------------------------------------------------


def _seed_alerts(runtime: Runtime) -> list[str]:
    store = AlertStore(runtime.state)
    now = dt.datetime.now(dt.UTC)
    ids = []
    for i, (sev, rule) in enumerate(
        [("high", "r-stop"), ("low", "r-list"), ("critical", "r-root"), ("medium", "r-list")]
    ):
        cand = AlertCandidate(
            rule_id=rule,
            rule_title=f"Rule {rule}",
            severity=sev,
            tags=["attack.t1078"] if rule == "r-root" else [],
            dedup_key=f"{rule}:{i}",
            entities={"user": f"user{i}", "ip": f"203.0.113.{i}"},
            first_seen=now - dt.timedelta(hours=5 - i),
            last_seen=now - dt.timedelta(hours=4 - i),
            count=i + 1,
            evidence_rows=[{"event_id": f"e{i}", "user": f"user{i}"}],
            evidence_event_ids=[f"e{i}"],
            source="cloudtrail",
        )
        ids.append(store.upsert(cand)[0].id)
    return ids


def test_alerts_list_filter_sort_page(client, tokens, runtime):
    ids = _seed_alerts(runtime)
    h = bearer(tokens["viewer"])
    page = client.get("/alerts", headers=h).json()
    assert page["total"] == 4 and page["offset"] == 0 and page["next_offset"] is None
    assert [a["id"] for a in page["items"]] == list(reversed(ids))  # -last_seen
    assert "evidence_rows" not in page["items"][0]
    page = client.get("/alerts", params={"limit": 3}, headers=h).json()
    assert len(page["items"]) == 3 and page["next_offset"] == 3
    page2 = client.get("/alerts", params={"limit": 3, "offset": 3}, headers=h).json()
    assert [a["id"] for a in page2["items"]] == [ids[0]] and page2["next_offset"] is None
    crit = client.get("/alerts", params={"severity": "critical,high"}, headers=h).json()
    assert {a["severity"] for a in crit["items"]} == {"critical", "high"}
    minsev = client.get("/alerts", params={"min_severity": "medium"}, headers=h).json()
    assert minsev["total"] == 3
    by_rule = client.get("/alerts", params={"rule_id": "r-l*"}, headers=h).json()
    assert by_rule["total"] == 2
    q = client.get("/alerts", params={"q": "user2"}, headers=h).json()
    assert [a["id"] for a in q["items"]] == [ids[2]]
    sev_sorted = client.get("/alerts", params={"sort": "-severity"}, headers=h).json()
    assert sev_sorted["items"][0]["severity"] == "critical"
    assert client.get("/alerts", params={"status": "closed"}, headers=h).json()["total"] == 0


@pytest.mark.parametrize(
    "params",
    [
        {"status": "bogus"},
        {"severity": "urgent"},
        {"sort": "password"},
        {"limit": 0},
        {"limit": 5000},
        {"offset": -1},
        {"since": "yesterday"},
    ],
)
def test_alerts_bad_params_are_422(client, tokens, params):
    r = client.get("/alerts", params=params, headers=bearer(tokens["viewer"]))
    _error(r, 422, "invalid_request")


def test_alert_detail_and_status_change(client, tokens, runtime):
    ids = _seed_alerts(runtime)
    h = bearer(tokens["analyst"])
    detail = client.get(f"/alerts/{ids[0]}", headers=h).json()
    assert detail["evidence_rows"] == [{"event_id": "e0", "user": "user0"}]
    assert {"enrichment", "deliveries", "history"} <= set(detail)
    r = client.patch(
        f"/alerts/{ids[0]}", json={"status": "acknowledged", "reason": "looking"}, headers=h
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "acknowledged"
    last = r.json()["history"][-1]
    assert last["status"] == "acknowledged" and last["reason"] == "looking"
    assert last["actor"].startswith("test-analyst")
    _error(client.get("/alerts/al_missing", headers=h), 404, "not_found")
    _error(
        client.patch(f"/alerts/{ids[0]}", json={"status": "gone"}, headers=h),
        422,
        "invalid_request",
    )


# -- tokens over HTTP ------------------------------------------------------------------


def test_token_lifecycle_over_http(client, tokens):
    admin = bearer(tokens["admin"])
    r = client.post(
        "/tokens", json={"role": "viewer", "name": "grafana", "expires_in_days": 30}, headers=admin
    )
    assert r.status_code == 201
    created = r.json()
    assert created["token"].startswith("mnt_") and created["expires_at"]
    assert client.get("/config", headers=bearer(created["token"])).status_code == 200
    listed = client.get("/tokens", headers=admin).json()
    assert created["id"] in {t["id"] for t in listed["items"]}
    assert created["token"] not in str(listed)
    assert client.delete(f"/tokens/{created['id']}", headers=admin).json()["active"] is False
    assert client.get("/config", headers=bearer(created["token"])).status_code == 401
    _error(client.post("/tokens", json={"role": "root"}, headers=admin), 422, "invalid_request")


# -- overview, tables ---------------------------------------------------------------------


def write_recent_cloudtrail(path, n: int, hours_ago: float = 1.0) -> None:
    """``n`` CloudTrail events ``hours_ago`` hours old, as newline-delimited JSON."""
    import json

    t = dt.datetime.now(dt.UTC) - dt.timedelta(hours=hours_ago)
    with open(path, "w") as fh:
        for i in range(n):
            ev = {
                "eventVersion": "1.09",
                "eventTime": (t + dt.timedelta(seconds=i)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "eventSource": "s3.amazonaws.com",
                "eventName": "GetObject",
                "eventID": f"00000000-0000-4000-8000-{i:012d}",
                "sourceIPAddress": "198.51.100.7",
                "userIdentity": {"type": "IAMUser", "userName": "carol"},
                "awsRegion": "us-east-1",
            }
            fh.write(json.dumps(ev) + "\n")


def test_overview(client, tokens, cli, runtime, tmp_path):
    write_recent_cloudtrail(tmp_path / "recent.ndjson", 7)
    assert cli("ingest", "-s", "cloudtrail", str(tmp_path / "recent.ndjson")).code == 0
    _seed_alerts(runtime)
    body = client.get("/overview", params={"hours": 24}, headers=bearer(tokens["viewer"])).json()
    assert body["bucket"] == "hour"
    assert sum(e["events"] for e in body["events"] if e["source"] == "cloudtrail") == 7
    assert body["alerts"]["open"] == 4
    assert {r["rule_id"] for r in body["top_rules"]} == {"r-stop", "r-list", "r-root"}
    assert body["top_rules"][0]["rule_id"] == "r-list"
    ct = next(t for t in body["ingestion"] if t["table"] == "cloudtrail")
    assert ct["rows"] == 7 and ct["last_event"]


def test_tables(client, tokens, loaded):
    tables = client.get("/tables", headers=bearer(tokens["viewer"])).json()
    names = [t["name"] for t in tables]
    assert names[0] == "events" and "cloudtrail" in names
    ct = next(t for t in tables if t["name"] == "cloudtrail")
    assert ct["has_data"] and "eventName" in {c["name"] for c in ct["columns"]}


def test_queries_are_audited_with_what_was_asked(client, tokens):
    client.post("/query", json={"sql": "SELECT 42"}, headers=bearer(tokens["analyst"]))
    entries = client.get("/audit", headers=bearer(tokens["admin"])).json()["items"]
    q = next(e for e in entries if e["route"] == "/query")
    assert q["detail"] == {"action": "query", "kind": "sql", "text": "SELECT 42"}
    assert q["actor"].startswith("test-analyst") and q["status"] == 200
