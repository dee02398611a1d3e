"""Ingest benchmark: N CloudTrail events through the full CLI path vs raw DuckDB COPY.

    python bench/ingest.py [--events 1000000] [--keep]

Generates realistic CloudTrail NDJSON (~900 bytes/event), then measures:
  * baseline: DuckDB `COPY (SELECT * FROM read_json(file)) TO dir (PARTITION_BY ...)`
  * mantissa: `mantissa ingest --source cloudtrail FILE --format json` in a subprocess
    (normalization, dead-letter checks, dedup, atomic publish), with its peak RSS.
Prints events/s, MB/s, peak RSS and the ratio to the baseline.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
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


def baseline(path: Path, out: Path) -> float:
    con = duckdb.connect()
    start = time.perf_counter()
    con.execute(
        f"""COPY (SELECT *, year(eventTime::TIMESTAMP) AS year, month(eventTime::TIMESTAMP) AS month,
                 day(eventTime::TIMESTAMP) AS day, hour(eventTime::TIMESTAMP) AS hour
               FROM read_json('{path}', format='newline_delimited'))
            TO '{out}' (FORMAT parquet, COMPRESSION zstd, PARTITION_BY (year, month, day, hour))"""
    )
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--skip-baseline", action="store_true")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="mantissa-bench-"))
    try:
        src = work / "cloudtrail.ndjson"
        t = time.perf_counter()
        size = generate(src, args.events)
        print(
            f"generated {args.events:,} events, {size / 1e6:,.0f} MB in {time.perf_counter() - t:.1f}s"
        )
        base_s = None
        if not args.skip_baseline:
            base_s = baseline(src, work / "baseline")
            print(
                f"baseline DuckDB COPY read_json → parquet: {base_s:.2f}s, "
                f"{args.events / base_s:,.0f} events/s"
            )
        data = work / "data"
        start = time.perf_counter()
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
        out = json.loads(proc.stdout)
        rss_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        eps = out["events"] / wall
        print(
            f"mantissa ingest (CLI, full path): {wall:.2f}s wall, {eps:,.0f} events/s, "
            f"{size / 1e6 / wall:,.1f} MB/s, peak RSS {rss_mb:,.0f} MB, "
            f"{out['files_written']} files, {out['partitions']} partitions, "
            f"{out['rejected']} rejected"
        )
        if base_s:
            print(
                f"ratio to baseline: {(args.events / base_s) and eps / (args.events / base_s):.0%}"
            )
        print(
            json.dumps(
                {
                    "events": args.events,
                    "mb": round(size / 1e6),
                    "seconds": round(wall, 2),
                    "events_per_s": round(eps),
                    "mb_per_s": round(size / 1e6 / wall, 1),
                    "peak_rss_mb": round(rss_mb),
                    "baseline_events_per_s": round(args.events / base_s) if base_s else None,
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
