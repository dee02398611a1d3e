"""Spark local[2] over the same lake as DuckDB: identical rows, value types and UTC timestamps."""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("pyspark", reason="pyspark is not installed: pip install -e '.[spark]'")
if shutil.which("java") is None:
    pytest.skip(
        "no Java runtime: run scripts/test-deps.sh (openjdk-17-jre-headless)",
        allow_module_level=True,
    )

pytestmark = pytest.mark.slow

from tests.conftest import FIXTURES  # noqa: E402
from tests.scale.test_objectstore import cli_json, write_events  # noqa: E402

QUERIES = [
    "SELECT count(*) AS n FROM cloudtrail",
    "SELECT eventName, count(*) AS n FROM cloudtrail GROUP BY eventName ORDER BY n DESC, eventName",
    "SELECT user, count(DISTINCT src_ip) AS ips, min(event_time) AS first, max(event_time) AS last "
    "FROM cloudtrail WHERE eventName = 'DeleteBucket' GROUP BY user ORDER BY user",
    "SELECT event_id, event_time, src_ip FROM cloudtrail "
    "WHERE event_time >= '2026-03-01 02:00:00' AND event_time < '2026-03-01 03:00:00' "
    "ORDER BY event_id LIMIT 50",
    "SELECT source, count(*) AS n FROM events GROUP BY source ORDER BY source",
    "SELECT lower(user) AS u, count(*) AS n FROM cloudtrail WHERE src_ip LIKE '10.0.1%' "
    "GROUP BY lower(user) HAVING count(*) > 2 ORDER BY n DESC, u LIMIT 10",
    "SELECT hour, count(*) AS n FROM cloudtrail GROUP BY hour ORDER BY hour",
    "SELECT outcome, count(*) AS n FROM events WHERE event_time > '2026-03-01 04:00:00Z' "
    "GROUP BY outcome ORDER BY outcome",
]


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tmp_path_factory.mktemp("spark") / "data"
    data.mkdir()
    src = data.parent / "ev.ndjson"
    write_events(src, 5000, hours=6)
    cli_json(data, "ingest", "-s", "cloudtrail", str(src))
    for source in ("okta", "syslog"):
        for f in sorted((FIXTURES / source).glob("*")):
            if f.is_file() and not f.name.endswith(".expected.json") and f.suffix != ".md":
                cli_json(data, "ingest", "-s", source, str(f))
                break
    return data


@pytest.fixture(scope="module")
def engines(lake: Path) -> tuple[Any, Any]:
    from mantissa.runtime import Runtime

    rt = Runtime(lake)
    return rt.make_engine("duckdb"), rt.make_engine("spark", master="local[2]")


def _norm(v: Any) -> Any:
    if isinstance(v, float):
        return round(v, 9)
    return v


def test_java_present() -> None:
    out = subprocess.run(["java", "-version"], capture_output=True, text=True)
    assert out.returncode == 0 and "version" in out.stderr


@pytest.mark.parametrize("sql", QUERIES)
def test_same_rows_types_and_utc_times(engines: tuple[Any, Any], sql: str) -> None:
    duck, spark = engines
    a = duck.execute(sql)
    b = spark.execute(sql)
    assert [c.lower() for c in a.columns] == [c.lower() for c in b.columns]
    assert len(a.rows) == len(b.rows) and a.rows, sql
    for ra, rb in zip(a.rows, b.rows, strict=True):
        assert [_norm(x) for x in ra] == [_norm(x) for x in rb], sql
        assert [type(x) for x in ra] == [type(x) for x in rb], sql
        for x in rb:
            if isinstance(x, dt.datetime):
                assert x.utcoffset() == dt.timedelta(0)


def test_spark_reads_only_committed_files(lake: Path, engines: tuple[Any, Any]) -> None:
    duck, spark = engines
    part = next((lake / "lake" / "logs" / "cloudtrail").rglob("hour=00"))
    # a half-written file of a dead writer, hidden by its temp name: ignored by both
    (part / ".deadbeef.parquet.tmp").write_bytes(b"PAR1 not really")
    assert duck.execute(QUERIES[0]).rows == spark.execute(QUERIES[0]).rows


def test_spark_cost_and_budget(engines: tuple[Any, Any], lake: Path) -> None:
    from mantissa.errors import BudgetExceeded
    from mantissa.runtime import Runtime

    _, spark = engines
    est = spark.estimate_cost(QUERIES[3])
    full = spark.estimate_cost(QUERIES[0])
    assert 0 < est.bytes_scanned < full.bytes_scanned and est.files == 2  # hours 02 and 03
    capped = Runtime(lake).make_engine("spark", max_query_bytes=10)
    with pytest.raises(BudgetExceeded) as ei:
        capped.execute(QUERIES[0])
    assert "bytes" in str(ei.value) and str(full.bytes_scanned)[:3] in str(ei.value).replace(
        ",", ""
    )


def test_spark_timeout_and_bad_sql(lake: Path, engines: tuple[Any, Any]) -> None:
    from mantissa.errors import QueryError, QueryRejected

    _, spark = engines
    with pytest.raises(QueryRejected):
        spark.execute("DROP TABLE cloudtrail")
    with pytest.raises(QueryError):
        spark.execute("SELECT no_such_column FROM cloudtrail")
