"""The official OpenTelemetry SDK exporting to ``mantissa serve``: protobuf (plain and
gzip) with ``opentelemetry-exporter-otlp-proto-http``, JSON with
``opentelemetry-exporter-otlp-json-http``; read back through ``mantissa query`` and
``mantissa apm``."""

from __future__ import annotations

import pytest
from opentelemetry import trace as otel_trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode

from tests.apm.conftest import mantissa, mantissa_json, span_count, wait_for

pytestmark = pytest.mark.slow


def _exporter(kind: str, url: str, token: str):
    headers = {"Authorization": f"Bearer {token}"}
    if kind == "json":
        from opentelemetry.exporter.otlp.json.http.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter(endpoint=url + "/v1/traces", headers=headers)
    from opentelemetry.exporter.otlp.proto.http import Compression
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    comp = Compression.Gzip if kind == "gzip" else Compression.NoCompression
    return OTLPSpanExporter(endpoint=url + "/v1/traces", headers=headers, compression=comp)


def _providers(kind: str, url: str, token: str, tag: str) -> dict[str, TracerProvider]:
    out = {}
    for svc in ("web", "orders", "payments"):
        tp = TracerProvider(resource=Resource.create({"service.name": f"{svc}-{tag}"}))
        tp.add_span_processor(BatchSpanProcessor(_exporter(kind, url, token)))
        out[svc] = tp
    return out


def _emit(tps: dict[str, TracerProvider], n: int) -> list[str]:
    """``n`` requests: web SERVER → web CLIENT → orders SERVER → (db CLIENT, payments SERVER);
    every third payment fails with an exception."""
    web = tps["web"].get_tracer("test")
    orders = tps["orders"].get_tracer("test")
    pay = tps["payments"].get_tracer("test")
    trace_ids = []
    for i in range(n):
        with web.start_as_current_span(
            "GET /cart", kind=SpanKind.SERVER, attributes={"http.route": "/cart", "i": i}
        ) as root:
            trace_ids.append(format(root.get_span_context().trace_id, "032x"))
            with web.start_as_current_span("call orders", kind=SpanKind.CLIENT):
                ctx = otel_trace.set_span_in_context(otel_trace.get_current_span())
                with orders.start_as_current_span(
                    "POST /orders", kind=SpanKind.SERVER, context=ctx
                ):
                    with orders.start_as_current_span(
                        "INSERT orders",
                        kind=SpanKind.CLIENT,
                        attributes={"db.system": "postgresql", "db.query.text": "INSERT ..."},
                    ):
                        pass
                    ctx2 = otel_trace.set_span_in_context(otel_trace.get_current_span())
                    with pay.start_as_current_span(
                        "POST /charge",
                        kind=SpanKind.SERVER,
                        context=ctx2,
                        attributes={"http.response.status_code": 500 if i % 3 == 0 else 200},
                    ) as p:
                        if i % 3 == 0:
                            p.record_exception(RuntimeError("card declined"))
                            p.set_status(Status(StatusCode.ERROR, "card declined"))
    for tp in tps.values():
        tp.force_flush()
        tp.shutdown()
    return trace_ids


