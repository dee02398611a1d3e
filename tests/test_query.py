"""Queries: output shapes, the SQL guard, the engine sandbox, partition pruning."""

from __future__ import annotations

import csv
import io
import json

import pytest

from mantissa.engines.duckdb import DuckDBEngine
from mantissa.engines.guard import guard
from mantissa.errors import QueryRejected, QueryTimeout
from mantissa.lake.storage import LocalStorage
from tests.conftest import FIXTURES


@pytest.fixture
def loaded(cli, data_dir):
    r = cli("ingest", "-s", "cloudtrail", str(FIXTURES / "cloudtrail"), "-f", "json")
    assert r.code == 0
    return data_dir


def test_query_json_shape(cli, loaded):
    r = cli(
        "query",
        "--sql",
        "SELECT event_type, user FROM cloudtrail ORDER BY event_time LIMIT 2",
        "--format",
        "json",
    )
    assert r.code == 0, r.err
    out = json.loads(r.out)
    assert set(out) >= {"sql", "columns", "rows", "elapsed_ms"}
    assert out["columns"] == ["event_type", "user"]
    assert out["rows"] == [["CreateBucket", "alice"], ["ConsoleLogin", "root"]]


def test_query_csv_and_table(cli, loaded):
    r = cli(
        "query",
        "--sql",
        "SELECT event_id, event_time FROM cloudtrail ORDER BY 2 LIMIT 1",
        "-f",
        "csv",
    )
    rows = list(csv.reader(io.StringIO(r.out)))
    assert rows == [
        ["event_id", "event_time"],
        ["11111111-1111-1111-1111-111111111111", "2026-03-01T10:15:00Z"],
    ]
    r = cli("query", "--sql", "SELECT count(*) AS n FROM cloudtrail")
    assert r.code == 0 and "5" in r.out


def test_events_view_unions_common_columns(cli, loaded):
    out = cli(
        "query", "--sql", "SELECT source, count(*) FROM events GROUP BY 1", "-f", "json"
    ).json()
    assert out["rows"] == [["cloudtrail", 5]]
    # a table with no data yet is still queryable (empty), with its columns
    out = cli(
        "query", "--sql", "SELECT count(*) FROM cloudtrail WHERE event_time > now()", "-f", "json"
    ).json()
    assert out["rows"] == [[0]]


HOSTILE = [
    ("SELECT * FROM read_text('/etc/passwd')", "table functions"),
    ("SELECT read_text('/etc/passwd')", "not allowed"),
    ("SELECT * FROM read_csv_auto('/etc/passwd')", "table functions"),
    ("COPY (SELECT 1) TO '/tmp/x.csv'", "read-only"),
    ("ATTACH '/tmp/evil.db' AS evil", "read-only"),
    ("INSTALL httpfs", "read-only"),
    ("LOAD httpfs", "read-only"),
    ("CREATE TABLE t AS SELECT 1", "read-only"),
    ("DROP VIEW cloudtrail", "read-only"),
    ("INSERT INTO cloudtrail SELECT * FROM cloudtrail", "read-only"),
    ("DELETE FROM cloudtrail", "read-only"),
    ("UPDATE cloudtrail SET user = 'x'", "read-only"),
    ("SET enable_external_access = true", "read-only"),
    ("PRAGMA database_list", "read-only"),
    ("SELECT 1; DROP TABLE cloudtrail", "exactly one statement"),
    ("SELECT * FROM '/etc/passwd'", "unknown table"),
    ("SELECT * FROM secret_table", "unknown table"),
    ("SELECT getenv('HOME')", "not allowed"),
    ("SELECT current_setting('allowed_directories')", "not allowed"),
    ("SELECT * FROM other_db.main.cloudtrail", "qualified"),
]


