"""The per-minute rollups give the same service map and RED as the raw spans (and as a
plain self-join): across a minute boundary, at hour boundaries, and after late spans."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from mantissa.apm import lake, otlp, queries, rollup, samples, service_map
from mantissa.runtime import Runtime

# 10:00 of the previous day: every span below is well inside the accepted age
ANCHOR = (dt.datetime.now(dt.UTC) - dt.timedelta(days=1)).replace(
    hour=10, minute=0, second=0, microsecond=0
)
A_NS = int(ANCHOR.timestamp()) * 10**9


def write(rt: Runtime, spans: list[dict[str, Any]]) -> None:
    req = samples.trace_request(spans, now_ns=A_NS)
    dec = otlp.traces_to_table(req, otlp.Limits(max_items=10**6, max_age_days=365))
    assert not dec.rejected
    lake.write_table(rt.storage, lake.TRACES, dec.table)


def call(trace: str, at: float, caller: str, callee: str, **kw: Any) -> list[dict[str, Any]]:
    """A SERVER span of ``caller`` with a CLIENT child, whose SERVER child is ``callee``'s."""
    return [
        {"trace": trace, "span": "a", "service": caller, "kind": "SERVER", "at": at,
         "duration_ms": 40},
        {"trace": trace, "span": "b", "parent": "a", "service": caller, "kind": "CLIENT",
         "at": at + kw.get("gap", 0.01), "duration_ms": 30},
        {"trace": trace, "span": "c", "parent": "b", "service": callee, "kind": "SERVER",
         "at": at + 2 * kw.get("gap", 0.01), "duration_ms": kw.get("ms", 20),
         "status": kw.get("status", "UNSET")},
    ]  # fmt: skip


def self_join(rt: Runtime, lo: dt.datetime, hi: dt.datetime | None = None) -> dict[Any, Any]:
    bounds = f"c.start_time >= TIMESTAMPTZ '{lo.isoformat()}' AND p.start_time >= TIMESTAMPTZ '{lo.isoformat()}'"
    if hi is not None:
        bounds += f" AND c.start_time < TIMESTAMPTZ '{hi.isoformat()}' AND p.start_time < TIMESTAMPTZ '{hi.isoformat()}'"
    rows = rt.engine.execute(
        "SELECT p.service_name, c.service_name, count(*), "
        "count(*) FILTER (WHERE c.status_code = 'ERROR') "
        "FROM traces c JOIN traces p ON c.trace_id = p.trace_id AND c.parent_span_id = p.span_id "
        f"WHERE c.service_name <> p.service_name AND {bounds} GROUP BY ALL"
    ).rows
    return {(r[0], r[1]): (r[2], r[3]) for r in rows}


def edges(m: dict[str, Any]) -> dict[Any, Any]:
    return {
        (e["source"], e["target"]): (e["calls"], e["errors"])
        for e in m["edges"]
        if not e["virtual"]
    }


@pytest.fixture
def rt(tmp_path) -> Runtime:
    rollup.MEMO.clear()
    return Runtime(tmp_path / "data")


def check_same(rt: Runtime, w: queries.Window, sampled: bool = False) -> dict[Any, Any]:
    """Rollup == raw spans == self-join, for the map and the services (sampled spans
    count 1/p times: the self-join counts them once)."""
    assert rollup.aligned(w)
    via_rollup = service_map.service_map(rt.storage, w, cache=False)
    raw = service_map.service_map(rt.storage, w, cache=False, rollup=False)
    assert via_rollup["edges"] == raw["edges"]
    assert sorted(via_rollup["nodes"], key=lambda n: n["id"]) == sorted(
        raw["nodes"], key=lambda n: n["id"]
    )
    if not sampled:
        assert edges(via_rollup) == self_join(rt, w.since, w.until)
    a = queries.services(rt.storage, w)
    b = queries.services(rt.storage, w, rollup=False)
    strip = lambda rows: [{k: v for k, v in r.items() if k != "rate_per_min"} for r in rows]  # noqa: E731
    assert strip(a) == strip(b)
    return edges(via_rollup)


