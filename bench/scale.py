"""Scale-out benchmark: object-store ingest, DuckDB vs Spark, and a scheduler fleet on PostgreSQL.

    python bench/scale.py                      # defaults (ingest 200k, query 10M rows)
    python bench/scale.py --events 50000 --query-events 1000000 --skip-spark

1. Ingest the same CloudTrail file into a local lake and into S3 (moto server on
   127.0.0.1): events/s, files, bytes, and the object-store/local ratio.
2. Detection over N events on DuckDB and on Spark local[2]: the built-in library's
   CloudTrail rules through the detection engine (packed scans, the SQL each engine runs
   in production), wall time of each at several sizes, and the crossover from a linear
   fit (fixed cost + cost per event) of each engine.
3. The real scheduler, 500 rules at 5-minute windows across 3 processes on PostgreSQL
   (simulated clock: each round jumps to the next window end): every (rule, window) must
   run exactly once (``detect_runs``); prints duplicates, misses, duplicate alerts and the
   lag from a window being due to its run (alerts included) being committed.

Prints the load average with the figures (the machines we measure on are shared).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import multiprocessing as mp
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def cli(data: Path, *args: str) -> Any:
    from mantissa.cli.main import run

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        code = run(["--data-dir", str(data), *args, "--format", "json"])
    if code != 0:
        raise SystemExit(f"mantissa {' '.join(args)} failed: {buf.getvalue()[:500]}")
    return json.loads(buf.getvalue())


# (every n-th event, eventSource, eventName, extra fields): what built-in rules look for,
# planted sparsely so that detection returns alerts on both engines, not an empty result
PLANTED: list[tuple[int, str, str, dict[str, Any]]] = [
    (
        1999,
        "signin.amazonaws.com",
        "ConsoleLogin",
        {"responseElements": {"ConsoleLogin": "Failure"}},
    ),
    (4999, "iam.amazonaws.com", "CreateAccessKey", {}),
    (9999, "cloudtrail.amazonaws.com", "StopLogging", {}),
    (
        19999,
        "ec2.amazonaws.com",
        "AuthorizeSecurityGroupIngress",
        {"requestParameters": {"cidrIp": "0.0.0.0/0"}},
    ),
]


def gen_events(path: Path, n: int, hours: int = 24) -> None:
    """``n`` events spread evenly over ``hours`` consecutive hours (as a trail delivers them)."""
    with open(path, "wb") as fh:
        for i in range(n):
            sec = i * hours * 3600 // max(n, 1)
            event: dict[str, Any] = {
                "eventVersion": "1.08",
                "eventTime": f"2026-03-{1 + sec // 86400:02d}T{sec // 3600 % 24:02d}:{sec // 60 % 60:02d}:{sec % 60:02d}Z",
                "eventSource": "s3.amazonaws.com",
                "eventName": "GetObject" if i % 97 else "DeleteBucket",
                "eventID": f"evt-{i}",
                "sourceIPAddress": f"10.0.{i % 200}.{i % 7}",
                "userIdentity": {"type": "IAMUser", "userName": f"u{i % 500}"},
                "requestParameters": {"bucketName": "b", "key": f"k{i}"},
            }
            for every, source, name, extra in PLANTED:
                if i % every == every - 1:
                    event.update(eventSource=source, eventName=name, **extra)
            fh.write(orjson.dumps(event) + b"\n")


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = int(s.getsockname()[1])
    s.close()
    return port


def bench_ingest(n: int, work: Path) -> dict[str, Any]:
    import boto3

    src = work / "ingest.ndjson"
    gen_events(src, n)
    out: dict[str, Any] = {"events": n, "input_mb": round(src.stat().st_size / 1e6, 1)}
    local = work / "local"
    local.mkdir()
    t = time.perf_counter()
    r = cli(local, "ingest", "-s", "cloudtrail", str(src))
    secs = time.perf_counter() - t
    out["local"] = {
        "seconds": round(secs, 2),
        "events_per_s": round(n / secs),
        "files": r.get("files_written"),
    }
    port = free_port()
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": "x",
        "AWS_SECRET_ACCESS_KEY": "x",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                time.sleep(0.1)
        os.environ.update(
            {
                k: env[k]
                for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION")
            }
        )
        os.environ["AWS_ENDPOINT_URL"] = f"http://127.0.0.1:{port}"
        boto3.client("s3").create_bucket(Bucket="bench-lake")
        s3 = work / "s3"
        s3.mkdir()
        (s3 / "mantissa.yaml").write_text('lake:\n  url: "s3://bench-lake/lake"\n')
        t = time.perf_counter()
        r = cli(s3, "ingest", "-s", "cloudtrail", str(src))
        secs = time.perf_counter() - t
        stats = next(s for s in cli(s3, "stats") if s["table"] == "cloudtrail")
        out["s3_moto"] = {
            "seconds": round(secs, 2),
            "events_per_s": round(n / secs),
            "files": stats["files"],
            "bytes": stats["bytes"],
        }
    finally:
        proc.terminate()
        proc.wait()
        os.environ.pop("AWS_ENDPOINT_URL", None)
    out["s3_vs_local"] = round(out["s3_moto"]["events_per_s"] / out["local"]["events_per_s"], 2)
    return out


def _cloudtrail_rules() -> tuple[Any, list[Any]]:
    from mantissa.detect.rules import RuleIndex

    index = RuleIndex.load(None)
    return index, [r for r in index.rules if r.table == "cloudtrail" and r.generate]


def bench_engines(n: int, work: Path, spark: bool) -> dict[str, Any]:
    """The CloudTrail rules of the built-in library over ``n`` events, on DuckDB and Spark."""
    from mantissa.detect.engine import DetectionEngine
    from mantissa.runtime import Runtime

    data = work / f"q{n}"
    data.mkdir()
    # Generate with DuckDB directly into the lake layout (the ingest path is measured above).
    import duckdb

    lake = data / "lake" / "logs" / "cloudtrail"
    src = work / f"seed{n}.ndjson"
    gen_events(src, 20_000)
    cli(data, "ingest", "-s", "cloudtrail", str(src))
    seeds = list(lake.rglob("*.parquet"))
    con = duckdb.connect()
    copies = max(1, n // 20_000)
    con.execute(
        f"""COPY (
              SELECT *, strftime(event_time, '%Y') AS year, strftime(event_time, '%m') AS month,
                     strftime(event_time, '%d') AS day, strftime(event_time, '%H') AS hour
              FROM (SELECT * REPLACE (event_id || '-' || c.i AS event_id,
                                      event_time + INTERVAL (c.i % 30) DAY AS event_time)
                    FROM read_parquet('{lake}/*/*/*/*/*.parquet', hive_partitioning=false),
                         range({copies}) c(i)))
            TO '{lake}' (FORMAT parquet, PARTITION_BY (year, month, day, hour),
                 FILENAME_PATTERN 'bench{{i}}', OVERWRITE_OR_IGNORE, COMPRESSION zstd)"""
    )
    for f in seeds:  # the seed rows are in the copies (c.i = 0 keeps their times)
        f.unlink()
    rt = Runtime(data)
    index, rules = _cloudtrail_rules()
    for r in rules:
        index.compiled(r)  # compile once, outside the timings
    rows = rt.make_engine("duckdb").execute("SELECT count(*) FROM cloudtrail").rows[0][0]
    out: dict[str, Any] = {"events": rows, "rules": len(rules)}
    duck = rt.make_engine("duckdb", timeout_secs=3600, max_rows=10_000_000)
    duck.execute("SELECT count(*) FROM cloudtrail")  # warm: table schemas are cached per process
    t = time.perf_counter()
    ev = DetectionEngine(rt, index, engine=duck).evaluate(None, None, rules=rules)
    out["duckdb_s"] = round(time.perf_counter() - t, 2)
    out["duckdb_candidates"] = len(ev.candidates)
    out["duckdb_errors"] = len(ev.errors)
    threads = duck.threads or os.cpu_count() or 1
    out["duckdb_events_per_s_per_core"] = round(rows / out["duckdb_s"] / threads)
    if spark:
        eng = rt.make_engine("spark", master="local[2]", timeout_secs=3600, max_rows=10_000_000)
        t = time.perf_counter()
        eng.execute("SELECT count(*) FROM cloudtrail")
        out["spark_startup_s"] = round(time.perf_counter() - t, 2)
        t = time.perf_counter()
        ev2 = DetectionEngine(rt, index, engine=eng).evaluate(None, None, rules=rules)
        out["spark_s"] = round(time.perf_counter() - t, 2)
        out["spark_candidates"] = len(ev2.candidates)
        out["spark_errors"] = len(ev2.errors)

        def groups(cands: list[Any]) -> list[tuple[Any, ...]]:
            return sorted(
                (c.dedup_key, c.count, c.first_seen, c.last_seen, tuple(c.evidence_event_ids))
                for c in cands
            )

        # same alert groups, counts, times and evidence events on both engines
        out["same_alerts"] = groups(ev2.candidates) == groups(ev.candidates)
        out["spark_events_per_s_per_core"] = round(rows / out["spark_s"] / 2)
    return out


def crossover(points: list[dict[str, Any]]) -> dict[str, Any]:
    """Fit wall = fixed + per_event × n for each engine; where would Spark local[2] win?"""
    pts = [p for p in points if "spark_s" in p]
    if len(pts) < 2:
        return {"note": "needs two sizes with Spark to fit"}
    (n1, d1, s1), (n2, d2, s2) = [(p["events"], p["duckdb_s"], p["spark_s"]) for p in pts[:2]]
    bd, bs = (d2 - d1) / (n2 - n1), (s2 - s1) / (n2 - n1)
    ad, as_ = d1 - bd * n1, s1 - bs * n1
    out = {
        "duckdb_fixed_s": round(ad, 2),
        "duckdb_us_per_1k_events": round(bd * 1e6 * 1000, 2),
        "spark_fixed_s": round(as_, 2),
        "spark_us_per_1k_events": round(bs * 1e6 * 1000, 2),
    }
    if bs < bd:
        out["crossover_events"] = int((as_ - ad) / (bd - bs))
    else:
        out["crossover_events"] = None
        out["note"] = "Spark local[2] is slower per event here: no crossover on one machine"
    return out


BENCH_RULE = """title: bench {i}
id: 00000000-0000-4000-8000-{i:012d}
level: high
interval: 5m
logsource: {{product: aws, service: cloudtrail}}
detection:
  s: {{eventName: BenchApi{m}}}
  condition: s
