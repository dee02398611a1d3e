"""OTLP/HTTP receiver contract and bad input: status codes, content types, partial
success, dead letters, caps, and durability (``kill -9`` right after a 200)."""

from __future__ import annotations

import gzip
import json
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import psutil
import pytest
from fastapi.testclient import TestClient
from google.rpc import status_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

from mantissa.api.app import create_app
from mantissa.api.auth import TokenStore
from mantissa.apm.receiver import close_receiver, receiver_for
from mantissa.lake.deadletter import DeadLetterStore
from mantissa.runtime import Runtime
from tests.apm.conftest import span_count, start_serve, wait_for

NOW = time.time_ns()
TID = "5B8EFFF798038103D269B633813FC60C"  # upper case on purpose: any case is valid
PROTO = {"Content-Type": "application/x-protobuf"}


def span(i: int = 1, **over: object) -> dict:
    s = {
        "traceId": TID,
        "spanId": f"{i:016x}",
        "name": f"op-{i}",
        "kind": 2,
        "startTimeUnixNano": str(NOW - 5_000_000_000),
        "endTimeUnixNano": NOW - 4_000_000_000,  # a number here, a string above: both valid
        "status": {"code": 0},
    }
    s.update(over)
    return s


def request(*spans: dict, service: str = "svc") -> dict:
    return {
        "resourceSpans": [
            {
                "resource": {
                    "attributes": [{"key": "service.name", "value": {"stringValue": service}}]
                },
                "scopeSpans": [{"scope": {"name": "t"}, "spans": list(spans)}],
            }
        ]
    }


@pytest.fixture
def runtime(data_dir: Path) -> Iterator[Runtime]:
    rt = Runtime(data_dir)
    yield rt
    close_receiver(rt)


@pytest.fixture
def client(runtime: Runtime) -> Iterator[TestClient]:
    with TestClient(create_app(runtime), raise_server_exceptions=False) as c:
        yield c


@pytest.fixture
def auth(runtime: Runtime) -> dict[str, str]:
    store = TokenStore(runtime.state)
    return {
        "ingest": "Bearer " + store.create("ingest")[1],
        "viewer": "Bearer " + store.create("viewer")[1],
    }


def post_json(client: TestClient, auth: str, body: object, **headers: str) -> httpx.Response:
    data = body if isinstance(body, bytes) else orjson.dumps(body)
    return client.post(
        "/v1/traces",
        content=data,
        headers={"Authorization": auth, "Content-Type": "application/json", **headers},
    )


def stored(runtime: Runtime) -> list[dict]:
    receiver_for(runtime).flush()
    res = runtime.engine.execute(
        "SELECT trace_id, span_id, name, kind, status_code, clock_skew_ms, attributes "
        "FROM traces ORDER BY span_id"
    )
    return [dict(zip(res.columns, r, strict=True)) for r in res.rows]


def test_json_quirks_are_decoded(client, auth, runtime):
    r = post_json(
        client,
        auth["ingest"],
        request(
            span(1, kind="SPAN_KIND_CLIENT", unknownField={"x": 1}, status={"code": 2}),
            span(
                2,
                parentSpanId="0000000000000001",
                attributes=[
                    {"key": "arr", "value": {"arrayValue": {"values": [{"intValue": "7"}]}}},
                    {
                        "key": "kv",
                        "value": {
                            "kvlistValue": {"values": [{"key": "a", "value": {"boolValue": True}}]}
                        },
                    },
                    {"key": "raw", "value": {"bytesValue": "AAEC"}},
                    {"key": "big", "value": {"intValue": 9007199254740993}},
                    {"key": "d", "value": {"doubleValue": 1.5}},
                ],
            ),
        ),
    )
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/json"
    assert r.json() == {}
    rows = stored(runtime)
    assert [(x["trace_id"], x["kind"], x["status_code"]) for x in rows] == [
        (TID.lower(), "CLIENT", "ERROR"),
        (TID.lower(), "SERVER", "UNSET"),
    ]
    attrs = rows[1]["attributes"]
    assert attrs["arr"] == "[7]" and attrs["kv"] == '{"a":true}' and attrs["raw"] == "AAEC"
    assert attrs["big"] == "9007199254740993" and attrs["d"] == "1.5"


