"""The ingest path: formats, dedup, partitions, dead letters, atomicity."""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import orjson
import pytest

from tests.conftest import FIXTURES, run_mantissa

CT = FIXTURES / "cloudtrail"


def lake_rows(data_dir: Path, source: str) -> list[dict]:
    files = list((data_dir / "lake" / "logs" / source).rglob("*.parquet"))
    if not files:
        return []
    con = duckdb.connect()
    con.execute("SET TimeZone='UTC'")
    rel = con.execute(
        "SELECT * FROM read_parquet(?, hive_partitioning=true) ORDER BY event_time",
        [[str(f) for f in files]],
    )
    cols = [d[0] for d in rel.description]
    return [dict(zip(cols, r, strict=True)) for r in rel.fetchall()]


def deadletters(data_dir: Path) -> list[dict]:
    out = []
    for f in (data_dir / "lake" / "deadletter").rglob("*.jsonl"):
        out += [json.loads(x) for x in f.read_text().splitlines() if x.strip()]
    return out


def test_cloudtrail_records_file_normalizes(cli, data_dir):
    r = cli("ingest", "--source", "cloudtrail", str(CT / "s3-log-file.json"), "--format", "json")
    assert r.code == 0, r.err
    out = r.json()
    assert set(out) >= {
        "source",
        "files",
        "events",
        "rejected",
        "dead_letter",
        "partitions",
        "seconds",
    }
    assert out["source"] == "cloudtrail"
    assert (out["files"], out["events"], out["rejected"], out["partitions"]) == (1, 3, 0, 2)
    rows = lake_rows(data_dir, "cloudtrail")
    first, root, stop = rows
    assert first["event_type"] == "CreateBucket"
    assert first["user"] == "alice"
    assert first["src_ip"] == "198.51.100.7"
    assert first["outcome"] == "success"
    assert first["event_id"] == "11111111-1111-1111-1111-111111111111"
    assert first["eventSource"] == "s3.amazonaws.com"
    assert first["userIdentity"]["type"] == "IAMUser"
    assert json.loads(first["requestParameters"])["bucketName"] == "alice-reports"
    assert first["event_time"].isoformat() == "2026-03-01T10:15:00+00:00"
    assert root["user"] == "root" and root["outcome"] == "failure"
    assert stop["user"] == "Admin" and stop["outcome"] == "failure"
    assert json.loads(first["raw"])["eventName"] == "CreateBucket"
    # the module reference's partition layout
    part = data_dir / "lake/logs/cloudtrail/year=2026/month=03/day=01/hour=10"
    assert len(list(part.glob("*.parquet"))) == 1


def test_reingest_is_idempotent(cli, data_dir):
    args = ("ingest", "--source", "cloudtrail", str(CT), "--format", "json")
    first = cli(*args).json()
    second = cli(*args).json()
    assert first["events"] == 5
    assert second["events"] == 0 and second["duplicates"] == 5
    assert len(lake_rows(data_dir, "cloudtrail")) == 5


def test_gzip_directory_and_digest_skipped(cli, data_dir, tmp_path):
    d = tmp_path / "in" / "nested"
    d.mkdir(parents=True)
    (d / "a.json.gz").write_bytes(gzip.compress((CT / "s3-log-file.json").read_bytes()))
    (d / "digest.json").write_bytes((CT / "digest.json").read_bytes())
    out = cli("ingest", "-s", "cloudtrail", str(tmp_path / "in"), "-f", "json").json()
    assert out["files"] == 2 and out["events"] == 3 and out["rejected"] == 0
    assert out["skipped"] == 1


def test_stdin(data_dir):
    body = (CT / "events.ndjson").read_bytes()
    p = run_mantissa(
        "--data-dir", str(data_dir), "ingest", "-s", "cloudtrail", "-", "-f", "json", stdin=body
    )
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert out["events"] == 2
    assert len(p.stdout.decode().strip().splitlines()) == 1


def test_bad_input_goes_to_dead_letter(cli, data_dir, tmp_path):
    good = (CT / "events.ndjson").read_text().splitlines()
    now = time.time()
    future = json.loads(good[0]) | {"eventID": "f1", "eventTime": "2099-01-01T00:00:00Z"}
    epoch = json.loads(good[0]) | {"eventID": "f2", "eventTime": "1970-01-01T00:00:00Z"}
    no_time = json.loads(good[0]) | {"eventID": "f3"}
    no_time.pop("eventTime")
    wrong_types = json.loads(good[0]) | {"eventID": "f4", "userIdentity": "oops", "readOnly": "x"}
    lines = [
        good[0],
        '{"eventName": "Broken", ',
        "\x00\x01\x02binary\xff garbage",
        json.dumps(future),
        json.dumps(epoch),
        json.dumps(no_time),
        json.dumps(wrong_types),
        '"just a string"',
        good[1],
    ]
    f = tmp_path / "mixed.ndjson"
    f.write_text("\n".join(lines) + "\n")
    r = cli("ingest", "-s", "cloudtrail", str(f), "-f", "json")
    assert r.code == 0
    out = r.json()
    assert out["events"] == 3  # two good + wrong_types (kept, bad fields become NULL)
    assert out["rejected"] == 6 and out["dead_letter"] == 6
    dl = deadletters(data_dir)
    by_line = {d["line"]: d for d in dl}
    assert by_line[2]["reason"] == "malformed JSON"
    assert by_line[3]["reason"] == "malformed JSON"
    assert by_line[4]["reason"].startswith("timestamp in the future")
    assert by_line[5]["reason"].startswith("timestamp before")
    assert by_line[6]["reason"] == "missing or unparseable timestamp"
    assert by_line[8]["reason"].startswith("not a JSON object")
    assert all(d["file"] == str(f) for d in dl)
    assert by_line[2]["record"] == '{"eventName": "Broken", '
    assert now  # dead letters are written even when the batch has good rows
    kept = [r for r in lake_rows(data_dir, "cloudtrail") if r["event_id"] == "f4"]
    assert (
        kept
        and kept[0]["userIdentity"]["type"] is None
        and json.loads(kept[0]["raw"])["readOnly"] == "x"
    )