def test_an_edge_across_a_minute_boundary_counts_only_when_both_minutes_are_in(rt):
    # parent at 10:04:59.99, callee at 10:05:00.01
    spans = call("t-boundary", 299.98, "frontend", "checkout", ms=25)
    for i in range(5):  # more calls inside one minute
        spans += call(
            f"t-in-{i}", 400 + i, "frontend", "checkout", status="ERROR" if i == 0 else "UNSET"
        )
    spans += call("t-db", 410, "checkout", "cart")
    spans.append({"trace": "t-db", "span": "q", "parent": "a", "service": "checkout",
                  "kind": "CLIENT", "at": 411, "attributes": {"db.system": "postgresql"}})  # fmt: skip
    write(rt, spans)
    got = check_same(rt, queries.Window(ANCHOR + dt.timedelta(minutes=5), None))
    # the boundary pair: caller span b at 10:04:59.99 (outside), callee c at 10:05:00.00
    assert got[("frontend", "checkout")] == (5, 1)
    got4 = check_same(rt, queries.Window(ANCHOR + dt.timedelta(minutes=4), None))
    assert got4[("frontend", "checkout")] == (6, 1)
    check_same(
        rt, queries.Window(ANCHOR + dt.timedelta(minutes=6), ANCHOR + dt.timedelta(minutes=7))
    )
    m = service_map.service_map(rt.storage, queries.Window(ANCHOR, None), cache=False)
    assert {e["target"] for e in m["edges"] if e["virtual"]} == {"postgresql"}


def test_hour_boundary_and_late_spans_rebuild_only_what_changed(rt):
    # 10:59:59.995 → 11:00:00.005: the parent in one hour partition, the callee in the next
    write(rt, call("t-hour", 3599.985, "frontend", "payment", gap=0.01))
    write(
        rt, call("t-early", 600, "frontend", "payment") + call("t-late-h", 4000, "frontend", "cart")
    )
    w = queries.Window(ANCHOR, None)
    first = check_same(rt, w)
    assert first[("frontend", "payment")] == (2, 0)
    built = {k: v for k, v in rollup.MEMO.items()}
    assert len(built) == 2  # hours 10 and 11

    # a late span: the callee of a 10:20 call arrives after the rollups were built
    write(rt, call("t-late", 1200, "frontend", "payment", status="ERROR")[:2])
    write(rt, call("t-late", 1200, "frontend", "payment", status="ERROR")[2:])
    second = check_same(rt, w)
    assert second[("frontend", "payment")] == (3, 1)
    # the rollups of both hours were rebuilt (the hour after depends on its neighbour's files)
    assert all(rollup.MEMO[k][0] != built[k][0] for k in built)

    # a window starting at 11:00 sees the 11:00 callee but not its 10:59 parent
    w11 = queries.Window(ANCHOR + dt.timedelta(hours=1), None)
    assert ("frontend", "payment") not in check_same(rt, w11)
    # and in that window the payment span whose parent is outside is an entry span
    (pay,) = [r for r in queries.services(rt.storage, w11) if r["service"] == "payment"]
    assert pay["entry_spans"] == 1


def test_rollups_are_persisted_and_reused_by_another_process(rt):
    write(rt, call("t1", 100, "frontend", "checkout") + call("t2", 200, "checkout", "payment"))
    w = queries.Window(ANCHOR, None)
    service_map.service_map(rt.storage, w, cache=False)
    files = sorted(o.key for o in rt.storage.list(rollup.PREFIX, ".parquet"))
    assert len(files) == 2 and files[0].endswith(".edges.parquet")
    rollup.MEMO.clear()  # as a new process would start
    before = {o.key: o.size for o in rt.storage.list(rollup.PREFIX, ".parquet")}
    edges_, nodes_ = rollup.ensure(rt.storage, w)
    assert len(edges_) == 1 and len(nodes_) == 1
    assert {o.key: o.size for o in rt.storage.list(rollup.PREFIX, ".parquet")} == before
    # a new file in the hour makes a new signature; the stale rollup is removed
    write(rt, call("t3", 300, "frontend", "cart"))
    rollup.ensure(rt.storage, w)
    after = sorted(o.key for o in rt.storage.list(rollup.PREFIX, ".parquet"))
    assert len(after) == 2 and after != files


