"""RED, service map (checked against a plain self-join), trace trees with orphans, span
search, the read API and the CLI, on the demo's shop topology."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from mantissa.api.app import create_app
from mantissa.api.auth import TokenStore
from mantissa.apm import demo, lake, otlp, queries, service_map
from mantissa.runtime import Runtime

END = dt.datetime.now(dt.UTC).replace(microsecond=0)


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Runtime:
    rt = Runtime(tmp_path_factory.mktemp("shop"))
    summary = demo.load(rt, END)
    assert summary["spans"] > 10_000 and summary["rejected"] == 0
    return rt


W = queries.Window(END - dt.timedelta(hours=1), None)


def sql(rt: Runtime, q: str) -> list[list]:
    return rt.engine.execute(q).rows


def test_service_map_matches_a_plain_self_join(shop):
    since = W.since.isoformat()
    expected = {
        (r[0], r[1]): (r[2], r[3])
        for r in sql(
            shop,
            "SELECT p.service_name, c.service_name, count(*), "
            "count(*) FILTER (WHERE c.status_code = 'ERROR') "
            "FROM traces c JOIN traces p ON c.trace_id = p.trace_id AND c.parent_span_id = p.span_id "
            f"WHERE c.service_name <> p.service_name AND c.start_time >= TIMESTAMPTZ '{since}' "
            f"AND p.start_time >= TIMESTAMPTZ '{since}' GROUP BY ALL",
        )
    }
    m = service_map.service_map(shop.storage, W, cache=False)
    got = {
        (e["source"], e["target"]): (e["calls"], e["errors"])
        for e in m["edges"]
        if not e["virtual"]
    }
    assert got == expected
    assert ("checkout", "payment") in got and got[("checkout", "payment")][1] > 0
    virtual = {e["target"]: e["target_type"] for e in m["edges"] if e["virtual"]}
    assert virtual == {"redis": "database", "postgresql/shop": "database", "stripe": "peer"}
    # kafka: the consumer is instrumented, so producer → consumer is a real edge, no queue node
    assert ("checkout", "shipping") in got
    nodes = {n["id"]: n for n in m["nodes"]}
    assert nodes["stripe"]["virtual"] and not nodes["payment"]["virtual"]
    for e in m["edges"]:
        assert e["call_count"] == e["calls"] and "avg_latency_ms" in e and "error_rate" in e
    only = service_map.service_map(shop.storage, W, service="payment", cache=False)
    assert {(e["source"], e["target"]) for e in only["edges"]} == {
        ("checkout", "payment"),
        ("payment", "stripe"),
    }


def test_service_map_cache(shop):
    first = service_map.service_map(shop.storage, W)
    again = service_map.service_map(shop.storage, W)
    assert again["cached"] is True and again["edges"] == first["edges"]


def test_red_per_service_and_operation(shop):
    rows = {r["service"]: r for r in queries.services(shop.storage, W)}
    since = W.since.isoformat()
    exact = dict(
        (r[0], (r[1], r[2]))
        for r in sql(
            shop,
            "SELECT service_name, count(*), count(*) FILTER (WHERE status_code = 'ERROR') "
            f"FROM traces WHERE start_time >= TIMESTAMPTZ '{since}' GROUP BY 1",
        )
    )
    assert {k: (v["spans"], v["errors"]) for k, v in rows.items()} == exact
    pay = rows["payment"]
    assert pay["p99_ms"] > 2000 and pay["p50_ms"] < pay["p99_ms"]
    # percentiles come from entry spans: payment's are its SERVER spans only
    p99 = sql(
        shop,
        "SELECT quantile_cont(duration_ms, 0.99) FROM traces WHERE service_name = 'payment' "
        f"AND kind = 'SERVER' AND start_time >= TIMESTAMPTZ '{since}'",
    )[0][0]
    assert pay["p99_ms"] == pytest.approx(p99, abs=0.01)
    ops = {o["operation"]: o for o in queries.operations(shop.storage, W, "payment")}
    assert set(ops) == {"POST /charge", "POST api.stripe.com/v1/charges"}
    assert ops["POST /charge"]["errors"] > 0


def test_trace_tree_and_orphans(shop):
    (hit,) = queries.search(shop.storage, W, service="payment", status="error", limit=1)
    tree = queries.trace(shop.storage, hit["trace_id"].upper())
    assert tree["orphans"] == 0 and len(tree["roots"]) == 1
    flat = queries.flatten(tree)
    assert flat[0]["name"] == "POST /checkout" and flat[0]["depth"] == 0
    assert any(s["exception_type"] == "CardProcessorTimeout" for s in flat)
    # drop the root: its children are shown as orphans, not dropped
    spans = [s for s in flat if s["depth"] > 0]
    for s in spans:
        s.pop("children", None)
    orphaned = queries.build_tree(tree["trace_id"], spans)
    assert orphaned["span_count"] == len(spans) and orphaned["orphans"] == 1
    assert orphaned["roots"][0]["orphan"] is True
    with pytest.raises(Exception, match="not a trace id"):
        queries.trace(shop.storage, "xyz")
    with pytest.raises(Exception, match="not found"):
        queries.trace(shop.storage, "f" * 32)


def test_trace_lookup_without_index_falls_back(shop, tmp_path):
    (hit,) = queries.search(shop.storage, W, service="cart", limit=1)
    files = lake.trace_files(shop.storage, lake.connection(), hit["trace_id"])
    assert files and len(files) < len(lake.all_files(shop.storage, lake.TRACES)) + 1


def test_search_filters(shop):
    slow = queries.search(
        shop.storage,
        W,
        service="inventory",
        min_duration_ms=500,
        attrs=[("db.system", "postgresql")],
    )
    assert slow and all(r["duration_ms"] >= 500 for r in slow)
    routes = queries.search(shop.storage, W, attrs=[("http.route", "/cart/*")], limit=5)
    assert routes and all(r["http.route"] == "/cart/{id}" for r in routes)
    by_map = queries.search(
        shop.storage, W, attrs=[("deployment.environment.name", "prod")], limit=3
    )
    assert len(by_map) == 3
    sqli = queries.search(shop.storage, W, attrs=[("db.query.text", "*UNION SELECT*")])
    assert len(sqli) == 1


@pytest.fixture
def api(shop: Runtime) -> Iterator[tuple[TestClient, dict[str, str]]]:
    store = TokenStore(shop.state)
    hdr = {"Authorization": "Bearer " + store.create("viewer")[1]}
    with TestClient(create_app(shop), raise_server_exceptions=False) as c:
        yield c, hdr


def test_read_api(api):
    c, hdr = api
    assert c.get("/config", headers=hdr).json()["features"]["apm"] is True
    svcs = c.get("/apm/services?since=1h", headers=hdr).json()["items"]
    assert {"service", "spans", "errors", "p50_ms", "p99_ms"} <= set(svcs[0])
    m = c.get("/apm/service-map?since=1h", headers=hdr).json()
    assert m["edges"] and m["nodes"]
    found = c.get(
        "/apm/traces",
        params={"service": "payment", "status": "error", "min_duration": "1s", "limit": 2},
        headers=hdr,
    ).json()["items"]
    assert len(found) == 2
    t = c.get(f"/apm/traces/{found[0]['trace_id']}", headers=hdr).json()
    assert t["trace_id"] == found[0]["trace_id"] and t["roots"]
    assert c.get("/apm/traces/nothex", headers=hdr).status_code == 400
    assert c.get(f"/apm/traces/{'0' * 31}1", headers=hdr).status_code == 404
    lat = c.get("/apm/services/checkout/latency?since=1h", headers=hdr).json()["items"]
    assert lat and all(len(p["exemplar_trace_id"]) == 32 for p in lat)
    ops = c.get("/apm/services/payment/operations", headers=hdr).json()["items"]
    assert ops


def test_cli(shop, cli: object):
    from tests.conftest import CliResult  # noqa: F401  (fixture type)

    d = Path(shop.data_dir)
    r = cli("apm", "services", "--since", "1h", "--format", "json", data=d)
    assert r.code == 0 and {s["service"] for s in r.json()} >= {"payment", "checkout"}
    r = cli("apm", "operations", "checkout", "--format", "json", data=d)
    assert r.code == 0 and r.json()[0]["service"] == "checkout"
    r = cli("apm", "service-map", "--service", "payment", "--format", "json", data=d)
    assert r.code == 0 and {e["target"] for e in r.json()["edges"]} == {"payment", "stripe"}
    r = cli(
        "apm",
        "search",
        "--service",
        "frontend",
        "--status",
        "error",
        "--min-duration",
        "500ms",
        "--attr",
        "http.route=/checkout",
        "--format",
        "json",
        data=d,
    )
    assert r.code == 0 and r.json() and all(x["duration_ms"] >= 500 for x in r.json())
    tid = r.json()[0]["trace_id"]
    r = cli("apm", "trace", tid, data=d)
    assert r.code == 0 and "CardProcessorTimeout" in r.out and "█" in r.out
    r = cli("apm", "trace", tid, "--format", "json", data=d)
    assert r.code == 0 and r.json()["trace_id"] == tid
    r = cli("apm", "trace", "nothex", data=d)
    assert r.code != 0


def test_sampling_probability_parsing():
    assert otlp.sampling_probability("ot=th:8") == 0.5
    assert otlp.sampling_probability("ot=th:0") == 1.0
    assert otlp.sampling_probability("vendor=x,ot=rv:abc;th:c") == pytest.approx(0.25)
    assert otlp.sampling_probability("ot=th:zz") is None
    assert otlp.sampling_probability("") is None
