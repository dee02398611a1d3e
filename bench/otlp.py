"""OTLP ingest and APM query benchmark (a benchmark, not a timed test).

Ingest: starts ``mantissa serve`` on a fresh data dir, then several concurrent senders
POST batches of 512 spans (~10 attributes each) to ``/v1/traces`` in four modes
(protobuf / JSON, gzip on / off). Prints per mode spans/s (acknowledged, i.e. durable in
the spool), p50/p99 response time, and overall spans/s into the lake (until every span
is queryable) and the server's peak RSS.

Queries: writes ``--query-spans`` spans of the demo shop topology spread over 24 hours
into a second lake and times ``apm services`` and the service map for the full day
(cold) and for one hour, the cached service map, and trace lookups by id.

    .venv/bin/python bench/otlp.py                 # defaults: 200k spans per mode, 1M for queries
    .venv/bin/python bench/otlp.py --spans 20000 --query-spans 100000 --senders 4
"""

from __future__ import annotations

import argparse
import base64
import gzip
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import orjson
import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def make_request(rng: random.Random, n: int = 512) -> object:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    for k, v in (
        ("service.name", rng.choice(["frontend", "checkout", "payment", "cart"])),
        ("service.version", "1.2.3"),
        ("host.name", "bench-host"),
    ):
        kv = rs.resource.attributes.add()
        kv.key, kv.value.string_value = k, v
    ss = rs.scope_spans.add()
    ss.scope.name = "bench"
    now = time.time_ns()
    tid = rng.randbytes(16)
    parent = b""
    for i in range(n):
        if i % 8 == 0:
            tid, parent = rng.randbytes(16), b""
        sp = ss.spans.add()
        sp.trace_id = tid
        sid = rng.randbytes(8)
        sp.span_id = sid
        if parent:
            sp.parent_span_id = parent
        parent = sid
        sp.name = rng.choice(["GET /cart", "POST /checkout", "SELECT orders", "POST /charge"])
        sp.kind = rng.choice([2, 3, 1])
        start = now - rng.randrange(10**9, 60 * 10**9)
        sp.start_time_unix_nano = start
        sp.end_time_unix_nano = start + rng.randrange(10**5, 10**9)
        sp.status.code = 2 if rng.random() < 0.02 else 0
        for k, v in (
            ("http.request.method", "GET"),
            ("http.route", "/cart/{id}"),
            ("http.response.status_code", 200),
            ("url.path", f"/cart/{rng.randrange(10**6)}"),
            ("server.address", "cart.internal"),
            ("client.address", f"10.0.{rng.randrange(256)}.{rng.randrange(256)}"),
            ("user_agent.original", "Mozilla/5.0 (bench)"),
            ("net.protocol.version", "1.1"),
            ("app.tenant", f"tenant-{rng.randrange(50)}"),
            ("app.request_size", rng.randrange(100, 10_000)),
        ):
            kv = sp.attributes.add()
            kv.key = k
            if isinstance(v, int):
                kv.value.int_value = v
            else:
                kv.value.string_value = v
    return req


def to_json(req: object) -> bytes:
    """OTLP/JSON: proto3 JSON with hex trace/span ids (the OTLP spec's one difference)."""
    from google.protobuf import json_format

    d = json_format.MessageToDict(req)
    for rs in d.get("resourceSpans", []):
        for ss in rs.get("scopeSpans", []):
            for sp in ss.get("spans", []):
                for k in ("traceId", "spanId", "parentSpanId"):
                    if k in sp:
                        sp[k] = base64.b64decode(sp[k]).hex()
    return orjson.dumps(d)


def start_serve(
    data_dir: Path, port: int, decode_workers: int | None = None
) -> subprocess.Popen[bytes]:
    cfg = "apm:\n  flush_secs: 2\n  max_in_flight: 256\n"
    if decode_workers is not None:
        cfg += f"  decode_workers: {decode_workers}\n"
    (data_dir / "mantissa.yaml").write_text(cfg)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mantissa.cli.main",
            "--data-dir",
            str(data_dir),
            "serve",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--no-background",
        ],
        stdout=subprocess.DEVNULL,
        stderr=open(data_dir / "serve.log", "wb"),  # noqa: SIM115
    )
    for _ in range(300):
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.2)
    raise SystemExit("serve did not start: " + (data_dir / "serve.log").read_text()[-2000:])


def send_mode(url: str, token: str, bodies: list[bytes], headers: dict[str, str], senders: int):
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    queue = list(range(len(bodies)))
    qlock = threading.Lock()

    def worker() -> None:
        with httpx.Client(timeout=60) as c:
            while True:
                with qlock:
                    if not queue:
                        return
                    i = queue.pop()
                t0 = time.perf_counter()
                r = c.post(
                    url + "/v1/traces",
                    content=bodies[i],
                    headers={"Authorization": f"Bearer {token}", **headers},
                )
                dt_ = time.perf_counter() - t0
                with lock:
                    latencies.append(dt_)
                    if r.status_code != 200:
                        errors[0] += 1

    t0 = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(senders)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - t0, latencies, errors[0]