@pytest.mark.parametrize("kind", ["protobuf", "gzip", "json"])
def test_sdk_export_reads_back_exactly(serve, tokens, kind):
    tag = kind
    n = 12
    trace_ids = _emit(_providers(kind, serve.url, tokens["ingest"], tag), n)
    d = serve.data_dir
    # 5 spans per request: visible within seconds (the receiver flushes every 0.5 s here)
    wait_for(lambda: span_count(d) == 5 * n)

    rows = mantissa_json(
        d,
        "query",
        "--sql",
        "SELECT service_name, kind, status_code, count(*) FROM traces GROUP BY ALL ORDER BY ALL",
    )["rows"]
    assert rows == [
        [f"orders-{tag}", "CLIENT", "UNSET", n],
        [f"orders-{tag}", "SERVER", "UNSET", n],
        [f"payments-{tag}", "SERVER", "ERROR", n // 3],
        [f"payments-{tag}", "SERVER", "UNSET", n - n // 3],
        [f"web-{tag}", "CLIENT", "UNSET", n],
        [f"web-{tag}", "SERVER", "UNSET", n],
    ]
    # ids normalized, parent links intact, attributes and promoted columns kept
    check = mantissa_json(
        d,
        "query",
        "--sql",
        "SELECT count(*) FILTER (WHERE length(trace_id) = 32 AND trace_id = lower(trace_id)),"
        " count(*) FILTER (WHERE parent_span_id IS NULL),"
        " count(*) FILTER (WHERE \"http.route\" = '/cart' AND attributes['i'] IS NOT NULL),"
        " count(*) FILTER (WHERE exception_type = 'RuntimeError'),"
        " count(*) FILTER (WHERE \"db.system\" = 'postgresql'),"
        " count(*) FILTER (WHERE end_time_unix_nano - start_time_unix_nano = duration_ns)"
        " FROM traces",
    )["rows"][0]
    assert check == [5 * n, n, n, n // 3, n, 5 * n]
    orphans = mantissa_json(
        d,
        "query",
        "--sql",
        "SELECT count(*) FROM traces c LEFT JOIN traces p ON c.trace_id = p.trace_id "
        "AND c.parent_span_id = p.span_id WHERE c.parent_span_id IS NOT NULL AND p.span_id IS NULL",
    )["rows"][0][0]
    assert orphans == 0

    services = {s["service"]: s for s in mantissa_json(d, "apm", "services", "--since", "1h")}
    assert services[f"payments-{tag}"]["spans"] == n
    assert services[f"payments-{tag}"]["errors"] == n // 3
    assert services[f"web-{tag}"]["spans"] == 2 * n
    assert set(services[f"web-{tag}"]) >= {"service", "spans", "errors", "p50_ms", "p99_ms"}

    smap = mantissa_json(d, "apm", "service-map", "--since", "1h")
    edges = {(e["source"], e["target"]): e for e in smap["edges"]}
    assert edges[(f"web-{tag}", f"orders-{tag}")]["calls"] == n
    assert edges[(f"orders-{tag}", f"payments-{tag}")]["calls"] == n
    assert edges[(f"orders-{tag}", f"payments-{tag}")]["errors"] == n // 3
    assert edges[(f"orders-{tag}", "postgresql")]["virtual"] is True
    assert len(edges) == 3

    tree = mantissa_json(d, "apm", "trace", trace_ids[0])
    assert tree["span_count"] == 5 and tree["orphans"] == 0
    (root,) = tree["roots"]
    assert root["name"] == "GET /cart" and root["children"][0]["name"] == "call orders"
    text = mantissa(d, "apm", "trace", trace_ids[0])
    assert text.returncode == 0 and "POST /charge" in text.stdout and "RuntimeError" in text.stdout

    found = mantissa_json(
        d, "apm", "search", "--service", f"payments-{tag}", "--status", "error", "--limit", "100"
    )
    assert len(found) == n // 3


def test_sdk_metrics_with_exemplars(serve, tokens):
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader

    headers = {"Authorization": f"Bearer {tokens['ingest']}"}
    reader = PeriodicExportingMetricReader(
        OTLPMetricExporter(endpoint=serve.url + "/v1/metrics", headers=headers),
        export_interval_millis=600_000,
    )
    res = Resource.create({"service.name": "checkout"})
    mp = MeterProvider(resource=res, metric_readers=[reader])
    tp = TracerProvider(resource=res)
    meter = mp.get_meter("test")
    counter = meter.create_counter("orders_total", unit="1")
    hist = meter.create_histogram("request_duration", unit="ms")
    tracer = tp.get_tracer("test")
    with tracer.start_as_current_span("POST /checkout") as span:
        tid = format(span.get_span_context().trace_id, "032x")
        sid = format(span.get_span_context().span_id, "016x")
        for v in (5, 12, 40, 250):
            hist.record(v, {"route": "/checkout"})
        counter.add(3, {"route": "/checkout"})
    mp.shutdown()  # one collection and export (force_flush first would export twice)
    d = serve.data_dir

    def rows():
        return mantissa_json(
            d,
            "query",
            "--sql",
            "SELECT name, type, unit, value, count, sum, bucket_counts, bucket_boundaries, "
            "service_name, attributes['route'], exemplars FROM metrics ORDER BY name",
        )["rows"]

    got = wait_for(lambda: len(rows()) == 2 and rows())
    by = {r[0]: r for r in got}
    c = by["orders_total"]
    assert c[1] == "counter" and c[3] == 3.0 and c[8] == "checkout" and c[9] == "/checkout"
    h = by["request_duration"]
    assert h[1] == "histogram" and h[2] == "ms" and h[4] == 4 and h[5] == 307.0
    assert sum(h[6]) == 4 and len(h[6]) == len(h[7]) + 1
    exemplars = h[10]
    assert exemplars, "the histogram recorded inside a sampled span carries exemplars"
    assert {e["trace_id"] for e in exemplars} == {tid}
    assert {e["span_id"] for e in exemplars} == {sid}