def test_invalid_spans_are_rejected_one_by_one(client, auth, runtime):
    bad = [
        span(10, traceId="abc"),  # wrong length
        span(11, traceId="0" * 32),  # all zeros
        span(12, spanId="zzzzzzzzzzzzzzzz"),  # not hex
        span(13, endTimeUnixNano=str(NOW - 6_000_000_000)),  # end before start
        span(14, startTimeUnixNano="1000", endTimeUnixNano="2000"),  # 1970
        span(
            15,
            startTimeUnixNano=str(NOW + 10 * 86400 * 10**9),
            endTimeUnixNano=str(NOW + 10 * 86400 * 10**9 + 1),
        ),  # far future
    ]
    skewed = span(
        16,
        startTimeUnixNano=str(NOW + 600 * 10**9),
        endTimeUnixNano=str(NOW + 601 * 10**9),
    )  # ten minutes ahead: kept, flagged
    r = post_json(client, auth["ingest"], request(span(1), *bad, skewed))
    assert r.status_code == 200
    ps = r.json()["partialSuccess"]
    assert int(ps["rejectedSpans"]) == len(bad)
    assert "end before start" in ps["errorMessage"]
    rows = stored(runtime)
    assert [x["span_id"] for x in rows] == [f"{1:016x}", f"{16:016x}"]
    assert rows[0]["clock_skew_ms"] is None and rows[1]["clock_skew_ms"] > 500_000
    dead = list(DeadLetterStore(runtime.storage).entries("otlp_traces"))
    reasons = " | ".join(d["reason"] for d in dead)
    assert len(dead) == len(bad)
    for word in (
        "invalid trace_id",
        "all zeros",
        "not hex",
        "end before start",
        "too old",
        "future",
    ):
        assert word in reasons


def test_protobuf_partial_success_and_cap(client, auth, runtime):
    req = trace_service_pb2.ExportTraceServiceRequest()
    ss = req.resource_spans.add().scope_spans.add()
    for i in range(10_005):
        s = ss.spans.add()
        s.trace_id = bytes.fromhex(f"{i + 1:032x}")
        s.span_id = bytes.fromhex(f"{i + 1:016x}")
        s.name = "x"
        s.start_time_unix_nano = NOW - 10**9
        s.end_time_unix_nano = NOW
    r = client.post(
        "/v1/traces",
        content=req.SerializeToString(),
        headers={"Authorization": auth["ingest"], **PROTO},
    )
    assert r.status_code == 200 and r.headers["content-type"] == "application/x-protobuf"
    resp = trace_service_pb2.ExportTraceServiceResponse.FromString(r.content)
    assert resp.partial_success.rejected_spans == 5
    assert "10000-span limit" in resp.partial_success.error_message
    receiver_for(runtime).flush()
    assert runtime.engine.execute("SELECT count(*) FROM traces").rows[0][0] == 10_000


def test_empty_requests(client, auth, runtime):
    r = client.post("/v1/traces", content=b"", headers={"Authorization": auth["ingest"], **PROTO})
    assert r.status_code == 200 and r.content == b""
    assert post_json(client, auth["ingest"], {}).status_code == 200
    r = post_json(client, auth["ingest"], b"")
    assert r.status_code == 400


def test_malformed_bodies_are_400_and_store_nothing(client, auth, runtime):
    for body in (b"{not json", b"[1, 2]", b'{"resourceSpans": "nope"}'):
        r = post_json(client, auth["ingest"], body)
        assert r.status_code == 400, body
        err = r.json()
        assert err["code"] == 3 and err["message"] and err["error"]["code"]
    r = client.post(
        "/v1/traces",
        content=b"\xff\xff\xff garbage",
        headers={"Authorization": auth["ingest"], **PROTO},
    )
    assert r.status_code == 400 and r.headers["content-type"] == "application/x-protobuf"
    st = status_pb2.Status.FromString(r.content)
    assert st.code == 3 and "protobuf" in st.message
    assert stored(runtime) == []


def test_auth_content_type_and_size(client, auth, runtime):
    r = post_json(client, "Bearer nope", request(span(1)))
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"
    r = client.post("/v1/traces", content=b"", headers=PROTO)
    assert r.status_code == 401 and status_pb2.Status.FromString(r.content).code == 16
    r = post_json(client, auth["viewer"], request(span(1)))
    assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
    r = client.post(
        "/v1/traces",
        content=b"x",
        headers={"Authorization": auth["ingest"], "Content-Type": "text/plain"},
    )
    assert r.status_code == 415
    r = post_json(client, auth["ingest"], request(span(1)), **{"Content-Encoding": "br"})
    assert r.status_code == 415
    big = b'{"resourceSpans": []' + b" " * (6 * 1024 * 1024) + b"}"
    assert post_json(client, auth["ingest"], big).status_code == 413
    assert stored(runtime) == []


