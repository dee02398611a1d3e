"""Ingest benchmark: N CloudTrail events through the full CLI path vs raw DuckDB COPY.

    python bench/ingest.py [--events 1000000] [--repeat 3] [--keep]

Generates realistic CloudTrail NDJSON (~900 bytes/event), then measures:
  * baseline: DuckDB `COPY (SELECT * FROM read_json(file)) TO dir (PARTITION_BY ...)`
  * mantissa: `mantissa ingest --source cloudtrail FILE --format json` in a subprocess
    (normalization, dead-letter checks, dedup, atomic publish), with its peak RSS.
Prints events/s, MB/s, peak RSS and the ratio to the baseline. ``--repeat N`` alternates
baseline and mantissa runs N times (load on a shared machine varies) and reports the
medians and the 1-minute load average at each run.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import duckdb

EVENTS = [
    ("s3.amazonaws.com", "GetObject"),
    ("s3.amazonaws.com", "PutObject"),
    ("ec2.amazonaws.com", "DescribeInstances"),
    ("iam.amazonaws.com", "ListUsers"),
    ("sts.amazonaws.com", "AssumeRole"),
    ("kms.amazonaws.com", "Decrypt"),
    ("signin.amazonaws.com", "ConsoleLogin"),
    ("lambda.amazonaws.com", "Invoke"),
]


def generate(path: Path, n: int, seed: int = 1) -> int:
    rng = random.Random(seed)
    users = [f"user{i}" for i in range(500)]
    t0 = 1_764_000_000
    with open(path, "w") as fh:
        for i in range(n):
            src, name = EVENTS[i % len(EVENTS)]
            u = users[rng.randrange(len(users))]
            t = t0 + (i * 86400 * 3) // n + rng.randrange(60)
            ev = {
                "eventVersion": "1.09",
                "userIdentity": {
                    "type": "IAMUser",
                    "principalId": f"AIDA{rng.randrange(10**12):012d}",
                    "arn": f"arn:aws:iam::123456789012:user/{u}",
                    "accountId": "123456789012",
                    "accessKeyId": f"AKIA{rng.randrange(10**16):016d}",
                    "userName": u,
                    "sessionContext": {
                        "attributes": {
                            "creationDate": "2025-11-24T10:00:00Z",
                            "mfaAuthenticated": "false",
                        }
                    },
                },
                "eventTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t)),
                "eventSource": src,
                "eventName": name,
                "awsRegion": "us-east-1",
                "sourceIPAddress": f"198.51.{rng.randrange(256)}.{rng.randrange(256)}",
                "userAgent": "aws-cli/2.15.30 Python/3.11.8 Linux/6.1 exe/x86_64.debian.12",
                "requestParameters": {
                    "bucketName": f"bucket-{rng.randrange(40)}",
                    "key": f"data/{rng.randrange(10**6)}.parquet",
                    "Host": "s3.us-east-1.amazonaws.com",
                },
                "responseElements": None,
                "additionalEventData": {
                    "SignatureVersion": "SigV4",
                    "bytesTransferredIn": 0,
                    "bytesTransferredOut": rng.randrange(10**6),
                },
                "requestID": uuid.UUID(int=rng.getrandbits(128)).hex,
                "eventID": str(uuid.UUID(int=rng.getrandbits(128))),
                "readOnly": True,
                "resources": [{"type": "AWS::S3::Object", "ARN": f"arn:aws:s3:::bucket/{i}"}],
                "eventType": "AwsApiCall",
                "managementEvent": False,
                "recipientAccountId": "123456789012",
                "eventCategory": "Data",
                "tlsDetails": {
                    "tlsVersion": "TLSv1.3",
                    "cipherSuite": "TLS_AES_128_GCM_SHA256",
                    "clientProvidedHostHeader": "s3.us-east-1.amazonaws.com",
                },
            }
            fh.write(json.dumps(ev, separators=(",", ":")) + "\n")
    return path.stat().st_size


def baseline(path: Path, out: Path) -> tuple[float, float]:
    """Raw DuckDB COPY: wall seconds and CPU seconds (all threads of this process)."""
    con = duckdb.connect()
    start = time.perf_counter()
    cpu = time.process_time()
    con.execute(
        f"""COPY (SELECT *, year(eventTime::TIMESTAMP) AS year, month(eventTime::TIMESTAMP) AS month,
                 day(eventTime::TIMESTAMP) AS day, hour(eventTime::TIMESTAMP) AS hour
               FROM read_json('{path}', format='newline_delimited'))
            TO '{out}' (FORMAT parquet, COMPRESSION zstd, PARTITION_BY (year, month, day, hour))"""
    )
    return time.perf_counter() - start, time.process_time() - cpu


def _children_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def run_mantissa(src: Path, data: Path) -> tuple[float, dict, float, float]:
    """``mantissa ingest`` in a subprocess: wall seconds, its JSON summary, peak RSS (MB)
    and CPU seconds (interpreter start and imports included)."""
    start = time.perf_counter()
    cpu = _children_cpu()
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "mantissa.cli.main",
            "--data-dir",
            str(data),
            "ingest",
            "--source",
            "cloudtrail",
            str(src),
            "--format",
            "json",
        ],
        capture_output=True,
        text=True,
        env={**os.environ},
    )
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        print(proc.stderr)
        sys.exit(1)
    # peak RSS of the largest child so far (getrusage does not reset between children)
    rss_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return wall, json.loads(proc.stdout), rss_mb, _children_cpu() - cpu


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--skip-baseline", action="store_true")
    ap.add_argument("--repeat", type=int, default=1, help="alternate runs, report medians")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="mantissa-bench-"))
    try:
        src = work / "cloudtrail.ndjson"
        t = time.perf_counter()
        size = generate(src, args.events)
        print(
            f"generated {args.events:,} events, {size / 1e6:,.0f} MB in {time.perf_counter() - t:.1f}s"
        )
        n = args.events
        base_runs: list[tuple[float, float]] = []
        runs: list[tuple[float, dict, float, float]] = []
        for i in range(args.repeat):
            if not args.skip_baseline:
                out_dir = work / f"baseline{i}"
                base_runs.append(baseline(src, out_dir))
                shutil.rmtree(out_dir, ignore_errors=True)
                bw, bc = base_runs[-1]
                print(
                    f"baseline DuckDB COPY read_json → parquet: {bw:.2f}s wall, "
                    f"{n / bw:,.0f} events/s, {bc:.1f} CPU-s ({n / bc:,.0f} events/CPU-s) "
                    f"(load {os.getloadavg()[0]:.1f})"
                )
            wall, out, rss_mb, cpu = run_mantissa(src, work / f"data{i}")
            shutil.rmtree(work / f"data{i}", ignore_errors=True)
            runs.append((wall, out, rss_mb, cpu))
            print(
                f"mantissa ingest (CLI, full path): {wall:.2f}s wall, "
                f"{out['events'] / wall:,.0f} events/s, {size / 1e6 / wall:,.1f} MB/s, "
                f"{cpu:.1f} CPU-s ({n / cpu:,.0f} events/CPU-s), "
                f"peak RSS {rss_mb:,.0f} MB, {out['files_written']} files, "
                f"{out['partitions']} partitions, {out['rejected']} rejected "
                f"(load {os.getloadavg()[0]:.1f})"
            )
        wall = statistics.median(r[0] for r in runs)
        cpu = statistics.median(r[3] for r in runs)
        rss_mb = max(r[2] for r in runs)
        eps = n / wall
        base_s = statistics.median(b[0] for b in base_runs) if base_runs else None
        base_cpu = statistics.median(b[1] for b in base_runs) if base_runs else None
        if base_s and base_cpu:
            # on a loaded machine wall time mostly measures the load; CPU time does not
            print(
                f"ratio to baseline (medians of {args.repeat}): wall {eps / (n / base_s):.0%}, "
                f"CPU {base_cpu / cpu:.0%}"
            )
        print(
            json.dumps(
                {
                    "events": n,
                    "mb": round(size / 1e6),
                    "runs": args.repeat,
                    "seconds": round(wall, 2),
                    "events_per_s": round(eps),
                    "mb_per_s": round(size / 1e6 / wall, 1),
                    "cpu_seconds": round(cpu, 1),
                    "peak_rss_mb": round(rss_mb),
                    "baseline_events_per_s": round(n / base_s) if base_s else None,
                    "baseline_cpu_seconds": round(base_cpu, 1) if base_cpu else None,
                    "load_avg_1m": round(os.getloadavg()[0], 1),
                }
            )
        )
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print("kept", work)


if __name__ == "__main__":
    main()
