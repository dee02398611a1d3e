"""APM questions answered offline by the rules tier, checked against answers computed
in plain Python from the raw spans (see :mod:`tests.nlq.apm_questions`)."""

from __future__ import annotations

import random
from typing import Any

import pytest

from mantissa.ask import answer
from tests.nlq.apm_questions import APM_CASES, END, ApmData, points_of, spans_of
from tests.nlq.evaluate import Outcome, check, report, table
from tests.nlq.questions import Case

CPU = "process.cpu.utilization"


def _metrics_request() -> Any:
    import datetime as dt

    from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
        ExportMetricsServiceRequest,
    )

    rng = random.Random(3)
    req = ExportMetricsServiceRequest()
    for svc in ("checkout", "payment", "cart"):
        rm = req.resource_metrics.add()
        kv = rm.resource.attributes.add()
        kv.key, kv.value.string_value = "service.name", svc
        m = rm.scope_metrics.add().metrics.add()
        m.name, m.unit = CPU, "1"
        for i in range(180):
            t = END - dt.timedelta(minutes=i, seconds=30)
            dp = m.gauge.data_points.add()
            dp.time_unix_nano = int(t.timestamp()) * 10**9
            dp.as_double = round(rng.random(), 6)
    return req


@pytest.fixture(scope="module")
def apm_lake(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, ApmData]:
    from mantissa.apm import demo, lake, otlp
    from mantissa.runtime import Runtime

    rt = Runtime(tmp_path_factory.mktemp("apm-nlq"))
    got = demo.load(rt, END)  # through the real OTLP decoder into the lake
    assert got["rejected"] == 0
    mreq = _metrics_request()
    limits = otlp.Limits(max_items=10**9, max_age_days=365)
    dec = otlp.decode_metrics(mreq.SerializeToString(), otlp.PROTOBUF, limits)
    lake.write_table(rt.storage, lake.METRICS, dec.table)
    data = ApmData(spans_of(demo.generate(END)), points_of(mreq))
    assert len(data.spans) == got["spans"]
    return rt, data


def _check(case: Case, expected: Any, ans: Any) -> tuple[str, str]:
    if case.kind not in ("edges", "slow", "traces"):
        return check(case, expected, ans)
    if not ans.answered:
        return "declined", ans.summary[:200]
    cols, rows = ans.columns, ans.rows
    got: Any
    if case.kind == "edges":
        got = {r[0]: r[cols.index("calls")] for r in rows}
    elif case.kind == "traces":
        if "trace_id" not in cols:
            return "wrong", f"no trace ids in {cols}"
        got = [r[cols.index("trace_id")] for r in rows]
    else:
        if "dependency" not in cols:
            return "wrong", f"no dependencies in {cols}"
        i, j, k = cols.index("dependency"), cols.index("calls"), cols.index("p99_ms")
        got = [(r[i], r[j]) for r in rows]
        want = [(dep, n) for dep, n, _ in expected]
        if got != want:
            return "wrong", f"got {got} expected {want}"
        for r, (_, _, p99) in zip(rows, expected, strict=True):
            if abs(float(r[k]) - p99) > 1e-6 * max(1.0, p99):
                return "wrong", f"p99 of {r[i]}: got {r[k]} expected {p99}"
        return "correct", ""
    return ("correct", "") if got == expected else ("wrong", f"got {got} expected {expected}")


def test_the_apm_set_is_large_and_varied() -> None:
    questions = [q for c in APM_CASES for q in c.questions]
    assert len(questions) >= 30
    assert len(set(questions)) == len(questions), "duplicate questions"
    assert {c.intent for c in APM_CASES} >= {"callers", "callees", "slow", "traces", "metrics"}
    for must in (
        "Why is checkout slow?",
        "P99 latency for user-service",
        "What services call payment?",
        "Show error traces today",
    ):
        assert must in questions


@pytest.mark.slow
def test_apm_questions_offline(apm_lake, capsys: pytest.CaptureFixture[str]) -> None:
    rt, data = apm_lake
    outcomes = []
    for case in APM_CASES:
        expected = case.expect(data)
        if case.kind != "decline":
            assert expected, f"the data set must make {case.questions[0]!r} non-trivial"
        for q in case.questions:
            ans = answer(rt, q, now=END)
            status, detail = _check(case, expected, ans)
            outcomes.append(Outcome(case.intent, q, status, detail))
    with capsys.disabled():
        print("\n" + table(report(outcomes)))
    wrong = [o for o in outcomes if o.status != "correct"]
    assert not wrong, wrong


@pytest.mark.slow
def test_the_incident_is_the_answer(apm_lake) -> None:
    """The planted incident shows: checkout waits on payment (timeouts) and inventory
    (slow queries); inventory waits on its database."""
    rt, _ = apm_lake
    a = answer(rt, "Why is checkout slow?", now=END)
    assert a.intent == "slow" and [r[0] for r in a.rows[:2]] == ["payment", "inventory"]
    assert a.summary.startswith("checkout waits longest on payment")
    b = answer(rt, "Why is inventory slow?", now=END)
    assert b.rows[0][0] == "postgresql/shop"
    c = answer(rt, "What services call payment?", now=END)
    assert c.intent == "callers" and "checkout" in c.summary


@pytest.mark.slow
@pytest.mark.parametrize("dialect", ["athena", "bigquery", "synapse", "spark"])
def test_apm_plans_render_in_every_dialect(apm_lake, dialect: str) -> None:
    """The APM intents (joins over parent → child spans) render to SQL each warehouse
    dialect parses back, with the time window on every side of the join."""
    import sqlglot

    from mantissa.ask.render import sqlglot_dialect

    rt, _ = apm_lake
    for q in (
        "What services call payment?",
        "what does checkout call",
        "Why is checkout slow?",
        "Show error traces today",
        "P99 latency for user-service",
    ):
        ans = answer(rt, q, now=END, dialect=dialect, explain=True)
        assert ans.answered and ans.sql, (q, ans.summary)
        tree = sqlglot.parse_one(ans.sql, read=sqlglot_dialect(dialect))
        assert tree.find(sqlglot.exp.Select) is not None
        if ans.intent in ("callers", "callees", "slow"):
            assert ans.sql.count("start_time") >= 4, ans.sql  # both sides bounded
