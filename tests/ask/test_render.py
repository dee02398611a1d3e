"""Plans render to valid SQL in all five dialects, with per-dialect functions."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlglot

from mantissa.ask.plan import Filter, Metric, Order, QueryPlan
from mantissa.ask.render import cidr_patterns, render, sqlglot_dialect
from mantissa.ask.timerange import TimeRange

T = TimeRange(
    start=dt.datetime(2026, 11, 24, tzinfo=dt.UTC),
    end=dt.datetime(2026, 11, 25, tzinfo=dt.UTC),
    label="x",
)
F = [
    Filter(column="outcome", op="eq", value="failure"),
    Filter(column="geo_country", op="not_in", value=["US", "United States"]),
    Filter(column="src_ip", op="cidr", value="10.0.0.0/20"),
    Filter(column="event_type", op="in", value=["ConsoleLogin"], source="cloudtrail", group="c"),
    Filter(column="event_type", op="in", value=["user.session.start"], source="okta", group="c"),
    Filter(column="requestParameters$.bucketName", op="contains", value="fin_%"),
    Filter(column="userIdentity.type", op="eq", value="Root"),
]
PLANS = [
    QueryPlan(
        intent="search",
        table="events",
        filters=F[:5],
        time_range=T,
        columns=["event_time", "user"],
        order=[Order(by="event_time")],
        limit=100,
    ),
    QueryPlan(intent="count", table="cloudtrail", filters=F, time_range=T),
    QueryPlan(
        intent="top_k",
        table="events",
        filters=F[:2],
        time_range=T,
        group_by=["user"],
        order=[Order(by="count")],
        limit=5,
    ),
    QueryPlan(intent="breakdown", table="events", time_range=T, bucket="hour", group_by=["source"]),
    QueryPlan(intent="compare", table="events", time_range=T, compare_to=T.shifted_back()),
    QueryPlan(
        intent="percentile",
        table="vpc_flow",
        time_range=T,
        metric=Metric(func="percentile", column="bytes", q=0.99),
        group_by=["dst_ip"],
    ),
    QueryPlan(
        intent="count",
        table="okta",
        time_range=T,
        metric=Metric(func="count_distinct", column="user"),
    ),
    QueryPlan(
        intent="top_k",
        table="vpc_flow",
        time_range=T,
        group_by=["dst_ip"],
        metric=Metric(func="sum", column="bytes"),
        order=[Order(by="sum_bytes")],
        limit=5,
    ),
]
DIALECTS = ["duckdb", "athena", "bigquery", "synapse", "spark"]


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("i", range(len(PLANS)))
def test_every_plan_renders_and_parses_back(i: int, dialect: str) -> None:
    sql = render(PLANS[i], dialect)
    parsed = sqlglot.parse(sql, read=sqlglot_dialect(dialect))
    assert len(parsed) == 1 and parsed[0] is not None
    assert "2026-11-24 00:00:00" in sql  # literal time bounds


def test_percentiles_per_dialect() -> None:
    p = PLANS[5]
    assert "QUANTILE_CONT" in render(p, "duckdb").upper()
    assert "APPROX_PERCENTILE(" in render(p, "athena").upper()
    assert "APPROX_QUANTILES(" in render(p, "bigquery").upper()
    assert "APPROX_PERCENTILE_CONT(0.99) WITHIN GROUP" in render(p, "synapse").upper()
    assert "PERCENTILE_APPROX(" in render(p, "spark").upper()


def test_time_types_and_limits_per_dialect() -> None:
    assert "AS TIMESTAMPTZ" in render(PLANS[0], "duckdb")
    assert "TIMESTAMP WITH TIME ZONE" in render(PLANS[0], "athena")
    assert "DATETIMEOFFSET" in render(PLANS[0], "synapse")
    assert "TOP 100" in render(PLANS[0], "synapse")
    assert "LOWER(" in render(PLANS[0], "bigquery")


def test_cidr_patterns_are_exact() -> None:
    assert cidr_patterns("10.1.0.0/16") == ["10.1.%"]
    assert cidr_patterns("203.0.113.0/24") == ["203.0.113.%"]
    assert cidr_patterns("10.0.0.0/20") == [f"10.0.{i}.%" for i in range(16)]
    assert cidr_patterns("198.51.100.8/30") == [f"198.51.100.{i}" for i in range(8, 12)]
    assert cidr_patterns("1.2.3.4/32") == ["1.2.3.4"]


def test_duckdb_sql_runs_on_the_engine(ask_lake) -> None:
    rt, _, _ = ask_lake
    for p in PLANS:
        if p.table in rt.engine.tables():
            res = rt.engine.execute(render(p, "duckdb"))
            assert res.columns


def test_unknown_dialect_is_a_clear_error() -> None:
    from mantissa.errors import QueryError

    with pytest.raises(QueryError, match="unknown dialect"):
        render(PLANS[0], "oracle")
