"""BigQuery engine over real HTTP against the REST stub in ``stub_bigquery.py``.

The stub answers queries by running them on DuckDB over the same local lake, so each
test compares the rows BigQuery's client hands back with DuckDB's own answer.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("google.cloud.bigquery", reason="the gcp extra is not installed")

from mantissa.errors import BudgetExceeded, ConfigError, QueryError, QueryTimeout
from tests.scale.stub_bigquery import StubBigQuery
from tests.scale.test_objectstore import cli_json, write_events

PROJECT = "acme-sec"
TOKEN = "ya29.stub-token"
GCS = "gs://acme-lake/prod"


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    d = tmp_path / "data"
    d.mkdir()
    src = tmp_path / "ev.ndjson"
    write_events(src, 400, hours=3)
    cli_json(d, "ingest", "-s", "cloudtrail", str(src))
    return d


@pytest.fixture
def stub(data_dir: Path) -> Iterator[StubBigQuery]:
    s = StubBigQuery(PROJECT, "EU", TOKEN, {GCS: data_dir / "lake"})
    yield s
    s.close()


def make_engine(data_dir: Path, stub: StubBigQuery, token: str = TOKEN, **kw: Any) -> Any:
    from google.oauth2.credentials import Credentials

    from mantissa.runtime import Runtime

    opts: dict[str, Any] = {
        "project": PROJECT,
        "location": "EU",
        "endpoint": stub.url,
        "lake_uri": GCS,
        "credentials": Credentials(token=token),
        "retry_initial_secs": 0.01,
        "timeout_secs": 20,
    }
    opts.update(kw)
    return Runtime(data_dir).make_engine("bigquery", **opts)


@pytest.fixture
def engine(data_dir: Path, stub: StubBigQuery) -> Any:
    eng = make_engine(data_dir, stub)
    eng.register()
    stub.calls.clear()
    return eng


def duck(data_dir: Path, sql: str, params: dict[str, Any] | None = None) -> list[list[Any]]:
    from mantissa.runtime import Runtime

    return Runtime(data_dir).make_engine("duckdb").execute(sql, params).rows


SQL = (
    "SELECT user, count(*) AS n, min(event_time) AS first_seen, avg(length(user)) AS avg_len, "
    "bool_or(eventName = 'DeleteBucket') AS deleted FROM cloudtrail "
    "WHERE event_time >= $since AND eventName <> $skip GROUP BY user ORDER BY user"
)
PARAMS = {"since": dt.datetime(2026, 3, 1, 1, tzinfo=dt.UTC), "skip": "ListBuckets"}


def test_query_flow_parameters_paging_and_real_rows(
    engine: Any, stub: StubBigQuery, data_dir: Path
) -> None:
    engine.page_size = 7
    stub.rate_limit = [403, 429]  # jobs.insert throttled twice, then accepted
    res = engine.execute(SQL, PARAMS)
    assert res.rows == duck(data_dir, SQL, PARAMS) and len(res.rows) == 50
    assert res.columns == ["user", "n", "first_seen", "avg_len", "deleted"]
    assert res.column_types == ["STRING", "INTEGER", "TIMESTAMP", "FLOAT", "BOOLEAN"]
    assert res.rows[0][2].tzinfo is not None and res.rows[0][2].utcoffset() == dt.timedelta(0)
    ops = stub.ops()
    inserts = [c for c in stub.calls if stub.op_name(c["method"], c["path"]) == "jobs.insert"]
    dry = [c for c in inserts if c["body"]["configuration"].get("dryRun")]
    real = [c for c in inserts if not c["body"]["configuration"].get("dryRun")]
    # no budget configured: no dry run; the job was throttled twice, then accepted
    assert len(dry) == 0 and len(real) == 3
    q = real[-1]["body"]["configuration"]["query"]
    # parameters travel as typed query parameters; the SQL only names them
    assert "@since" in q["query"] and "@skip" in q["query"] and "ListBuckets" not in q["query"]
    assert q["parameterMode"] == "NAMED"
    assert {p["name"]: p["parameterType"]["type"] for p in q["queryParameters"]} == {
        "since": "TIMESTAMP",
        "skip": "STRING",
    }
    assert q["defaultDataset"] == {"projectId": PROJECT, "datasetId": "mantissa"}
    pages = [
        c for c in stub.calls if stub.op_name(c["method"], c["path"]) == "jobs.getQueryResults"
    ]
    tokens = [c["query"].get("pageToken") for c in pages]
    assert {"7", "14", "49"} <= set(tokens)  # 50 rows in pages of 7
    assert all(c["query"].get("location") == "EU" for c in pages)
    assert "jobs.get" in ops or any(
        c["query"].get("maxResults") == "0" for c in pages
    )  # polled while PENDING/RUNNING
    assert engine.last_execution["id"].startswith("mantissa_")
    assert engine.last_execution["bytes_billed"] >= 10 * 1024 * 1024


def test_dry_run_is_the_estimate_and_budgets_refuse(
    data_dir: Path, stub: StubBigQuery, engine: Any
) -> None:
    from mantissa.engines.bigquery import bigquery_price

    stub.bytes_per_query = 3 * 1024**4  # a 3 TiB scan
    est = engine.estimate_cost(
        "SELECT count(*) FROM cloudtrail WHERE event_time >= '2026-03-01 02:00:00'"
    )
    assert est.bytes_scanned == 3 * 1024**4 and est.price_usd == pytest.approx(18.75)
    assert "dry run" in est.note
    sent = stub.calls[-1]["body"]["configuration"]
    assert sent["dryRun"] is True and "year" in sent["query"]["query"]  # no pruning lost
    assert bigquery_price(1) == pytest.approx(10 * 1024 * 1024 / 1024**4 * 6.25)
    capped = make_engine(data_dir, stub, max_query_usd=5.0)
    stub.calls.clear()
    with pytest.raises(BudgetExceeded) as ei:
        capped.execute("SELECT count(*) FROM cloudtrail")
    assert "$18.750000" in str(ei.value) and "max_query_usd" in str(ei.value)
    assert all(c["body"]["configuration"].get("dryRun") for c in stub.calls if c["body"])
    # per day: what ran today counts against the next query
    stub.bytes_per_query = 100 * 1024**3  # $0.61 each
    daily = make_engine(data_dir, stub, max_day_usd=1.0)
    daily.execute("SELECT count(*) FROM cloudtrail")
    with pytest.raises(BudgetExceeded, match="already spent today"):
        daily.execute("SELECT count(*) FROM cloudtrail")
    # BigQuery's own cap, maximumBytesBilled, is sent and its refusal explained
    capped_bq = make_engine(data_dir, stub, max_bytes_billed=1000)
    with pytest.raises(QueryError) as ei2:
        capped_bq.execute("SELECT count(*) FROM cloudtrail")
    assert "bytesBilledLimitExceeded" in str(ei2.value) and "max_bytes_billed" in (
        ei2.value.hint or ""
    )


def test_job_errors_name_the_job_and_the_fix(
    data_dir: Path, stub: StubBigQuery, engine: Any
) -> None:
    stub.fail_next_job = {
        "reason": "accessDenied",
        "message": "Access Denied: Table acme-sec:mantissa.cloudtrail",
    }
    with pytest.raises(QueryError) as ei:
        engine.execute("SELECT count(*) FROM cloudtrail")
    assert "BigQuery job mantissa_" in str(ei.value) and "accessDenied" in str(ei.value)
    assert "bigquery.jobUser" in (ei.value.hint or "")
    # a table that is not registered
    del stub.tables[("mantissa", "cloudtrail")]
    with pytest.raises(QueryError) as ei:
        engine.execute("SELECT count(*) FROM cloudtrail")
    assert "notFound" in str(ei.value) and "lake register --engine bigquery" in (
        ei.value.hint or ""
    )
    # wrong credentials
    bad = make_engine(data_dir, stub, token="expired")
    with pytest.raises(QueryError) as ei:
        bad.execute("SELECT 1 AS x FROM cloudtrail")
    assert "credentials" in (ei.value.hint or "")


def test_timeout_cancels_the_job(data_dir: Path, stub: StubBigQuery, engine: Any) -> None:
    stub.polls_before_done = 10_000
    slow = make_engine(data_dir, stub, timeout_secs=1.0)
    with pytest.raises(QueryTimeout) as ei:
        slow.execute("SELECT count(*) FROM cloudtrail")
    assert "mantissa_" in str(ei.value) and "cancelled" in str(ei.value)
    assert "jobs.cancel" in stub.ops()


def test_register_is_idempotent_and_events_view_queries(data_dir: Path, stub: StubBigQuery) -> None:
    eng = make_engine(data_dir, stub)
    first = eng.register()
    assert {"object": f"{PROJECT}.mantissa", "action": "created dataset"} in first
    assert {"object": f"{PROJECT}.mantissa.cloudtrail", "action": "created table"} in first
    again = eng.register()
    assert not any(a["action"].startswith("created") for a in again)
    t = stub.tables[("mantissa", "cloudtrail")]["externalDataConfiguration"]
    assert t["sourceUris"] == [f"{GCS}/logs/cloudtrail/*"]
    assert t["hivePartitioningOptions"] == {
        "mode": "CUSTOM",
        "sourceUriPrefix": f"{GCS}/logs/cloudtrail/{{year:INTEGER}}/{{month:INTEGER}}/"
        "{day:INTEGER}/{hour:INTEGER}",
        "requirePartitionFilter": False,
    }
    assert stub.tables[("mantissa", "events")]["type"] == "VIEW"
    sql = "SELECT source, count(*) AS n FROM events GROUP BY source"
    assert eng.execute(sql).rows == duck(data_dir, sql)


def test_register_needs_a_gcs_lake(data_dir: Path, stub: StubBigQuery) -> None:
    eng = make_engine(data_dir, stub, lake_uri=None)
    with pytest.raises(ConfigError, match="GCS"):
        eng.register()


def test_engines_check(data_dir: Path, stub: StubBigQuery, engine: Any) -> None:
    from mantissa.engines.check import run_checks

    out = run_checks(engine.storage, engine, since=None)
    assert out["ok"], out
    assert any(
        c["check"] == "engine sees cloudtrail" and "3 partitions" in c["detail"]
        for c in out["checks"]
    )
    del stub.tables[("mantissa", "cloudtrail")]
    out = run_checks(engine.storage, engine, since=None)
    assert not out["ok"]


def test_cli_register_check_and_query_with_adc(
    data_dir: Path, stub: StubBigQuery, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The whole path from mantissa.yaml: ADC from GOOGLE_APPLICATION_CREDENTIALS, no secrets in config."""
    import json

    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    stub.service_account_key = key.public_key()
    adc = tmp_path / "sa.json"
    adc.write_text(
        json.dumps(
            {
                "type": "service_account",
                "project_id": PROJECT,
                "private_key_id": "k1",
                "private_key": key.private_bytes(
                    serialization.Encoding.PEM,
                    serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption(),
                ).decode(),
                "client_email": f"mantissa@{PROJECT}.iam.gserviceaccount.com",
                "client_id": "1",
                "token_uri": f"{stub.url}/token",
            }
        )
    )
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(adc))
    (data_dir / "mantissa.yaml").write_text(
        "engine:\n  type: bigquery\n"
        f"  project: {PROJECT}\n  location: EU\n  endpoint: {stub.url}\n"
        f"  lake_uri: {GCS}\n  retry_initial_secs: 0.01\n"
    )
    out = cli_json(data_dir, "lake", "register", "--engine", "bigquery")
    assert {"object": f"{PROJECT}.mantissa.cloudtrail", "action": "created table"} in out["actions"]
    check = cli_json(data_dir, "engines", "check", "--since", "all")
    assert check["ok"] and check["engine"] == "bigquery"
    rows = cli_json(data_dir, "query", "--sql", "SELECT count(*) AS n FROM cloudtrail")
    assert rows["rows"] == [[400]]
    # a plain-English question runs on BigQuery too (the data is older than its 7-day default)
    q = cli_json(data_dir, "query", "how many cloudtrail events by user")
    assert q["sql"] and q["rows"] == []
    last = [c for c in stub.calls if c["body"].get("configuration", {}).get("query")][-1]
    assert "GROUP BY `user`" in last["body"]["configuration"]["query"]["query"]
    assert any(c["path"] == "/token" for c in stub.calls)  # the token came from ADC's refresh


