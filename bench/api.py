"""API benchmark: latency and throughput of `mantissa serve` under 20 concurrent clients.

    python bench/api.py [--alerts 100000] [--events 10000000] [--clients 20] [--seconds 20]

Builds a data dir with ``--alerts`` alerts in the state store (SQLite) and ``--events``
CloudTrail-shaped events in the Parquet lake, starts ``mantissa serve`` in its own
process on 127.0.0.1, then drives it over loopback with ``--clients`` concurrent
keep-alive clients for ``--seconds`` per scenario:

  * ``GET /alerts`` (first page, default sort), and filtered (open, high or worse);
  * ``POST /query`` with a simple aggregate over every event
    (``SELECT event_type, count(*) FROM cloudtrail GROUP BY 1``).

Prints p50/p99 latency, requests/s and errors per scenario, and writes
``bench/out/api.json``. The server and the load generator share the machine's cores.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_alerts(data: Path, n: int) -> float:
    """Insert ``n`` alerts with the store's own row builder, in batches."""
    from mantissa.alerts.model import AlertCandidate, new_alert_id
    from mantissa.alerts.store import AlertStore, alert_dedup, alerts
    from mantissa.runtime import Runtime

    t0 = time.perf_counter()
    rt = Runtime(data)
    store = AlertStore(rt.state)
    now = dt.datetime.now(dt.UTC)
    sevs = ["informational", "low", "medium", "high", "critical"]
    statuses = ["open", "open", "acknowledged", "closed", "false_positive"]
    batch: list[dict] = []
    links: list[dict] = []

    def flush() -> None:
        with rt.state.begin() as conn:
            conn.execute(alerts.insert(), batch)
            conn.execute(alert_dedup.insert(), links)
        batch.clear()
        links.clear()

    for i in range(n):
        seen = now - dt.timedelta(seconds=i * 30)
        cand = AlertCandidate(
            rule_id=f"rule-{i % 250:03d}",
            rule_title=f"Detection rule number {i % 250}",
            severity=sevs[i % 5],
            tags=["attack.t1078", f"group.{i % 7}"],
            dedup_key=f"rule-{i % 250:03d}:user{i}",
            entities={"user": f"user{i % 5000}", "ip": f"10.{i % 250}.{i % 200}.{i % 100}"},
            first_seen=seen - dt.timedelta(minutes=5),
            last_seen=seen,
            count=1 + i % 40,
            evidence_rows=[{"event_id": f"e{i}-{k}", "user": f"user{i % 5000}"} for k in range(3)],
            evidence_event_ids=[f"e{i}-{k}" for k in range(3)],
            source="cloudtrail",
            description="benchmark alert",
        )
        alert_id = new_alert_id() + f"{i:06d}"
        row = store._values(cand, alert_id, seen, "bench")
        row["status"] = statuses[i % 5]
        batch.append(row)
        links.append({"dedup_key": cand.dedup_key, "alert_id": alert_id})
        if len(batch) >= 5000:
            flush()
    if batch:
        flush()
    return time.perf_counter() - t0


def make_events(data: Path, n: int) -> float:
    """Write ``n`` events as hive-partitioned Parquet under the cloudtrail table."""
    import duckdb

    from mantissa.sources.base import COMMON_COLUMNS

    t0 = time.perf_counter()
    out = data / "lake" / "logs" / "cloudtrail"
    out.mkdir(parents=True, exist_ok=True)
    end = dt.datetime.now(dt.UTC).replace(minute=0, second=0, microsecond=0)
    span_secs = 48 * 3600
    start = end - dt.timedelta(seconds=span_secs)
    exprs = {
        "event_time": f"TIMESTAMPTZ '{start:%Y-%m-%d %H:%M:%S}+00' + to_seconds((i * {span_secs} // {n})::BIGINT)",
        "source": "'cloudtrail'",
        "event_id": "md5(i::VARCHAR)",
        "event_type": "['GetObject','PutObject','DescribeInstances','ListUsers','AssumeRole','Decrypt','ConsoleLogin','Invoke'][1 + i % 8]",
        "outcome": "CASE WHEN i % 50 = 0 THEN 'failure' ELSE 'success' END",
        "user": "'user' || (hash(i) % 5000)::VARCHAR",
        "src_ip": "'10.' || (i % 250)::VARCHAR || '.' || (i % 200)::VARCHAR || '.' || (i % 97)::VARCHAR",
        "dst_ip": "NULL::VARCHAR",
        "user_agent": "'aws-cli/2.15'",
        "geo_country": "'US'",
        "geo_city": "NULL::VARCHAR",
        "host": "'123456789012'",
        "message": "'s3.amazonaws.com:GetObject'",
        "trace_id": "NULL::VARCHAR",
        "raw": "'{}'",
        "ingested_at": "now()",
    }
    cols = ", ".join(f'CAST({exprs[c]} AS {t}) AS "{c}"' for c, t in COMMON_COLUMNS.items())
    con = duckdb.connect()
    con.execute("SET TimeZone='UTC'")
    con.execute(
        f"""COPY (
              SELECT *, year(event_time) AS year, month(event_time) AS month,
                     day(event_time) AS day, hour(event_time) AS hour
              FROM (SELECT {cols} FROM range({n}) t(i))
            ) TO '{out}' (FORMAT parquet, PARTITION_BY (year, month, day, hour),
                          COMPRESSION zstd, OVERWRITE_OR_IGNORE true)"""
    )
    con.close()
    return time.perf_counter() - t0


