"""The lake in S3 (moto server on 127.0.0.1): ingest, query, stats, commit markers."""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import boto3
import orjson
import pytest

from tests.conftest import FIXTURES


def cli_json(data: Path, *args: str) -> Any:
    """Run the CLI in-process (schemas stay cached between calls) and parse its JSON."""
    from mantissa.cli.main import run

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        code = run(["--data-dir", str(data), *args, "--format", "json"])
    assert code == 0, buf.getvalue()
    return json.loads(buf.getvalue())


def write_events(path: Path, n: int, start: int = 0, hours: int = 6) -> None:
    with open(path, "wb") as fh:
        for i in range(start, start + n):
            fh.write(
                orjson.dumps(
                    {
                        "eventVersion": "1.08",
                        "eventTime": f"2026-03-01T{i % hours:02d}:{i % 60:02d}:00Z",
                        "eventSource": "s3.amazonaws.com",
                        "eventName": "GetObject" if i % 7 else "DeleteBucket",
                        "eventID": f"evt-{i}",
                        "sourceIPAddress": f"10.0.{i % 200}.1",
                        "userIdentity": {"type": "IAMUser", "userName": f"u{i % 50}"},
                        "requestParameters": {"bucketName": "b", "key": f"k{i}"},
                    }
                )
                + b"\n"
            )


def s3_keys(bucket: str, prefix: str = "") -> list[str]:
    s3 = boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"])
    keys: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys += [o["Key"] for o in page.get("Contents", [])]
    return keys


@pytest.mark.slow
def test_ingest_query_stats_on_s3(s3_data_dir: Path, bucket: str, tmp_path: Path) -> None:
    src = tmp_path / "ev.ndjson"
    write_events(src, 2000)
    out = cli_json(s3_data_dir, "ingest", "-s", "cloudtrail", str(src))
    assert out["events"] == 2000
    keys = s3_keys(bucket, "prod/lake/logs/cloudtrail/")
    data = [k for k in keys if k.endswith(".parquet")]
    markers = [k for k in keys if "/_commits/" in k]
    assert len(data) == 6 and len(markers) == 6  # one file and one marker per hour
    assert not list(s3_data_dir.rglob("*.parquet")), "no lake file may stay on the local disk"
    q = cli_json(
        s3_data_dir,
        "query",
        "--sql",
        "SELECT count(*) AS n, count(DISTINCT event_id) AS d, min(event_time) AS t "
        "FROM cloudtrail WHERE eventName = 'DeleteBucket'",
    )
    assert q["rows"][0][:2] == [286, 286]
    assert q["rows"][0][2] == "2026-03-01T00:00:00Z"
    # re-ingesting the same input adds nothing
    again = cli_json(s3_data_dir, "ingest", "-s", "cloudtrail", str(src))
    assert again["events"] == 0 or again.get("duplicates", 2000) == 2000
    stats = cli_json(s3_data_dir, "stats")
    (ct,) = [s for s in stats if s["table"] == "cloudtrail"]
    assert ct["rows"] == 2000 and ct["partitions"] == 6
    assert ct["max_files_per_partition"] == 1


@pytest.mark.slow
def test_uncommitted_files_are_invisible(s3_data_dir: Path, bucket: str, tmp_path: Path) -> None:
    """A data file without a commit marker (a writer killed before committing) is not read."""
    src = tmp_path / "ev.ndjson"
    write_events(src, 600, hours=1)
    cli_json(s3_data_dir, "ingest", "-s", "cloudtrail", str(src))
    s3 = boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"])
    (key,) = [k for k in s3_keys(bucket, "prod/lake/logs/") if k.endswith(".parquet")]
    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    orphan = key.rsplit("/", 1)[0] + "/ffffffffffffffff-orphan.parquet"
    s3.put_object(Bucket=bucket, Key=orphan, Body=body)  # same rows, never committed
    q = cli_json(s3_data_dir, "query", "--sql", "SELECT count(*) FROM cloudtrail")
    assert q["rows"] == [[600]]
    write_events(src, 700, hours=1)  # 100 new events, 600 already in the lake
    out = cli_json(s3_data_dir, "ingest", "-s", "cloudtrail", str(src))
    assert out["events"] in (100, 700)
    q = cli_json(
        s3_data_dir, "query", "--sql", "SELECT count(*), count(DISTINCT event_id) FROM cloudtrail"
    )
    assert q["rows"] == [[700, 700]]


@pytest.mark.slow
def test_killed_writer_then_rerun_exact_count(
    s3_data_dir: Path, bucket: str, tmp_path: Path
) -> None:
    n = 60_000
    src = tmp_path / "big.ndjson"
    write_events(src, n, hours=4)
    (s3_data_dir / "mantissa.yaml").write_text(
        (s3_data_dir / "mantissa.yaml").read_text() + "ingest:\n  batch_bytes: 2000000\n"
    )
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "mantissa.cli.main", "--data-dir", str(s3_data_dir)),
            *("ingest", "-s", "cloudtrail", str(src), "-f", "json"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 120
    while time.time() < deadline:
        if sum(1 for k in s3_keys(bucket, "prod/lake/logs/") if "/_commits/" in k) >= 8:
            break
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    partial = cli_json(
        s3_data_dir, "query", "--sql", "SELECT count(*), count(DISTINCT event_id) FROM cloudtrail"
    )
    got, distinct = partial["rows"][0]
    assert got == distinct and 0 < got < n, "the kill should land mid-ingest"
    cli_json(s3_data_dir, "ingest", "-s", "cloudtrail", str(src))
    final = cli_json(
        s3_data_dir, "query", "--sql", "SELECT count(*), count(DISTINCT event_id) FROM cloudtrail"
    )
    assert final["rows"] == [[n, n]]


def test_fixture_file_roundtrip(s3_data_dir: Path) -> None:
    out = cli_json(
        s3_data_dir, "ingest", "-s", "cloudtrail", str(FIXTURES / "cloudtrail" / "events.ndjson")
    )
    assert out["events"] > 0
    q = cli_json(s3_data_dir, "query", "--sql", "SELECT count(*) FROM cloudtrail")
    assert q["rows"][0][0] == out["events"]


def test_duckdb_reader_asks_for_a_parquet_objects_details_once(bucket: str, aws_env: str) -> None:
    """The filesystem registered with DuckDB remembers committed Parquet objects' details
    (one HEAD per object per process, not per query); other objects and objects that do
    not exist yet are asked every time."""
    import s3fs

    from mantissa.lake.objectstore import _remembering

    fs = s3fs.S3FileSystem(endpoint_url=aws_env, use_listings_cache=False)
    twin = _remembering(fs)
    asked: list[str] = []
    real = twin._info

    async def counting(path: str, **kw: Any) -> Any:
        asked.append(path)
        return await real(path, **kw)

    twin._info = counting
    pq, other = f"{bucket}/lake/a.parquet", f"{bucket}/lake/_commit.json"
    with pytest.raises(FileNotFoundError):
        twin.info(pq)  # not there yet: the miss is not remembered
    fs.pipe_file(pq, b"PAR1")
    fs.pipe_file(other, b"{}")
    assert twin.info(pq)["size"] == 4
    assert twin.info(f"s3://{pq}")["size"] == 4
    assert twin.modified(pq) == fs.modified(pq)
    twin.info(other)
    twin.info(other)
    assert asked.count(pq) == 2  # the miss, then one HEAD for every later question
    assert asked.count(other) == 2