@pytest.mark.slow
def test_detections_on_bigquery_match_duckdb(
    tmp_path: Path, stub: StubBigQuery, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The CloudTrail and Okta rule libraries over their sample events: the same alerts on
    both engines, except the two Okta rules on a dotted column BigQuery cannot name.

    Detections reach BigQuery as trees rendered by the BigQuery dialect layer
    (``execute_tree``); the stub runs that SQL on DuckDB, so this checks the rendering
    round-trips to the same rows, not BigQuery's own semantics. A packed unit that fails
    is re-run rule by rule, so the two failing rules do not silence the others.
    """
    import glob
    import json
    import shutil

    import yaml

    from mantissa.detect.rules import RuleIndex

    duck_dir, bq_dir = tmp_path / "duck", tmp_path / "bq"
    duck_dir.mkdir()
    for source in ("cloudtrail", "okta"):
        events = []
        for f in sorted(glob.glob(f"src/mantissa/rules/sigma/{source}/*.samples.yml")):
            doc = yaml.safe_load(Path(f).read_text())
            events += [e for e in doc.get("match") or [] if isinstance(e, dict)]
        src = tmp_path / f"{source}.ndjson"
        src.write_text("".join(json.dumps(e, default=str) + "\n" for e in events))
        cli_json(duck_dir, "ingest", "-s", source, str(src))
    window = ("--from", "2026-01-01T00:00:00Z", "--to", "2026-11-29T00:00:00Z")
    expected = cli_json(duck_dir, "detect", "run", *window)
    bq_dir.mkdir()
    shutil.copytree(duck_dir / "lake", bq_dir / "lake")
    stub.gcs[GCS] = bq_dir / "lake"
    eng = make_engine(bq_dir, stub)
    eng.register()
    monkeypatch.setattr("mantissa.runtime.Runtime.make_engine", lambda self, *a, **k: eng)
    got = cli_json(bq_dir, "detect", "run", *window)

    dotted = {
        r.id
        for r in RuleIndex.load(None).rules
        if r.name in ("okta_mfa_push_fatigue", "okta_password_spray")
    }

    def key(alerts: list[dict[str, Any]]) -> list[tuple[str, int]]:
        return sorted((a["rule_id"], a["count"]) for a in alerts if a["rule_id"] not in dotted)

    assert len(expected) >= 30 and {a["source"] for a in expected} == {"cloudtrail", "okta"}
    assert key(got) == key(expected) and len(key(got)) == len(expected) - 2
    sent = [
        c["body"]["configuration"]["query"]["query"]
        for c in stub.calls
        if c["body"].get("configuration")
    ]
    assert any("UNNEST(JSON_QUERY_ARRAY(" in q for q in sent)  # Okta's target[] matching


def test_engines_list_names_the_missing_extra(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mantissa.engines.bigquery as bq

    listed = {e["engine"]: e for e in cli_json(data_dir, "engines", "list")}
    assert listed["bigquery"]["available"] and listed["synapse"]["available"]
    monkeypatch.setattr(bq, "REQUIRES", {"google.cloud.not_installed_here": "gcp"})
    listed = {e["engine"]: e for e in cli_json(data_dir, "engines", "list")}
    assert not listed["bigquery"]["available"]
    assert listed["bigquery"]["note"] == "pip install 'mantissa-log[gcp]'"


def test_sql_rendering_keeps_utc_instants_and_parameters() -> None:
    import sqlglot

    from mantissa.engines.bigquery import to_bigquery_sql

    tree = sqlglot.parse_one(
        "SELECT count(*) FROM cloudtrail WHERE event_time >= TIMESTAMP '2026-03-01 01:00:00' "
        "AND event_time < CAST($until AS TIMESTAMP) AND user = :who",
        read="duckdb",
    )
    sql, names = to_bigquery_sql(tree)
    assert "DATETIME" not in sql and "CAST('2026-03-01 01:00:00' AS TIMESTAMP)" in sql
    assert names == ["until", "who"] and "@until" in sql and "@who" in sql


def test_percentile_question_runs_in_bigquery_sql(tmp_path: Path, stub: StubBigQuery) -> None:
    """A question's plan renders in BigQuery SQL directly (APPROX_QUANTILES), not
    transpiled from DuckDB's quantile_cont; the answer equals DuckDB's."""
    import time

    now = int(time.time())
    lines = [
        f"2 123456789012 eni-1 10.0.0.{i} 10.0.1.9 4{i:03d} 443 6 10 {1000 * (i + 1)} "
        f"{now - 120} {now - 60} ACCEPT OK"
        for i in range(40)
    ]
    src = tmp_path / "flows.log"
    src.write_text("\n".join(lines) + "\n")
    d = tmp_path / "flows"
    d.mkdir()
    cli_json(d, "ingest", "-s", "vpc_flow", str(src))
    expected = cli_json(d, "query", "median bytes of accepted flows today")
    assert expected["rows"], expected
    stub.gcs[GCS] = d / "lake"
    eng = make_engine(d, stub)
    eng.register()
    from mantissa.ask import answer
    from mantissa.runtime import Runtime

    rt = Runtime(d)
    rt.__dict__["engine"] = eng  # the cached engine of this runtime is BigQuery
    got = answer(rt, "median bytes of accepted flows today")
    assert got.rows == expected["rows"], (got.rows, expected["rows"])
    sent = [
        c["body"]["configuration"]["query"]["query"]
        for c in stub.calls
        if c["body"].get("configuration")
    ]
    assert "APPROX_QUANTILES(" in sent[-1]
