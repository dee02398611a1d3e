"""Golden SQL per dialect for the compiler, and every statement parsed back by sqlglot.

The table schemas are pinned here (not read from the live parsers) so that the golden
files change only when the compiler does.
"""

from __future__ import annotations

import datetime as dt
import os
import uuid
from pathlib import Path

import pytest
import sqlglot
import yaml

from mantissa.detect import backend
from mantissa.detect.dialects import DIALECTS, SQLGLOT_NAME, render
from mantissa.detect.pipelines import DetectConfig, array_fields
from mantissa.detect.query import pack_tree
from mantissa.detect.rules import RuleIndex
from mantissa.sources.base import COMMON_COLUMNS

GOLDEN = Path(__file__).parent / "golden"
CASES = yaml.safe_load((GOLDEN / "cases.yml").read_text())
UPDATE = os.environ.get("MANTISSA_UPDATE_GOLDEN") == "1"
START = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
END = dt.datetime(2026, 11, 1, 1, tzinfo=dt.UTC)

SCHEMAS = {
    "cloudtrail": [
        *COMMON_COLUMNS.items(),
        ("eventName", "VARCHAR"),
        ("eventSource", "VARCHAR"),
        ("sourceIPAddress", "VARCHAR"),
        ("userAgent", "VARCHAR"),
        ("errorCode", "VARCHAR"),
        ("errorMessage", "VARCHAR"),
        ("readOnly", "BOOLEAN"),
        (
            "userIdentity",
            'STRUCT("type" VARCHAR, userName VARCHAR, sessionContext STRUCT('
            'sessionIssuer STRUCT("type" VARCHAR, userName VARCHAR)))',
        ),
        ("requestParameters", "JSON"),
        ("responseElements", "JSON"),
    ],
    "okta": [
        *COMMON_COLUMNS.items(),
        ("eventType", "VARCHAR"),
        ("actor", "STRUCT(id VARCHAR, alternateId VARCHAR)"),
        ("target", "JSON"),
    ],
}


@pytest.fixture(autouse=True)
def pinned_schema(monkeypatch: pytest.MonkeyPatch) -> None:
    def for_table(cls, table, array_paths=None):  # type: ignore[no-untyped-def]
        return backend.TableSchema(table, SCHEMAS[table], array_fields(table, DetectConfig()))

    monkeypatch.setattr(backend.TableSchema, "for_table", classmethod(for_table))


def _index(tmp_path: Path, name: str) -> RuleIndex:
    rid = str(uuid.uuid5(uuid.NAMESPACE_URL, f"golden/{name}"))
    doc = {"title": name, "id": rid, "level": "high", **CASES[name]}
    f = tmp_path / f"{name}.yml"
    f.write_text(yaml.safe_dump(doc, sort_keys=False))
    return RuleIndex.load(None, paths=[f])


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("name", sorted(CASES))
def test_golden_sql(tmp_path: Path, name: str, dialect: str) -> None:
    idx = _index(tmp_path, name)
    assert not idx.issues, idx.issues
    compiled = idx.compiled(idx.rules[0])
    sql = compiled.sql(dialect, START, END, pretty=True)
    sqlglot.parse_one(sql, read=SQLGLOT_NAME[dialect])  # valid in its own dialect
    golden = GOLDEN / f"{name}.{dialect}.sql"
    if UPDATE or not golden.exists():
        golden.write_text(sql + "\n")
    assert sql + "\n" == golden.read_text()


@pytest.mark.parametrize("dialect", DIALECTS)
def test_packed_scan_parses_in_every_dialect(tmp_path: Path, dialect: str) -> None:
    plain = ["wildcards_and_escaping", "regex_flags", "cidr_v4_v6", "not_exists_null_numeric"]
    compiled = [_index(tmp_path, n).compiled(_index(tmp_path, n).rules[0]) for n in plain]
    sql = render(pack_tree(compiled, START, END), dialect)
    tree = sqlglot.parse_one(sql, read=SQLGLOT_NAME[dialect])
    assert (
        sql.count("FROM cloudtrail") == 1
        or sql.count("FROM `cloudtrail`") == 1
        or (sql.count("FROM [cloudtrail]") == 1 or sql.count('FROM "cloudtrail"') == 1)
    ), "several rules must share one scan"
    assert tree is not None


def test_dialect_specific_constructs(tmp_path: Path) -> None:
    """The constructs sqlglot mis-transpiles are emitted per dialect by us."""
    agg = _index(tmp_path, "aggregation_count_by_timeframe")
    c = agg.compiled(agg.rules[0])
    assert "epoch(" in c.sql("duckdb")
    assert "to_unixtime(" in c.sql("athena")
    assert "UNIX_SECONDS(" in c.sql("bigquery")
    assert "DATEDIFF_BIG(SECOND" in c.sql("synapse")
    assert "unix_timestamp(" in c.sql("spark")
    ok = _index(tmp_path, "okta_any_element")
    c = ok.compiled(ok.rules[0])
    assert "list_bool_or([" in c.sql("duckdb") and "[*]" in c.sql("duckdb")
    assert "any_match(" in c.sql("athena")
    assert "UNNEST(JSON_QUERY_ARRAY(" in c.sql("bigquery")
    assert "OPENJSON(" in c.sql("synapse")
    assert "exists(from_json(" in c.sql("spark")
    nn = _index(tmp_path, "not_exists_null_numeric")
    c = nn.compiled(nn.rules[0])
    assert "NOT COALESCE(" in c.sql("duckdb")
    assert "NOT (CASE WHEN" in c.sql("synapse")
    wc = _index(tmp_path, "wildcards_and_escaping")
    c = wc.compiled(wc.rules[0])
    assert "ESCAPE" not in c.sql("bigquery")  # BigQuery LIKE escapes with backslash, no clause
    assert "ESCAPE '\\'" in c.sql("duckdb")
