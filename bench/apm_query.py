"""APM query benchmark over a day of spans (a benchmark, not a timed test).

Writes ``--spans`` spans of the demo shop topology spread over 24 hours into a lake (or
reuses ``--data-dir`` when it already holds them), then times, each in a fresh process
state where it says *cold*:

* ``apm services`` and the service map for the full day and for one hour, from the raw
  spans (``rollup=False``) and through the per-minute rollup;
* the service map from the 5-minute cache;
* trace lookups by id without a time hint.

    .venv/bin/python bench/apm_query.py --spans 1000000 --data-dir /tmp/apm-1m
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def build(data_dir: Path, spans: int, end: dt.datetime) -> None:
    import pyarrow as pa

    from mantissa.apm import demo, lake, otlp
    from mantissa.runtime import Runtime

    rt = Runtime(data_dir)
    per_min = max(1, round(spans / 8.5 / 1440))
    print(f"writing ~{spans} spans over 24 h into {data_dir} ...", flush=True)
    t0 = time.perf_counter()
    limits = otlp.Limits(max_items=10**9, max_age_days=365)
    batch: list[pa.Table] = []
    n = 0
    for req in demo.generate(end, seed=3, hours=24, rate_per_min=per_min):
        batch.append(otlp.traces_to_table(req, limits).table)
        if sum(t.num_rows for t in batch) > 200_000:
            n += lake.write_table(rt.storage, lake.TRACES, pa.concat_tables(batch)).rows
            batch = []
    if batch:
        n += lake.write_table(rt.storage, lake.TRACES, pa.concat_tables(batch)).rows
    (data_dir / "bench-end.txt").write_text(end.isoformat())
    print(
        f"{n} spans written in {time.perf_counter() - t0:.0f}s "
        f"({len(lake.all_files(rt.storage, lake.TRACES))} files)"
    )


def timed(label: str, fn, repeat: int = 1) -> object:
    best = float("inf")
    out = None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    print(f"  {label:<46} {best * 1000:>9.1f} ms", flush=True)
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--spans", type=int, default=1_000_000)
    ap.add_argument("--data-dir", type=Path, help="reuse (or create) this lake")
    ap.add_argument("--keep-rollups", action="store_true", help="do not drop rollups first")
    args = ap.parse_args(argv)
    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="mantissa-bench-apm-q-"))
    marker = data_dir / "bench-end.txt"
    if not marker.exists():
        end = dt.datetime.now(dt.UTC).replace(minute=0, second=0, microsecond=0)
        build(data_dir, args.spans, end)
    end = dt.datetime.fromisoformat(marker.read_text())

    from mantissa.apm import lake, queries, rollup, service_map
    from mantissa.runtime import Runtime

    rt = Runtime(data_dir)
    if not args.keep_rollups:
        shutil.rmtree(Path(rt.storage.uri(rollup.PREFIX)), ignore_errors=True)
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f}")
    day = queries.Window(end - dt.timedelta(hours=24), None)
    hour = queries.Window(end - dt.timedelta(hours=1), None)
    timed("services, full day, raw spans", lambda: queries.services(rt.storage, day, rollup=False))
    timed(
        "service map, full day, raw spans",
        lambda: service_map.service_map(rt.storage, day, cache=False, rollup=False),
    )
    timed("services, 1 h, raw spans", lambda: queries.services(rt.storage, hour, rollup=False), 3)
    timed(
        "service map, 1 h, raw spans",
        lambda: service_map.service_map(rt.storage, hour, cache=False, rollup=False),
        3,
    )
    rollup.MEMO.clear()
    timed("rollups built (24 h, first query after ingest)", lambda: rollup.ensure(rt.storage, day))
    rollup.MEMO.clear()
    timed("services, full day (cold)", lambda: queries.services(rt.storage, day))
    rollup.MEMO.clear()
    timed(
        "service map, full day (cold)",
        lambda: service_map.service_map(rt.storage, day, cache=False),
    )
    timed("services, 1 h", lambda: queries.services(rt.storage, hour), 3)
    timed("service map, 1 h", lambda: service_map.service_map(rt.storage, hour, cache=False), 3)
    service_map.service_map(rt.storage, day)
    timed("service map, full day (cached)", lambda: service_map.service_map(rt.storage, day), 5)
    con = lake.connection()
    files = lake.all_files(rt.storage, lake.TRACES)
    ids = [
        r[0]
        for r in con.execute(
            "SELECT trace_id FROM read_parquet(?) USING SAMPLE 20 ROWS", [files]
        ).fetchall()
    ]
    con.close()
    lat = []
    for tid in ids:
        t = time.perf_counter()
        queries.trace(rt.storage, tid)
        lat.append((time.perf_counter() - t) * 1000)
    lat.sort()
    print(
        f"  {'trace by id, no time hint (p50 / max of ' + str(len(lat)) + ')':<46} "
        f"{statistics.median(lat):>9.1f} ms / {lat[-1]:.1f} ms"
    )
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