def test_gzip_deflate_and_bomb(client, auth, runtime):
    body = orjson.dumps(request(span(1)))
    r = post_json(client, auth["ingest"], gzip.compress(body), **{"Content-Encoding": "gzip"})
    assert r.status_code == 200
    r = post_json(
        client,
        auth["ingest"],
        zlib.compress(orjson.dumps(request(span(2)))),
        **{"Content-Encoding": "deflate"},
    )
    assert r.status_code == 200
    # 200 MB of spaces in ~200 KB on the wire: stopped at the decompressed cap
    bomb = gzip.compress(b'{"resourceSpans": []' + b" " * (200 * 1024 * 1024) + b"}", 9)
    assert len(bomb) < 1024 * 1024
    r = post_json(client, auth["ingest"], bomb, **{"Content-Encoding": "gzip"})
    assert r.status_code == 413 and "decompressed" in r.json()["message"]
    r = post_json(client, auth["ingest"], gzip.compress(body)[:-10], **{"Content-Encoding": "gzip"})
    assert r.status_code == 400
    assert [x["span_id"] for x in stored(runtime)] == [f"{1:016x}", f"{2:016x}"]


def test_saturation_answers_429_and_503_with_retry_after(client, auth, runtime, monkeypatch):
    rec = receiver_for(runtime)
    rec.cfg.max_in_flight = 1
    rec.in_flight = 1
    r = post_json(client, auth["ingest"], request(span(1)))
    assert r.status_code == 429 and r.headers["retry-after"] == "1"
    rec.in_flight = 0

    def disk_full(force: bool = True) -> int:
        raise OSError(28, "No space left on device")

    # the flusher cannot write the lake: new batches are refused until it recovers
    monkeypatch.setattr(rec, "flush", disk_full)
    wait_for(lambda: rec.flush_error is not None, timeout=10, every=0.05)
    r = post_json(client, auth["ingest"], request(span(1)))
    assert r.status_code == 503 and int(r.headers["retry-after"]) > 0
    monkeypatch.undo()
    wait_for(lambda: rec.flush_error is None, timeout=10, every=0.05)
    assert post_json(client, auth["ingest"], request(span(1))).status_code == 200


def test_sampling_threshold_weights_red(client, auth, runtime):
    from mantissa.apm import queries

    # th:8 → rejection threshold 2^55 → kept with probability 1/2 → weight 2
    spans = [
        span(i, traceState="ot=th:8", status={"code": 2 if i <= 3 else 0}) for i in range(1, 11)
    ]
    assert post_json(client, auth["ingest"], request(*spans, service="sampled")).status_code == 200
    receiver_for(runtime).flush()
    (row,) = queries.services(runtime.storage, queries.Window.parse("1h"))
    assert row["estimate"] is True
    assert row["spans"] == 20 and row["errors"] == 6 and row["sampled_spans"] == 10


@pytest.mark.slow
def test_kill_9_after_200_loses_nothing(data_dir, tokens):
    s = start_serve(data_dir)
    try:
        body = orjson.dumps(request(*[span(i) for i in range(1, 201)], service="durable"))
        r = httpx.post(
            s.url + "/v1/traces",
            content=body,
            headers={
                "Authorization": f"Bearer {tokens['ingest']}",
                "Content-Type": "application/json",
            },
        )
        assert r.status_code == 200, r.text
        # the batch was decoded by a worker process (apm.decode_workers) ...
        workers = [
            c
            for c in psutil.Process(s.proc.pid).children(recursive=True)
            if "multiprocessing" in " ".join(c.cmdline())
        ]
        assert workers, "tests/apm/conftest.py configures one decode worker"
        s.kill9()  # right after the 200: before the 0.5 s flush
    finally:
        s.stop()
    # ... which does not outlive the killed server
    _gone, alive = psutil.wait_procs(workers, timeout=15)
    assert not alive, [p.cmdline() for p in alive]
    spool = list((data_dir / "spool" / "apm" / "traces").glob("*.spool"))
    assert spool, "the batch is in the spool, not yet in the lake"
    s2 = start_serve(data_dir, background=True)  # replays the spool on start
    try:
        assert wait_for(lambda: span_count(data_dir, "service_name = 'durable'") == 200)
    finally:
        s2.stop()
    assert span_count(data_dir) == 200
    assert not list((data_dir / "spool" / "apm" / "traces").glob("*.spool"))


