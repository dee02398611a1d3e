"""Scale-out benchmark: object-store ingest, DuckDB vs Spark, and a scheduler fleet on PostgreSQL.

    python bench/scale.py                      # defaults (ingest 200k, query 10M rows)
    python bench/scale.py --events 50000 --query-events 1000000 --skip-spark

1. Ingest the same CloudTrail file into a local lake and into S3 (moto server on
   127.0.0.1): events/s, files, bytes, and the object-store/local ratio.
2. A detection-shaped query set over N events on DuckDB and on Spark local[2]: wall time
   of each at several sizes, and where Spark's fixed start-up cost is paid back (if ever
   on this machine).
3. 500 rules at 5-minute windows across 3 processes on PostgreSQL: every (rule, window)
   must run exactly once; prints duplicates, misses and the lag from window end to run.
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

RULE_QUERIES = [
    "SELECT user, count(*) AS n FROM cloudtrail WHERE eventName = 'DeleteBucket' GROUP BY user",
    "SELECT src_ip, count(DISTINCT user) AS users FROM cloudtrail GROUP BY src_ip HAVING count(DISTINCT user) > 3",
    "SELECT event_id, user, event_time FROM cloudtrail WHERE eventName = 'DeleteBucket' AND src_ip LIKE '10.0.1%'",
    "SELECT date_trunc('hour', event_time) AS h, count(*) AS n FROM cloudtrail GROUP BY 1",
]


def cli(data: Path, *args: str) -> Any:
    from mantissa.cli.main import run

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        code = run(["--data-dir", str(data), *args, "--format", "json"])
    if code != 0:
        raise SystemExit(f"mantissa {' '.join(args)} failed: {buf.getvalue()[:500]}")
    return json.loads(buf.getvalue())


def gen_events(path: Path, n: int, hours: int = 24) -> None:
    """``n`` events spread evenly over ``hours`` consecutive hours (as a trail delivers them)."""
    with open(path, "wb") as fh:
        for i in range(n):
            sec = i * hours * 3600 // max(n, 1)
            fh.write(
                orjson.dumps(
                    {
                        "eventVersion": "1.08",
                        "eventTime": f"2026-03-{1 + sec // 86400:02d}T{sec // 3600 % 24:02d}:{sec // 60 % 60:02d}:{sec % 60:02d}Z",
                        "eventSource": "s3.amazonaws.com",
                        "eventName": "GetObject" if i % 97 else "DeleteBucket",
                        "eventID": f"evt-{i}",
                        "sourceIPAddress": f"10.0.{i % 200}.{i % 7}",
                        "userIdentity": {"type": "IAMUser", "userName": f"u{i % 500}"},
                        "requestParameters": {"bucketName": "b", "key": f"k{i}"},
                    }
                )
                + b"\n"
            )


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


def bench_engines(n: int, work: Path, spark: bool) -> dict[str, Any]:
    from mantissa.runtime import Runtime

    data = work / f"q{n}"
    data.mkdir()
    # Generate with DuckDB directly into the lake layout (the ingest path is measured above).
    import duckdb

    lake = data / "lake" / "logs" / "cloudtrail"
    src = work / "seed.ndjson"
    gen_events(src, 20_000)
    cli(data, "ingest", "-s", "cloudtrail", str(src))
    seed = next(lake.rglob("*.parquet"))
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
    for f in [seed]:  # the seed rows are in the copies (c.i = 0 keeps their times)
        f.unlink()
    rt = Runtime(data)
    rows = rt.make_engine("duckdb").execute("SELECT count(*) FROM cloudtrail").rows[0][0]
    out: dict[str, Any] = {"events": rows}
    duck = rt.make_engine("duckdb", timeout_secs=3600)
    duck.execute("SELECT count(*) FROM cloudtrail")  # warm: table schemas are cached per process
    t = time.perf_counter()
    for q in RULE_QUERIES:
        duck.execute(q)
    out["duckdb_s"] = round(time.perf_counter() - t, 2)
    out["duckdb_events_per_s_per_core"] = round(
        rows * len(RULE_QUERIES) / out["duckdb_s"] / (os.cpu_count() or 1)
    )
    if spark:
        eng = rt.make_engine("spark", master="local[2]", timeout_secs=3600)
        t = time.perf_counter()
        eng.execute("SELECT count(*) FROM cloudtrail")
        out["spark_startup_s"] = round(time.perf_counter() - t, 2)
        t = time.perf_counter()
        for q in RULE_QUERIES:
            eng.execute(q)
        out["spark_s"] = round(time.perf_counter() - t, 2)
        out["spark_events_per_s_per_core"] = round(rows * len(RULE_QUERIES) / out["spark_s"] / 2)
    return out


def _fleet_worker(url: str, rules: int, windows: int, owner: str, q: Any) -> None:
    import sqlalchemy as sa

    from mantissa.state.store import StateStore

    st = StateStore(url)
    runs = 0
    eng = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    with eng.begin() as c:
        c.execute(
            sa.text(
                "CREATE TABLE IF NOT EXISTS bench_runs (rule int, win int, owner text, lag_ms float)"
            )
        )
    base = time.time()
    for w in range(windows):
        window_end = base + w * 0.05  # compressed 5-minute windows
        for r in range(rules):
            name = f"bench:{r}"
            if not st.acquire_lease(name, owner, ttl_secs=30):
                continue
            wm = st.get("bench_wm", str(r), -1)
            if wm < w:
                with eng.begin() as c:
                    c.execute(
                        sa.text("INSERT INTO bench_runs VALUES (:r, :w, :o, :l)"),
                        {"r": r, "w": w, "o": owner, "l": (time.time() - window_end) * 1000},
                    )
                st.put("bench_wm", str(r), w)
                runs += 1
            st.release_lease(name, owner)
    q.put(runs)


def bench_fleet(url: str, rules: int = 500, windows: int = 3, procs: int = 3) -> dict[str, Any]:
    import sqlalchemy as sa

    from mantissa.state.store import StateStore

    st = StateStore(url)
    st.migrate()
    eng = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    with eng.begin() as c:
        c.execute(sa.text("DROP TABLE IF EXISTS bench_runs"))
        c.execute(sa.text("CREATE TABLE bench_runs (rule int, win int, owner text, lag_ms float)"))
        c.execute(sa.text("DELETE FROM kv WHERE namespace = 'bench_wm'"))
        c.execute(sa.text("DELETE FROM leases WHERE name LIKE 'bench:%'"))
    q: Any = mp.Queue()
    t = time.perf_counter()
    ps = [
        mp.Process(target=_fleet_worker, args=(url, rules, windows, f"p{i}", q))
        for i in range(procs)
    ]
    for p in ps:
        p.start()
    for p in ps:
        p.join()
    secs = time.perf_counter() - t
    with eng.begin() as c:
        dup = c.execute(
            sa.text(
                "SELECT count(*) FROM (SELECT rule, win FROM bench_runs GROUP BY 1, 2 HAVING count(*) > 1) d"
            )
        ).scalar()
        done = c.execute(sa.text("SELECT count(DISTINCT (rule, win)) FROM bench_runs")).scalar()
        per = dict(
            c.execute(sa.text("SELECT owner, count(*) FROM bench_runs GROUP BY owner")).fetchall()
        )
        p50, p99 = c.execute(
            sa.text(
                "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY lag_ms), percentile_cont(0.99) WITHIN GROUP (ORDER BY lag_ms) FROM bench_runs"
            )
        ).fetchone()
        c.execute(sa.text("DROP TABLE bench_runs"))
    return {
        "rules": rules,
        "windows": windows,
        "processes": procs,
        "runs_expected": rules * windows,
        "runs_distinct": done,
        "duplicates": dup,
        "runs_per_process": per,
        "lag_ms_p50": round(p50 or 0, 1),
        "lag_ms_p99": round(p99 or 0, 1),
        "seconds": round(secs, 2),
    }


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
    args = ap.parse_args()
    result: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        result["ingest"] = bench_ingest(args.events, work)
        print(json.dumps({"ingest": result["ingest"]}), flush=True)
        result["engines"] = []
        for n in args.query_events:
            r = bench_engines(n, work, not args.skip_spark)
            result["engines"].append(r)
            print(json.dumps({"engines": r}), flush=True)
    if not args.skip_fleet:
        try:
            result["fleet"] = bench_fleet(args.pg)
        except Exception as exc:  # no PostgreSQL here: say so, keep the other figures
            result["fleet"] = {"skipped": f"{type(exc).__name__}: {str(exc).splitlines()[0]}"}
        print(json.dumps({"fleet": result["fleet"]}), flush=True)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