@pytest.mark.parametrize("sql,message", HOSTILE)
def test_guard_rejects(cli, loaded, sql, message):
    r = cli("query", "--sql", sql, "-f", "json")
    assert r.code == 2
    assert message in r.err
    assert r.out == ""


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM read_text('/etc/passwd')",
        "COPY (SELECT 1) TO '/tmp/mantissa-escape.csv'",
        "ATTACH '/tmp/mantissa-escape.db'",
        "INSTALL httpfs",
        "SET enable_external_access = true",
        "CREATE TABLE x AS SELECT 1",
    ],
)
def test_engine_sandbox_blocks_even_without_guard(loaded, sql):
    """Second line of defence: the locked DuckDB session refuses these by itself."""
    engine = DuckDBEngine(LocalStorage(loaded / "lake"))
    con = engine.connect()
    with pytest.raises(Exception) as exc:
        con.execute(sql)
        # CREATE in the in-memory catalog succeeds; it can never touch the lake or disk
        if sql.startswith("CREATE"):
            con.execute("COPY x TO '/tmp/mantissa-escape.csv'")
    assert (
        "disabled" in str(exc.value)
        or "Permission" in str(exc.value)
        or "lock" in str(exc.value).lower()
    )


def test_limit_is_clamped():
    g = guard("SELECT * FROM cloudtrail LIMIT 100000000", ["cloudtrail"], max_limit=1000)
    assert "LIMIT 1000" in g.sql()


def test_row_cap_and_timeout(loaded):
    engine = DuckDBEngine(LocalStorage(loaded / "lake"), max_rows=2)
    res = engine.execute("SELECT * FROM cloudtrail")
    assert len(res.rows) == 2 and res.truncated
    slow = DuckDBEngine(LocalStorage(loaded / "lake"), timeout_secs=0.5)
    with pytest.raises(QueryTimeout):
        slow.execute(
            "WITH RECURSIVE r(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM r WHERE i < 1000000000000) SELECT count(*) FROM r"
        )


def test_hour_query_opens_one_hours_files(loaded):
    engine = DuckDBEngine(LocalStorage(loaded / "lake"))
    sql = (
        "SELECT count(*) FROM cloudtrail WHERE event_time >= TIMESTAMP '2026-03-01 11:00:00' "
        "AND event_time < TIMESTAMP '2026-03-01 12:00:00'"
    )
    prepared = engine.prepare(sql)
    con = engine.connect()
    plan = con.execute("EXPLAIN ANALYZE " + prepared).fetchall()[0][1]
    assert "Total Files Read: 1" in plan, plan
    assert engine.execute(sql).rows == [[2]]
    est = engine.estimate_cost(sql)
    assert est.files == 1 and est.partitions == 1 and est.bytes_scanned > 0
    # without the time filter, all five files are read
    assert engine.estimate_cost("SELECT count(*) FROM cloudtrail").files == 4


def test_pruning_keeps_results_identical(loaded):
    engine = DuckDBEngine(LocalStorage(loaded / "lake"))
    for lo, hi in [
        ("2026-03-01 10:15:00", "2026-03-02 08:00:01"),
        ("2026-02-28 00:00:00", "2026-03-10 00:00:00"),
        ("2026-03-01 11:20:00", "2026-03-01 11:20:00"),
    ]:
        pruned = engine.execute(
            f"SELECT event_id FROM cloudtrail WHERE event_time BETWEEN '{lo}' AND '{hi}' ORDER BY 1"
        )
        full = engine.execute(
            f"SELECT event_id FROM cloudtrail WHERE CAST(event_time AS VARCHAR) >= '' AND "
            f"event_time + INTERVAL 0 SECOND BETWEEN CAST('{lo}' AS TIMESTAMPTZ) AND CAST('{hi}' AS TIMESTAMPTZ) ORDER BY 1"
        )
        assert pruned.rows == full.rows


def test_guard_rejects_empty_and_unparseable():
    with pytest.raises(QueryRejected):
        guard("", ["cloudtrail"])
    with pytest.raises(QueryRejected, match="could not parse"):
        guard("SELEC * FRM", ["cloudtrail"])


def test_sources_and_stats_commands(cli, loaded):
    out = cli("sources", "-f", "json").json()
    ct = next(s for s in out if s["source"] == "cloudtrail")
    names = [c["name"] for c in ct["columns"]]
    assert names[:3] == ["event_time", "source", "event_id"] and "eventName" in names
    stats = cli("stats", "-f", "json").json()
    row = next(s for s in stats if s["table"] == "cloudtrail")
    assert row["rows"] == 5 and row["partitions"] == 4 and row["files"] == 4 and row["bytes"] > 0
    assert row["first_event"] == "2026-03-01T10:15:00Z"
    assert row["last_event"] == "2026-03-02T09:30:00Z"
    assert cli("tables", "-f", "json").json() == stats
