"""Identity threat detection benchmark: baselines + every identity detection over 30 days of
sign-ins for 10,000 users, full recompute and one incremental 5-minute window.

    python bench/itdr.py [--users 10000] [--days 30]

Builds an Okta + Duo lake: a seed world (tests/identity/scenario.py: benign work-hours
activity, trips, VPN users, new laptops, helpdesk, plus labelled attacks) for ``--seed-users``
users is written in the vendors' native formats and ingested through the real parsers, then
replicated in DuckDB as more users (user names, ids and home IPs rewritten per copy) into
the lake's partition layout. Then measures, with the runtime as it runs:

* full recompute: baselines forgotten, then every day of the period run in order
  (baselines learn day by day, every detection runs on each day), no alert delivery —
  with the scheduler's long-lived runner (one DuckDB session, the lake read a week at a
  time, baselines folded in SQL and written in bulk);
* incremental: the next 5-minute windows with that runner (what the scheduler runs every
  5 minutes; the best of three is reported), and one cold window with a fresh runner
  (what ``mantissa identity run`` from cron pays: lake listing, 24 h lookback, baselines).

Prints seconds and writes bench/out/itdr.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.identity.scenario import World  # noqa: E402

from mantissa.config import IngestConfig  # noqa: E402
from mantissa.identity import baselines  # noqa: E402
from mantissa.identity.run import IdentityRun  # noqa: E402
from mantissa.lake.ingest import Pipeline, ingest_connection  # noqa: E402
from mantissa.runtime import Runtime  # noqa: E402
from mantissa.sources.base import get_source  # noqa: E402


def build_lake(data_dir: Path, users: int, days: int, seed_users: int) -> tuple[World, int]:
    w = World(seed=5, users=seed_users, days=days)
    idps = [u.idp for u in w.users]
    for u in w.users:
        u.idp = "okta"  # one IdP in the bench: Okta + Duo
    w.benign()
    for u, idp in zip(w.users, idps, strict=True):
        u.idp = idp  # attacks pick their victims per IdP; only Okta/Duo are ingested
    w.attacks_all()
    files = w.write(data_dir / "input")
    seed_rt = Runtime(data_dir / "seed")
    con = ingest_connection()
    for source in ("okta", "duo"):
        Pipeline(
            seed_rt.storage, get_source(source), IngestConfig(max_future_secs=10**9), con=con
        ).ingest_paths([str(p) for p in files[source]])
    con.close()
    copies = max(1, -(-users // seed_users))
    db = duckdb.connect()
    db.execute("SET TimeZone='UTC'")
    total = 0
    for table, rewrite in (
        (
            "okta",
            "actor := struct_pack(id := s.actor.id || '-' || c.i, type := s.actor.type, "
            "alternateId := replace(s.actor.alternateId, '@', '.' || c.i || '@'), "
            "displayName := s.actor.displayName, detailEntry := s.actor.detailEntry), "
            "\"user\" := replace(s.\"user\", '@', '.' || c.i || '@')",
        ),
        (
            "duo",
            "email := replace(s.email, '@', '.' || c.i || '@'), "
            "\"user\" := replace(s.\"user\", '@', '.' || c.i || '@')",
        ),
    ):
        glob = str(
            data_dir / "seed" / "lake" / "logs" / table / "*" / "*" / "*" / "*" / "*.parquet"
        )
        out = data_dir / "lake" / "logs" / table
        out.mkdir(parents=True, exist_ok=True)
        db.execute(
            f"CREATE OR REPLACE TABLE seed AS SELECT * FROM read_parquet('{glob}', hive_partitioning=true)"
        )
        cols = [r[0] for r in db.execute("DESCRIBE seed").fetchall()]
        assigns = dict(part.split(" := ", 1) for part in _split(rewrite))
        select = ", ".join(
            f"{assigns[c]} AS \"{c}\"" if c in assigns else
            ("s.event_id || '-' || c.i AS event_id" if c == "event_id" else f's."{c}"')
            for c in cols
        )  # fmt: skip
        db.execute(
            f"""COPY (SELECT {select} FROM seed s, range({copies}) c(i))
                TO '{out}' (FORMAT parquet, COMPRESSION zstd, PARTITION_BY (year, month, day, hour),
                            FILENAME_PATTERN 'bench_{{i}}', OVERWRITE_OR_IGNORE true)"""
        )
        total += db.execute(
            f"SELECT count(*) FROM read_parquet('{out}/*/*/*/*/*.parquet')"
        ).fetchone()[0]
    db.close()
    return w, total


def _split(s: str) -> list[str]:
    """Split ``a := f(x, y), b := g`` at top-level commas."""
    out, depth, cur = [], 0, ""
    for ch in s:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            out.append(cur.strip())
            cur = ""
        else:
            cur += ch
    if cur.strip():
        out.append(cur.strip())
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--users", type=int, default=10_000)
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--seed-users", type=int, default=200)
    ap.add_argument(
        "--lake", type=Path, default=None,
        help="keep the built lake here and reuse it on the next run (same --users/--days)",
    )  # fmt: skip
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        d = args.lake or Path(tmp)
        meta = d / "bench-itdr.json"
        t = time.perf_counter()
        if meta.exists():  # a lake built by an earlier run with --lake
            m = json.loads(meta.read_text())
            start, end, rows = (dt.datetime.fromisoformat(m["start"]),
                                dt.datetime.fromisoformat(m["end"]), m["events"])  # fmt: skip
        else:
            world, rows = build_lake(d, args.users, args.days, min(args.seed_users, args.users))
            start, end = world.start, world.end
            meta.write_text(json.dumps({"start": start.isoformat(), "end": end.isoformat(),
                                        "events": rows}))  # fmt: skip
        build_s = time.perf_counter() - t
        rt = Runtime(d)
        # the scheduler's runner: one long-lived session (lake reads extended window by
        # window, baselines held in the session and written in bulk)
        runner = IdentityRun(rt, keep_session=True)
        baselines.forget(rt.state)
        load0 = os.getloadavg()
        t = time.perf_counter()
        results = runner.catch_up(start, end, raise_alerts=False)
        full_s = time.perf_counter() - t
        found = sum(len(r.candidates) for r in results)
        phases: dict[str, float] = {}
        for r in results:
            for k, v in r.timings.items():
                phases[k] = phases.get(k, 0.0) + v
        per_detection = {
            k: round(v, 2)
            for k, v in sorted(phases.items(), key=lambda kv: -kv[1])
            if not k.startswith("load") and k not in ("baselines", "alerts")
        }
        detect_s = sum(per_detection.values())
        # incremental: the next 5-minute windows, as the scheduler runs them
        incs = []
        at = end
        for _ in range(3):
            t = time.perf_counter()
            inc = runner.run(at, at + dt.timedelta(minutes=5), raise_alerts=False)
            incs.append((time.perf_counter() - t, inc))
            at += dt.timedelta(minutes=5)
        runner.close()
        inc_s, inc = min(incs, key=lambda x: x[0])
        # cold: a fresh process-like runner (opens the lake, reads the 24 h lookback and
        # every baseline) — what `mantissa identity run` from cron pays
        t = time.perf_counter()
        cold = IdentityRun(rt).run(end - dt.timedelta(minutes=5), end, raise_alerts=False)
        cold_s = time.perf_counter() - t
        out = {
            "users": args.users,
            "days": args.days,
            "events": rows,
            "build_seconds": round(build_s, 1),
            "full_recompute_seconds": round(full_s, 2),
            "full_recompute_runs": len(results),
            "full_recompute_findings": found,
            "full_recompute_phases": {
                "session": round(phases.get("load", 0.0), 2),
                "session.lake_read_geo": round(phases.get("load.read", 0.0), 2),
                "session.events_table": round(phases.get("load.ev", 0.0), 2),
                "session.baseline_table": round(phases.get("load.bl", 0.0), 2),
                "detections": round(detect_s, 2),
                "baseline_fold_and_write": round(phases.get("baselines", 0.0), 2),
                "risk_alerts": round(phases.get("alerts", 0.0), 2),
            },
            "full_recompute_per_detection": per_detection,
            "incremental_5min_seconds": round(inc_s, 3),
            "incremental_events_in_window": inc.events,
            "incremental_timings": {k: round(v, 3) for k, v in inc.timings.items()},
            "incremental_cold_seconds": round(cold_s, 2),
            "cold_timings": {k: round(v, 3) for k, v in cold.timings.items()},
            "loadavg_start": [round(x, 2) for x in load0],
            "loadavg_end": [round(x, 2) for x in os.getloadavg()],
        }
        print(json.dumps(out, indent=1))
        (ROOT / "bench" / "out").mkdir(exist_ok=True)
        (ROOT / "bench" / "out" / "itdr.json").write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