def test_unaligned_windows_use_the_raw_spans(rt):
    write(rt, call("t1", 100, "frontend", "checkout"))
    w = queries.Window(ANCHOR + dt.timedelta(seconds=30), None)
    assert not rollup.aligned(w)
    service_map.service_map(rt.storage, w, cache=False)
    assert not list(rt.storage.list(rollup.PREFIX, ".parquet"))
    # relative windows are parsed onto whole minutes
    assert rollup.aligned(queries.Window.parse("1h"))


def test_sampled_spans_give_weighted_estimates_from_the_rollup_too(rt):
    # OTel `th` in tracestate: th:8 = keep probability 0.5 → each span counts twice
    req = samples.trace_request(
        call("t-s1", 100, "frontend", "payment", status="ERROR")
        + call("t-s2", 200, "frontend", "payment"),
        now_ns=A_NS,
    )
    for rs in req.resource_spans:
        for sp in rs.scope_spans[0].spans:
            sp.trace_state = "ot=th:8"
    dec = otlp.traces_to_table(req, otlp.Limits(max_items=10**6, max_age_days=365))
    lake.write_table(rt.storage, lake.TRACES, dec.table)
    w = queries.Window(ANCHOR, None)
    check_same(rt, w, sampled=True)
    assert self_join(rt, w.since) == {("frontend", "payment"): (2, 1)}
    m = service_map.service_map(rt.storage, w, cache=False)
    (edge,) = [e for e in m["edges"] if e["target"] == "payment"]
    assert edge["estimate"] is True and (edge["calls"], edge["errors"]) == (4, 2)
    (pay,) = [r for r in queries.services(rt.storage, w) if r["service"] == "payment"]
    assert pay["estimate"] is True and pay["spans"] == 4 and pay["sampled_spans"] == 2


def test_dashboards_may_read_a_recent_rollup_of_a_changing_hour(rt):
    """With ``max_lag_secs`` (the API: ``apm.rollup_secs``), a rollup built moments ago
    serves the live hour while spans keep arriving; 0 (CLI, default) is always exact."""
    write(rt, call("t1", 100, "frontend", "payment"))
    w = queries.Window(ANCHOR, None)
    assert edges(service_map.service_map(rt.storage, w, cache=False))[("frontend", "payment")] == (
        1,
        0,
    )
    write(rt, call("t2", 200, "frontend", "payment"))
    lagged = service_map.service_map(rt.storage, w, cache=False, max_lag_secs=3600)
    assert edges(lagged)[("frontend", "payment")] == (1, 0)
    exact = service_map.service_map(rt.storage, w, cache=False)
    assert edges(exact)[("frontend", "payment")] == (2, 0)
    (pay,) = [
        r for r in queries.services(rt.storage, w, max_lag_secs=3600) if r["service"] == "payment"
    ]
    assert pay["spans"] == 2  # the exact rebuild above is the newest rollup now


def test_a_rollup_replaced_by_another_process_is_not_read(rt, monkeypatch):
    write(rt, call("t1", 100, "frontend", "payment"))
    w = queries.Window(ANCHOR, None)
    service_map.service_map(rt.storage, w, cache=False)
    # another process rebuilt the hour and removed the files this process remembers
    for o in list(rt.storage.list(rollup.PREFIX, ".parquet")):
        rt.storage.delete(o.key)
    m = service_map.service_map(rt.storage, w, cache=False, max_lag_secs=3600)
    assert edges(m)[("frontend", "payment")] == (1, 0)
    # and if a file vanishes between the listing and the read, the query runs again
    real = rollup.ensure
    calls = []

    def vanishing(storage, window, build_missing=True, max_lag_secs=0.0):
        calls.append(max_lag_secs)
        e, n = real(storage, window, build_missing, max_lag_secs)
        if len(calls) == 1:
            return [x + ".gone" for x in e], n
        return e, n

    monkeypatch.setattr(rollup, "ensure", vanishing)
    m = service_map.service_map(rt.storage, w, cache=False, max_lag_secs=3600)
    assert edges(m)[("frontend", "payment")] == (1, 0) and calls == [3600, 0.0]