def test_torn_spool_tail_is_ignored(tmp_path):
    import pyarrow as pa

    from mantissa.apm.receiver import encode_record, read_segment

    t = pa.table({"a": [1, 2, 3]})
    seg = tmp_path / "x.spool"
    rec = encode_record(t)
    seg.write_bytes(rec + rec[: len(rec) // 2])
    tables, end = read_segment(seg)
    assert len(tables) == 1 and tables[0].equals(t) and end == len(rec)


def test_metrics_json_with_hex_exemplars(client, auth, runtime):
    body = {
        "resourceMetrics": [
            {
                "resource": {
                    "attributes": [{"key": "service.name", "value": {"stringValue": "m"}}]
                },
                "scopeMetrics": [
                    {
                        "metrics": [
                            {
                                "name": "latency",
                                "unit": "ms",
                                "histogram": {
                                    "aggregationTemporality": 2,
                                    "dataPoints": [
                                        {
                                            "timeUnixNano": str(NOW),
                                            "count": "3",
                                            "sum": 30.0,
                                            "bucketCounts": ["1", "2"],
                                            "explicitBounds": [10.0],
                                            "exemplars": [
                                                {
                                                    "timeUnixNano": str(NOW),
                                                    "asDouble": 25.0,
                                                    "traceId": TID,
                                                    "spanId": "00F067AA0BA902B7",
                                                }
                                            ],
                                        }
                                    ],
                                },
                            },
                            {
                                "name": "up",
                                "gauge": {"dataPoints": [{"timeUnixNano": "1", "asInt": "1"}]},
                            },
                        ]
                    }
                ],
            }
        ]
    }
    r = client.post(
        "/v1/metrics",
        content=json.dumps(body),
        headers={"Authorization": auth["ingest"], "Content-Type": "application/json"},
    )
    assert r.status_code == 200
    assert r.json()["partialSuccess"]["rejectedDataPoints"] == "1"  # the 1970 gauge
    receiver_for(runtime).flush()
    res = runtime.engine.execute(
        "SELECT name, type, temporality, count, bucket_counts, exemplars FROM metrics"
    )
    ((name, typ, temp, count, buckets, ex),) = res.rows
    assert (name, typ, temp, count, buckets) == ("latency", "histogram", "CUMULATIVE", 3, [1, 2])
    assert ex[0]["trace_id"] == TID.lower() and ex[0]["span_id"] == "00f067aa0ba902b7"


def test_decode_workers_give_the_same_rows_as_in_process(tmp_path):
    """A request decoded by a worker process is spooled and flushed like one decoded in
    the server process (same rows, same rejections)."""
    from mantissa.apm import lake
    from mantissa.apm.receiver import Receiver

    d = tmp_path / "data"
    d.mkdir()
    (d / "mantissa.yaml").write_text("apm:\n  decode_workers: 1\n")
    rt = Runtime(d)
    rec = Receiver(rt, start=False)
    try:
        assert rec.cfg.decode_workers == 1
        rec._decoder()
        assert wait_for(lambda: rec._decoder() is not None, timeout=60)
        body = orjson.dumps(
            request(*[span(i) for i in range(1, 51)], span(99, spanId="00"), service="pooled")
        )
        got = rec.receive(lake.TRACES, body, "application/json")
        assert (got.accepted, got.rejected) == (50, 1)
        rec.flush()
    finally:
        rec.close()
    rows = rt.engine.execute(
        "SELECT count(*), count(DISTINCT span_id) FROM traces WHERE service_name = 'pooled'"
    ).rows
    assert rows == [[50, 50]]


def _receiver(tmp_path: Path, extra: str = "") -> tuple[Runtime, Any]:
    from mantissa.apm.receiver import Receiver

    d = tmp_path / "data"
    d.mkdir(exist_ok=True)
    (d / "mantissa.yaml").write_text("apm:\n  decode_workers: 0\n" + extra)
    rt = Runtime(d)
    return rt, Receiver(rt, start=False)


def _count(rt: Runtime, service: str) -> int:
    return rt.engine.execute(f"SELECT count(*) FROM traces WHERE service_name = '{service}'").rows[
        0
    ][0]


def test_a_retried_request_is_stored_once(tmp_path):
    """A client retrying a request (its 200 was lost) sends the same spans again: the
    flush drops those already written within apm.dedup_window_secs."""
    from mantissa.apm import lake

    rt, rec = _receiver(tmp_path)
    body = orjson.dumps(request(*[span(i) for i in range(1, 31)], service="retry"))
    try:
        for _ in range(2):
            rec.receive(lake.TRACES, body, "application/json")
            rec.flush()
    finally:
        rec.close()
    assert _count(rt, "retry") == 30


def test_dedup_window_bounds_the_flush_and_replay_checks_everything(tmp_path):
    import time as _time

    from mantissa.apm import lake
    from mantissa.apm.receiver import Receiver

    rt, rec = _receiver(tmp_path, "  dedup_window_secs: 0.2\n")
    body = orjson.dumps(request(*[span(i) for i in range(1, 11)], service="late-retry"))
    rec.receive(lake.TRACES, body, "application/json")
    rec.flush()
    _time.sleep(0.5)
    # outside the window, a regular flush does not look back (the documented bound) ...
    rec.receive(lake.TRACES, body, "application/json")
    rec.flush()
    assert _count(rt, "late-retry") == 20
    # ... but replaying a crashed process's spool checks the whole partitions
    rec.receive(lake.TRACES, body, "application/json")  # spooled, not flushed
    seg = rec.spools[lake.TRACES].current
    seg.fh.close()  # the process "dies" holding it: its lock is released
    rec.spools[lake.TRACES].current = None
    rec.close()
    Receiver(rt, start=False).close()  # replays the orphaned segment on start
    assert _count(rt, "late-retry") == 20
