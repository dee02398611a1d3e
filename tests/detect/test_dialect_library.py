"""Every rule of the built-in library renders in every engine dialect and parses back;
Sigma ``value_percentile`` / ``value_median`` correlations use each dialect's own syntax."""

from __future__ import annotations

import datetime as dt
import statistics
from pathlib import Path

import pytest
import sqlglot
import yaml
from sqlglot import exp

from mantissa.detect.dialects import DIALECTS, SQLGLOT_NAME
from mantissa.detect.rules import RuleIndex

START = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
END = dt.datetime(2026, 11, 1, 1, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def library() -> RuleIndex:
    idx = RuleIndex.load(None)
    assert not idx.issues, idx.issues
    return idx


def test_library_is_big(library: RuleIndex) -> None:
    assert len(library.rules) >= 150


@pytest.mark.slow
@pytest.mark.parametrize("dialect", DIALECTS)
def test_every_library_rule_renders_and_parses(library: RuleIndex, dialect: str) -> None:
    failures = []
    for rule in library.rules:
        sql = library.compiled(rule).sql(dialect, START, END)
        try:
            tree = sqlglot.parse_one(sql, read=SQLGLOT_NAME[dialect])
        except sqlglot.errors.ParseError as e:
            failures.append(f"{rule.name or rule.id}: {str(e)[:200]}")
            continue
        assert isinstance(tree, exp.Query), rule.name
        if dialect == "synapse":
            # T-SQL has no boolean literals and no LIMIT
            assert " LIMIT " not in sql and " TRUE" not in sql.upper().replace("TRUE)", ""), (
                rule.name
            )
    assert not failures, failures


def _correlation(tmp_path: Path, ctype: str, condition: dict[str, object]) -> RuleIndex:
    base = {
        "title": "entry span",
        "name": "t_entry_span",
        "id": "5a0c4e0c-1b8e-4c38-9a38-8e3f2b6d1a01",
        "status": "stable",
        "logsource": {"product": "apm", "service": "traces"},
        "detection": {"sel": {"kind": "SERVER"}, "condition": "sel"},
        "level": "low",
    }
    corr = {
        "title": f"{ctype} of latency",
        "id": "5a0c4e0c-1b8e-4c38-9a38-8e3f2b6d1a02",
        "status": "stable",
        "correlation": {
            "type": ctype,
            "rules": ["t_entry_span"],
            "group-by": ["service_name"],
            "timespan": "5m",
            "condition": condition,
        },
        "level": "medium",
    }
    f = tmp_path / "rules.yml"
    f.write_text(yaml.safe_dump_all([base, corr], sort_keys=False))
    idx = RuleIndex.load(None, paths=[f])
    assert not idx.issues, idx.issues
    return idx


PERCENTILE_SYNTAX = {
    "duckdb": "QUANTILE_CONT(TRY_CAST(agg_field AS DOUBLE), {q}) OVER (",
    "athena": "approx_percentile(TRY_CAST(agg_field AS DOUBLE), {q}) OVER (",
    "bigquery": "PERCENTILE_CONT(SAFE_CAST(agg_field AS FLOAT64), {q}) OVER (",
    "synapse": "PERCENTILE_CONT({q}) WITHIN GROUP (ORDER BY TRY_CAST(agg_field AS FLOAT)) OVER (",
    "spark": "percentile(CAST(agg_field AS DOUBLE), {q}) OVER (",
}


@pytest.mark.parametrize("dialect", DIALECTS)
def test_value_percentile_and_median_per_dialect(tmp_path: Path, dialect: str) -> None:
    p95 = _correlation(
        tmp_path, "value_percentile", {"field": "duration_ms", "percentile": 95, "gte": 500}
    )
    med = _correlation(tmp_path, "value_median", {"field": "duration_ms", "gt": 200})
    for idx, q in ((p95, "0.95"), (med, "0.5")):
        rule = next(r for r in idx.rules if r.name != "t_entry_span")
        sql = idx.compiled(rule).sql(dialect, START, END)
        assert PERCENTILE_SYNTAX[dialect].format(q=q) in sql, sql
        sqlglot.parse_one(sql, read=SQLGLOT_NAME[dialect])


def test_value_median_runs_on_duckdb() -> None:
    """The median window the rule uses is the true median of each group."""
    import duckdb

    vals = {"a": [100, 250, 300, 900], "b": [10, 20, 30]}
    rows = ", ".join(f"('{g}', {v})" for g, vs in vals.items() for v in vs)
    tree = exp.select(
        "g",
        exp.alias_(
            exp.Window(
                this=exp.PercentileCont(this=exp.column("x"), expression=exp.Literal.number(0.5)),
                partition_by=[exp.column("g")],
            ),
            "m",
        ),
    ).from_(f"(VALUES {rows}) AS t(g, x)")
    from mantissa.detect.dialects import render

    got = dict(duckdb.sql(render(tree, "duckdb")).fetchall())
    assert got == {g: statistics.median(vs) for g, vs in vals.items()}


def test_synapse_reads_nested_columns_as_one_json_path(library: RuleIndex) -> None:
    """OPENROWSET returns nested Parquet as JSON text: struct path + JSON path = one path."""
    rule = next(r for r in library.rules if r.name == "okta_threat_suspected")
    sql = library.compiled(rule).sql("synapse", START, END)
    assert 'JSON_VALUE([debugContext], \'$."debugData"."threatSuspected"\')' in sql
    assert "JSON_VALUE(JSON_VALUE(" not in sql