async def drive(
    url: str, method: str, path: str, token: str, clients: int, seconds: float, body: dict | None
) -> dict:
    latencies: list[float] = []
    errors = 0
    statuses: dict[int, int] = {}
    deadline = time.perf_counter() + seconds
    headers = {"Authorization": f"Bearer {token}"}
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, headers=headers, limits=limits, timeout=120) as c:

        async def worker() -> None:
            nonlocal errors
            while time.perf_counter() < deadline:
                t = time.perf_counter()
                try:
                    r = await c.request(method, path, json=body)
                    await r.aread()
                    statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
                    if r.status_code != 200:
                        errors += 1
                except httpx.HTTPError:
                    errors += 1
                latencies.append((time.perf_counter() - t) * 1000)

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(clients)))
        wall = time.perf_counter() - t0
    latencies.sort()

    def pct(p: float) -> float:
        return (
            round(latencies[min(len(latencies) - 1, int(p * len(latencies)))], 1)
            if latencies
            else 0.0
        )

    return {
        "requests": len(latencies),
        "errors": errors,
        "statuses": statuses,
        "p50_ms": pct(0.50),
        "p99_ms": pct(0.99),
        "req_per_s": round(len(latencies) / wall, 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--alerts", type=int, default=100_000)
    ap.add_argument("--events", type=int, default=10_000_000)
    ap.add_argument("--clients", type=int, default=20)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--keep", action="store_true", help="Keep the generated data dir.")
    args = ap.parse_args()

    data = Path(tempfile.mkdtemp(prefix="mantissa-bench-api-"))
    proc = None
    try:
        print(f"data dir {data}", file=sys.stderr)
        t_alerts = make_alerts(data, args.alerts)
        print(f"  {args.alerts:,} alerts stored in {t_alerts:.1f}s", file=sys.stderr)
        t_events = make_events(data, args.events)
        print(f"  {args.events:,} events written in {t_events:.1f}s", file=sys.stderr)

        env = {**os.environ, "MANTISSA_HOME": str(data)}
        made = subprocess.run(
            [
                sys.executable,
                "-m",
                "mantissa.cli.main",
                "tokens",
                "create",
                "--role",
                "analyst",
                "-f",
                "json",
            ],
            env=env,
            capture_output=True,
            check=True,
        )
        token = json.loads(made.stdout)["token"]
        port = free_port()
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "mantissa.cli.main",
                "serve",
                "--port",
                str(port),
                "--no-background",
                "--log-level",
                "warning",
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        url = f"http://127.0.0.1:{port}"
        for _ in range(600):
            try:
                if httpx.get(url + "/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        h = {"Authorization": f"Bearer {token}"}
        total = httpx.get(url + "/alerts?limit=1", headers=h, timeout=120).json()["total"]
        assert total == args.alerts, total
        agg = "SELECT event_type, count(*) AS n FROM cloudtrail GROUP BY 1 ORDER BY 2 DESC"
        check = httpx.post(url + "/query", json={"sql": agg}, headers=h, timeout=300).json()
        assert sum(r[1] for r in check["rows"]) == args.events, check

        scenarios = [
            ("GET /alerts (first page)", "GET", "/alerts?limit=50", None),
            (
                "GET /alerts (open, high+)",
                "GET",
                "/alerts?status=open&min_severity=high&limit=50",
                None,
            ),
            (
                f"POST /query (aggregate over {args.events:,} events)",
                "POST",
                "/query",
                {"sql": agg},
            ),
        ]
        results = {}
        for name, method, path, body in scenarios:
            res = asyncio.run(drive(url, method, path, token, args.clients, args.seconds, body))
            results[name] = res
            print(
                f"{name:<48} p50 {res['p50_ms']:>8.1f} ms  p99 {res['p99_ms']:>8.1f} ms  "
                f"{res['req_per_s']:>7.1f} req/s  {res['requests']:>6} requests  {res['errors']} errors"
            )
        out = {
            "alerts": args.alerts,
            "events": args.events,
            "clients": args.clients,
            "seconds_per_scenario": args.seconds,
            "cpus": os.cpu_count(),
            "results": results,
        }
        (ROOT / "bench" / "out").mkdir(parents=True, exist_ok=True)
        (ROOT / "bench" / "out" / "api.json").write_text(json.dumps(out, indent=2))
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
        if not args.keep:
            shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    main()
