"""Dedup in the lake writer: only ids that repeat or are stored are dropped, rows intact."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb

from mantissa.lake.ingest import IngestSummary, Pipeline
from mantissa.lake.storage import LocalStorage
from mantissa.sources.cloudtrail import CloudTrail


def _event(eid: str, minute: int, name: str = "GetObject") -> str:
    return json.dumps(
        {
            "eventVersion": "1.09",
            "eventTime": f"2026-03-01T10:{minute:02d}:00Z",
            "eventSource": "s3.amazonaws.com",
            "eventName": name,
            "eventID": eid,
            "userIdentity": {"type": "IAMUser", "userName": "alice"},
        }
    )


def _rows(root: Path) -> list[tuple]:
    files = sorted(str(f) for f in (root / "logs/cloudtrail").rglob("*.parquet"))
    con = duckdb.connect()
    return con.execute(
        "SELECT event_id, event_type, filename FROM read_parquet(?, filename=true) "
        "ORDER BY event_id",
        [files],
    ).fetchall()


def test_partial_overlap_keeps_new_rows_drops_stored_and_repeated(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "lake")
    pipe = Pipeline(storage, CloudTrail())
    a = tmp_path / "a.json"
    a.write_text("\n".join(_event(f"id-{i}", i) for i in range(3)) + "\n")
    first = pipe.ingest_paths([str(a)])
    assert (first.events, first.duplicates) == (3, 0)
    # same hour: two stored ids, two new ones (no id repeats inside the batch)
    b = tmp_path / "b.json"
    lines = [_event("id-0", 0), _event("id-1", 1), _event("id-7", 7), _event("id-8", 8)]
    b.write_text("\n".join(lines) + "\n")
    second = pipe.ingest_paths([str(b)])
    assert (second.events, second.duplicates) == (2, 2)
    # nothing stored, one id twice inside the batch
    c = tmp_path / "c.json"
    c.write_text(_event("id-9", 30, "PutObject") + "\n" + _event("id-9", 20) + "\n")
    third = pipe.ingest_paths([str(c)])
    assert (third.events, third.duplicates) == (1, 1)
    rows = _rows(tmp_path / "lake")
    assert [r[0] for r in rows] == ["id-0", "id-1", "id-2", "id-7", "id-8", "id-9"]
    # of a repeated id the earliest record is kept
    assert dict((r[0], r[1]) for r in rows)["id-9"] == "GetObject"
    # each batch is its own file in the same hour partition
    assert len({r[2] for r in rows}) == 3


def test_no_clash_writes_every_row_sorted(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "lake")
    pipe = Pipeline(storage, CloudTrail())
    summary = IngestSummary("cloudtrail")
    body = "\n".join(_event(f"id-{i}", 59 - i) for i in range(40)) + "\n"
    pipe.ingest_bytes(body.encode(), "body", summary)
    assert (summary.events, summary.duplicates, summary.files_written) == (40, 0, 1)
    f = next((tmp_path / "lake/logs/cloudtrail").rglob("*.parquet"))
    con = duckdb.connect()
    times = [r[0] for r in con.execute(f"SELECT event_time FROM '{f}'").fetchall()]
    assert times == sorted(times)
    codecs = {
        r[0] for r in con.execute(f"SELECT compression FROM parquet_metadata('{f}')").fetchall()
    }
    assert codecs == {"ZSTD"}