def test_strict_makes_rejections_fatal(cli, tmp_path):
    f = tmp_path / "bad.ndjson"
    f.write_text("{not json\n")
    assert cli("ingest", "-s", "cloudtrail", str(f), "-f", "json").code == 0
    assert cli("ingest", "-s", "cloudtrail", str(f), "-f", "json", "--strict").code == 1


def test_truncated_gzip_keeps_what_it_can(cli, data_dir, tmp_path):
    body = gzip.compress((CT / "events.ndjson").read_bytes() * 1)
    f = tmp_path / "cut.ndjson.gz"
    f.write_bytes(body[: len(body) - 20])
    out = cli("ingest", "-s", "cloudtrail", str(f), "-f", "json").json()
    assert out["rejected"] >= 1
    reasons = [d["reason"] for d in deadletters(data_dir)]
    assert any("truncated gzip" in r for r in reasons)


def test_huge_line_is_rejected_not_fatal(cli, data_dir, tmp_path):
    f = tmp_path / "huge.ndjson"
    good = (CT / "events.ndjson").read_text()
    with open(f, "w") as fh:
        fh.write(good)
        fh.write('{"eventName": "x", "blob": "' + "A" * (50 * 1024 * 1024) + '"}\n')
        fh.write(good.replace("4444", "6666").replace("5555", "7777"))
    out = cli("ingest", "-s", "cloudtrail", str(f), "-f", "json").json()
    assert out["events"] == 4
    assert out["rejected"] == 1
    dl = deadletters(data_dir)
    assert dl[0]["line"] == 3 and "max_line_bytes" in dl[0]["reason"]
    assert len(dl[0]["record"]) > 50 * 1024 * 1024  # the record itself is kept


def test_wrong_source_is_a_clear_error(cli, tmp_path):
    r = cli("ingest", "-s", "nosuchsource", str(CT / "events.ndjson"))
    assert r.code == 2
    assert "unknown source 'nosuchsource'" in r.err


def test_wrong_source_for_content_dead_letters(cli, data_dir):
    # a CloudTrail file ingested as a CloudTrail-shaped but wrong format still never crashes
    r = cli(
        "ingest", "-s", "cloudtrail", str(FIXTURES / "cloudtrail" / "digest.json"), "-f", "json"
    )
    assert r.code == 0


def test_missing_input_path(cli):
    r = cli("ingest", "-s", "cloudtrail", "/no/such/file.json")
    assert r.code == 2 and "does not exist" in r.err


def test_late_events_land_in_their_own_hour(cli, data_dir, tmp_path):
    lines = []
    for i, t in enumerate(["2026-03-05T10:00:00Z", "2026-03-01T03:00:00Z", "2026-03-05T10:30:00Z"]):
        lines.append(
            json.dumps({"eventTime": t, "eventName": "X", "eventSource": "s", "eventID": f"id{i}"})
        )
    f = tmp_path / "late.ndjson"
    f.write_text("\n".join(lines))
    cli("ingest", "-s", "cloudtrail", str(f))
    base = data_dir / "lake/logs/cloudtrail"
    assert len(list((base / "year=2026/month=03/day=01/hour=03").glob("*.parquet"))) == 1
    assert len(list((base / "year=2026/month=03/day=05/hour=10").glob("*.parquet"))) == 1


def _big_ndjson(path: Path, n: int) -> None:
    with open(path, "wb") as fh:
        for i in range(n):
            fh.write(
                orjson.dumps(
                    {
                        "eventVersion": "1.08",
                        "eventTime": f"2026-03-0{1 + i % 3}T{i % 24:02d}:00:00Z",
                        "eventSource": "s3.amazonaws.com",
                        "eventName": "GetObject",
                        "eventID": f"evt-{i}",
                        "sourceIPAddress": "10.0.0.1",
                        "userIdentity": {"type": "IAMUser", "userName": f"u{i % 50}"},
                        "requestParameters": {"bucketName": "b", "key": f"k{i}"},
                    }
                )
                + b"\n"
            )


@pytest.mark.slow
def test_kill_9_then_rerun_gives_exact_count(tmp_path):
    n = 300_000
    src = tmp_path / "big.ndjson"
    _big_ndjson(src, n)
    data = tmp_path / "data"
    data.mkdir()
    (data / "mantissa.yaml").write_text("ingest:\n  batch_bytes: 2000000\n")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mantissa.cli.main",
            "--data-dir",
            str(data),
            "ingest",
            "-s",
            "cloudtrail",
            str(src),
            "-f",
            "json",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    lake = data / "lake" / "logs" / "cloudtrail"
    deadline = time.time() + 120
    while time.time() < deadline:
        if lake.exists() and sum(1 for _ in lake.rglob("*.parquet")) >= 10:
            break
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    partial = len(lake_rows(data, "cloudtrail"))
    assert 0 < partial < n, "the kill should land mid-ingest"
    p = run_mantissa("--data-dir", str(data), "ingest", "-s", "cloudtrail", str(src), "-f", "json")
    assert p.returncode == 0, p.stderr
    con = duckdb.connect()
    files = [str(f) for f in lake.rglob("*.parquet")]
    total, distinct = con.execute(
        "SELECT count(*), count(DISTINCT event_id) FROM read_parquet(?)", [files]
    ).fetchone()
    assert total == distinct == n
    assert not list(lake.rglob("*.tmp"))
