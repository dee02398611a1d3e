"""Benchmark of plain-English questions.

1. Translation (understand + plan + SQL + guard, no engine) over the evaluation set:
   p50 / p95 per question. Goal: p95 < 50 ms.
2. End to end (translation + cost estimate + DuckDB run + summary) on a synthetic
   lake of N CloudTrail-shaped events (default 10,000,000 over 30 days, hive
   partitioned by hour), for one-day-window questions. Goal: p95 < 1 s.

    .venv/bin/python bench/nlq.py [--events 10000000] [--days 30] [--runs 5]
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(q * (len(xs) - 1)))]


def translation(root: Path) -> None:
    from tests.nlq.dataset import NOW, build_lake
    from tests.nlq.questions import CASES

    from mantissa.ask.lexicon import load_lexicon
    from mantissa.ask.render import render
    from mantissa.ask.service import check_sql, translate
    from mantissa.runtime import Runtime

    build_lake(root / "eval", root / "eval-input")
    rt = Runtime(root / "eval")
    lex = load_lexicon(rt)
    allowed = rt.engine.tables()
    questions = [q for c in CASES for q in c.questions]
    times = []
    for _ in range(3):
        for q in questions:
            t0 = time.perf_counter()
            tr = translate(q, lex, NOW)
            if tr.plan is not None:
                check_sql(render(tr.plan, "duckdb"), allowed, NOW)
            times.append((time.perf_counter() - t0) * 1000)
    print(
        f"translation over {len(questions)} questions x3: p50 {pct(times, 0.5):.1f} ms, "
        f"p95 {pct(times, 0.95):.1f} ms, max {max(times):.1f} ms"
    )


def synthetic_lake(root: Path, events: int, days: int) -> dt.datetime:
    """N CloudTrail-shaped rows written straight to the lake layout (hour partitions)."""
    import duckdb

    end = dt.datetime.now(dt.UTC).replace(minute=0, second=0, microsecond=0)
    start = end - dt.timedelta(days=days)
    out = root / "big" / "lake" / "logs" / "cloudtrail"
    out.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    con.execute("SET TimeZone='UTC'")
    span = days * 86400
    con.execute(
        f"""
        COPY (
          SELECT t AS event_time, 'cloudtrail' AS source, md5(i::VARCHAR) AS event_id,
            (['GetObject','PutObject','ListBuckets','DescribeInstances','AssumeRole','Decrypt',
              'ConsoleLogin','CreateUser','RunInstances','ListUsers'])[1 + i % 10] AS event_type,
            CASE WHEN i % 37 = 0 THEN 'failure' ELSE 'success' END AS outcome,
            CASE WHEN i % 5000 = 0 THEN 'root' ELSE 'user' || (i % 200)::VARCHAR END AS "user",
            '198.51.' || (i % 250)::VARCHAR || '.' || (i % 199)::VARCHAR AS src_ip,
            NULL::VARCHAR AS dst_ip, 'aws-cli/2.15' AS user_agent,
            (['US','GB','DE','RU'])[1 + i % 4] AS geo_country, NULL::VARCHAR AS geo_city,
            '123456789012' AS host, 's3.amazonaws.com:GetObject' AS message,
            NULL::VARCHAR AS trace_id, '{{}}' AS raw, t AS ingested_at,
            (['s3.amazonaws.com','ec2.amazonaws.com','iam.amazonaws.com','sts.amazonaws.com'])[1 + i % 4]
              AS "eventSource",
            CASE WHEN i % 37 = 0 THEN 'AccessDenied' END AS "errorCode",
            year(t) AS year, month(t) AS month, day(t) AS day, hour(t) AS hour
          FROM (SELECT i, TIMESTAMPTZ '{start.isoformat()}' + to_seconds(i * {span} // {events}) AS t
                FROM range({events}) r(i))
        ) TO '{out}' (FORMAT parquet, COMPRESSION zstd, PARTITION_BY (year, month, day, hour))
        """
    )
    con.close()
    return end


def end_to_end(root: Path, events: int, days: int, runs: int) -> None:
    from mantissa.ask import answer
    from mantissa.runtime import Runtime

    t0 = time.perf_counter()
    synthetic_lake(root, events, days)
    print(f"synthetic lake: {events:,} events over {days} days in {time.perf_counter() - t0:.1f}s")
    rt = Runtime(root / "big")
    t0 = time.perf_counter()
    answer(rt, "how many events yesterday")  # first call harvests the lexicon
    print(
        f"first question (harvests values, once per data watermark): {time.perf_counter() - t0:.2f}s"
    )
    questions = [
        "how many failed logins yesterday",
        "top 5 users by api calls yesterday",
        "when was root last used yesterday",
        "access denied errors by user yesterday",
        "events from 198.51.7.0/24 yesterday",
        "api calls by service yesterday",
    ]
    times: list[float] = []
    for _ in range(runs):
        for q in questions:
            t = time.perf_counter()
            a = answer(rt, q)
            times.append((time.perf_counter() - t) * 1000)
            assert a.answered, (q, a.summary)
            # every run is a cold run: drop the answer cache
            rt.state.delete("ask.answers", "x")
            with rt.state.begin() as c:
                import sqlalchemy as sa

                c.execute(sa.text("DELETE FROM kv WHERE namespace = 'ask.answers'"))
    print(
        f"end to end, one-day window, {len(times)} answers: p50 {statistics.median(times):.0f} ms, "
        f"p95 {pct(times, 0.95):.0f} ms"
    )


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--events", type=int, default=10_000_000)
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--skip-translation", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="nlq-bench-") as tmp:
        root = Path(tmp)
        if not args.skip_translation:
            translation(root)
        end_to_end(root, args.events, args.days, args.runs)


if __name__ == "__main__":
    main()