def bench_ingest(args: argparse.Namespace) -> None:
    from mantissa.api.auth import TokenStore
    from mantissa.runtime import Runtime

    tmp = Path(tempfile.mkdtemp(prefix="mantissa-bench-otlp-"))
    rt = Runtime(tmp)
    token = TokenStore(rt.state).create("ingest")[1]
    port = free_port()
    proc = start_serve(tmp, port, args.decode_workers)
    url = f"http://127.0.0.1:{port}"
    ps = psutil.Process(proc.pid)
    peak = [0]
    stop = threading.Event()

    def sample_rss() -> None:
        while not stop.wait(0.2):
            try:
                # the server and its decode workers
                rss = ps.memory_info().rss + sum(
                    c.memory_info().rss for c in ps.children(recursive=True)
                )
                peak[0] = max(peak[0], rss)
            except psutil.Error:
                return

    threading.Thread(target=sample_rss, daemon=True).start()
    rng = random.Random(1)
    n_req = max(1, args.spans // 512)
    print(f"generating {n_req} requests of 512 spans per mode ...", flush=True)
    gz = {"Content-Encoding": "gzip"}
    modes = [
        ("protobuf", False, {"Content-Type": "application/x-protobuf"}),
        ("protobuf+gzip", True, {"Content-Type": "application/x-protobuf", **gz}),
        ("json", False, {"Content-Type": "application/json"}),
        ("json+gzip", True, {"Content-Type": "application/json", **gz}),
    ]
    # every request of every mode gets fresh ids (the lake deduplicates on span id);
    # bodies are built before the clock starts
    modes = [m for m in modes if m[0] in args.modes.split(",")]
    prepared = []
    for name, compress, headers in modes:
        bodies = []
        for _ in range(n_req):
            r = make_request(rng)
            raw = r.SerializeToString() if name.startswith("protobuf") else to_json(r)
            bodies.append(gzip.compress(raw, 1) if compress else raw)
        prepared.append((name, bodies, headers))
    total = 0
    sending = 0.0
    print(f"{'mode':<15} {'spans':>9} {'spans/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>6}")
    for name, bodies, headers in prepared:
        secs, lat, errs = send_mode(url, token, bodies, headers, args.senders)
        sending += secs
        spans = n_req * 512
        total += spans - errs * 512
        lat_ms = sorted(x * 1000 for x in lat)
        p99 = lat_ms[min(len(lat_ms) - 1, int(len(lat_ms) * 0.99))]
        print(
            f"{name:<15} {spans:>9} {spans / secs:>9.0f} {statistics.median(lat_ms):>8.1f} "
            f"{p99:>8.1f} {errs:>6}",
            flush=True,
        )
    t_drain = time.perf_counter()
    # until everything acknowledged is queryable
    from mantissa.apm import lake

    deadline = time.monotonic() + 600
    rows = 0
    while time.monotonic() < deadline:
        files = lake.all_files(rt.storage, lake.TRACES)
        if files:
            con = lake.connection()
            rows = con.execute("SELECT count(*) FROM read_parquet(?)", [files]).fetchone()[0]
            con.close()
        if rows >= total:
            break
        time.sleep(0.5)
    into_lake = sending + (time.perf_counter() - t_drain)
    stop.set()
    files = len(lake.all_files(rt.storage, lake.TRACES))
    print(
        f"into the lake: {rows} spans in {into_lake:.1f}s = {rows / into_lake:.0f} spans/s "
        f"({files} files); peak RSS (server + decode workers) {peak[0] / 2**20:.0f} MB"
    )
    proc.terminate()
    proc.wait(30)


def free_port() -> int:
    """A port nobody listens on right now (the server binds it a moment later)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def bench_queries(args: argparse.Namespace) -> None:
    """The query half: ``bench/apm_query.py`` over ``--query-spans`` spans of a day."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import apm_query

    print(f"\nAPM queries over ~{args.query_spans} spans (bench/apm_query.py):", flush=True)
    apm_query.main(["--spans", str(args.query_spans)])


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--spans", type=int, default=200_000, help="spans per ingest mode")
    ap.add_argument("--senders", type=int, default=8, help="concurrent senders")
    ap.add_argument("--query-spans", type=int, default=1_000_000)
    ap.add_argument(
        "--decode-workers", type=int, default=None, help="apm.decode_workers (default: CPUs - 1)"
    )
    ap.add_argument(
        "--modes",
        default="protobuf,protobuf+gzip,json,json+gzip",
        help="comma-separated subset of the four modes",
    )
    ap.add_argument("--skip-ingest", action="store_true")
    ap.add_argument("--skip-queries", action="store_true")
    args = ap.parse_args()
    print(f"{psutil.cpu_count()} CPUs, Python {sys.version.split()[0]}")
    if not args.skip_ingest:
        bench_ingest(args)
    if not args.skip_queries:
        bench_queries(args)


if __name__ == "__main__":
    main()