"""


def _fleet_proc(data: str, idx: int, rounds: int, base: float, barrier: Any, q: Any) -> None:
    import datetime as dt

    from mantissa.detect.scheduler import Scheduler
    from mantissa.runtime import Runtime

    rt = Runtime(Path(data))
    clock: dict[str, dt.datetime] = {}
    sched = Scheduler(
        rt, owner=f"{socket.gethostname()}:{os.getpid()}:bench{idx}", now=lambda: clock["now"]
    )
    index = sched.rule_index()
    for r in index.rules:
        index.compiled(r)  # warm: the cached index keeps the compiled plans
    start = dt.datetime.fromtimestamp(base, dt.UTC)
    for k in range(rounds):
        barrier.wait()
        # the clock jumps to just after window k closed (end + ingest_delay)
        clock["now"] = start + dt.timedelta(minutes=5 * (k + 1), seconds=61)
        q.put(("start", k, time.time()))
        rep = sched.tick()
        q.put(("tick", k, time.time(), len(rep["windows"]), rep["alerts"], len(rep["errors"])))
    barrier.wait()


def bench_fleet(
    pg: str, work: Path, rules: int = 500, rounds: int = 3, procs: int = 3
) -> dict[str, Any]:
    """The real scheduler, ``procs`` processes, ``rules`` 5-minute rules, one PostgreSQL.

    Time is simulated (each round the clock jumps to the end of the next window), so the
    lag printed is wall time from the moment a window is due to its run being committed
    (alerts are stored before that commit).
    """
    import datetime as dt
    import uuid

    import sqlalchemy as sa

    from mantissa.detect.runs import detect_runs
    from mantissa.runtime import Runtime

    schema = "bench_" + uuid.uuid4().hex[:8]
    eng = sa.create_engine(pg.replace("postgresql://", "postgresql+psycopg://"))
    with eng.begin() as c:
        c.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    url = f"{pg}?options=-csearch_path%3D{schema}"
    try:
        data = work / "fleet"
        rdir = data / "rules"
        rdir.mkdir(parents=True)
        for i in range(rules):
            (rdir / f"r{i}.yml").write_text(BENCH_RULE.format(i=i, m=i % 250))
        (data / "mantissa.yaml").write_text(
            f'state: {{url: "{url}"}}\n'
            f'detect: {{builtin_rules: false, rule_paths: ["{rdir}"], ingest_delay: "1m", '
            'lookback: "5m"}\nalerts: {enrichment: {user_context: {enabled: false}}}\n'
        )
        now = time.time()
        base = now - now % 300 - 300 * (rounds + 2)
        # events: 40 of the 250 API names in every window
        src = work / "fleet.ndjson"
        with open(src, "wb") as fh:
            for k in range(rounds + 1):
                for j in range(200):
                    t = dt.datetime.fromtimestamp(base + 300 * k + 5 + j, dt.UTC)
                    fh.write(
                        orjson.dumps(
                            {
                                "eventVersion": "1.08",
                                "eventTime": t.strftime("%Y-%m-%dT%H:%M:%SZ"),
                                "eventSource": "s3.amazonaws.com",
                                "eventName": f"BenchApi{j % 40}",
                                "eventID": f"fleet-{k}-{j}",
                                "sourceIPAddress": "10.9.9.9",
                                "userIdentity": {"type": "IAMUser", "userName": f"u{j % 5}"},
                            }
                        )
                        + b"\n"
                    )
        cli(data, "ingest", "-s", "cloudtrail", str(src))
        Runtime(data).state  # noqa: B018 - migrate once before the workers race to
        q: Any = mp.Queue()
        barrier: Any = mp.Barrier(procs)
        t = time.perf_counter()
        ps = [
            mp.Process(target=_fleet_proc, args=(str(data), i, rounds, base, barrier, q))
            for i in range(procs)
        ]
        for p in ps:
            p.start()
        for p in ps:
            p.join()
        secs = time.perf_counter() - t
        events = []
        while not q.empty():
            events.append(q.get())
        round_start = {}
        for e in events:
            if e[0] == "start":
                round_start[e[1]] = min(round_start.get(e[1], e[2]), e[2])
        rt = Runtime(data)
        with rt.state.engine.connect() as c:
            rows = c.execute(sa.select(detect_runs)).all()
            alerts = c.exec_driver_sql(
                "SELECT count(*), count(DISTINCT dedup_key) FROM alerts"
            ).one()
        first_end = dt.datetime.fromtimestamp(base + 300, dt.UTC)
        lags = []
        per_owner: dict[str, int] = {}
        for r in rows:
            end = r.window_end if r.window_end.tzinfo else r.window_end.replace(tzinfo=dt.UTC)
            ran = r.ran_at if r.ran_at.tzinfo else r.ran_at.replace(tzinfo=dt.UTC)
            k = round((end - first_end).total_seconds() / 300)
            lags.append(ran.timestamp() - round_start[k])
            per_owner[r.owner.rsplit(":", 1)[-1]] = per_owner.get(r.owner.rsplit(":", 1)[-1], 0) + 1
        lags.sort()
        distinct = len({(r.rule_id, r.window_end) for r in rows})
        return {
            "rules": rules,
            "windows": rounds,
            "processes": procs,
            "runs_expected": rules * rounds,
            "runs_distinct": distinct,
            "duplicates": sum(r.runs - 1 for r in rows) + len(rows) - distinct,
            "missed": rules * rounds - distinct,
            "runs_per_process": per_owner,
            "alerts": alerts[0],
            "duplicate_alerts": alerts[0] - alerts[1],
            "lag_s_p50": round(lags[len(lags) // 2], 2) if lags else None,
            "lag_s_p99": round(lags[int(len(lags) * 0.99)], 2) if lags else None,
            "lag_s_max": round(lags[-1], 2) if lags else None,
            "seconds": round(secs, 2),
        }
    finally:
        with eng.begin() as c:
            c.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
        eng.dispose()


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--events", type=int, default=200_000, help="events for the ingest comparison")
    ap.add_argument("--query-events", type=int, nargs="+", default=[1_000_000, 10_000_000])
    ap.add_argument("--skip-spark", action="store_true")
    ap.add_argument(
        "--pg",
        default=os.environ.get("MANTISSA_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/test"),
    )
    ap.add_argument("--skip-fleet", action="store_true")
    ap.add_argument("--skip-ingest", action="store_true")
    ap.add_argument("--rules", type=int, default=500, help="fleet: rules at 5-minute intervals")
    ap.add_argument("--processes", type=int, default=3, help="fleet: scheduler processes")
    args = ap.parse_args()
    result: dict[str, Any] = {"load_average": os.getloadavg(), "cpus": os.cpu_count()}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if not args.skip_ingest:
            result["ingest"] = bench_ingest(args.events, work)
            print(json.dumps({"ingest": result["ingest"]}), flush=True)
        result["engines"] = []
        for n in args.query_events:
            r = bench_engines(n, work, not args.skip_spark)
            r["load_average"] = os.getloadavg()
            result["engines"].append(r)
            print(json.dumps({"engines": r}), flush=True)
        if not args.skip_spark:
            result["crossover"] = crossover(result["engines"])
            print(json.dumps({"crossover": result["crossover"]}), flush=True)
        if not args.skip_fleet:
            try:
                result["fleet"] = bench_fleet(args.pg, work, args.rules, 3, args.processes)
            except Exception as exc:  # no PostgreSQL here: say so, keep the other figures
                result["fleet"] = {"skipped": f"{type(exc).__name__}: {str(exc).splitlines()[0]}"}
            print(json.dumps({"fleet": result["fleet"]}), flush=True)
    result["load_average_end"] = os.getloadavg()
    print(json.dumps(result, indent=2, default=str))


if __name__ == "__main__":
    main()
