"""Test harness for sources: ingest a file through the real pipeline into a temp lake."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from mantissa.engines.base import to_jsonable
from mantissa.lake.ingest import IngestSummary, Pipeline
from mantissa.lake.storage import LocalStorage
from mantissa.sources.base import get_source


@dataclass
class Parsed:
    summary: IngestSummary
    rows: list[dict[str, Any]]
    rejections: list[dict[str, Any]]


def parse_files(source: str, files: list[Path], lake: Path) -> Parsed:
    """Ingest ``files`` as ``source`` into ``lake``; rows in input order (file, line)."""
    storage = LocalStorage(lake)
    pipe = Pipeline(storage, get_source(source))
    summary = pipe.ingest_paths([str(f) for f in files])
    parquet = list((lake / "logs" / source).rglob("*.parquet"))
    rows: list[dict[str, Any]] = []
    if parquet:
        con = duckdb.connect()
        con.execute("SET TimeZone='UTC'")
        cur = con.execute(
            "SELECT * EXCLUDE (year, month, day, hour) FROM read_parquet(?, hive_partitioning=true, "
            "union_by_name=true) ORDER BY event_time, event_id",
            [[str(p) for p in parquet]],
        )
        cols = [d[0] for d in cur.description]
        rows = [{c: to_jsonable(v) for c, v in zip(cols, r, strict=True)} for r in cur.fetchall()]
    from mantissa.lake.deadletter import DeadLetterStore

    rejections = list(DeadLetterStore(storage).entries(source))
    return Parsed(summary, rows, rejections)


def parse_text(source: str, text: str | bytes, tmp: Path, name: str = "input.log") -> Parsed:
    """Write ``text`` to ``tmp/name`` and ingest it as ``source`` into ``tmp/lake``."""
    f = tmp / name
    f.write_bytes(text.encode() if isinstance(text, str) else text)
    return parse_files(source, [f], tmp / "lake")
