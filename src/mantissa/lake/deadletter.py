"""The dead-letter store: every rejected record, with where it came from and why.

Entries are JSON lines under ``deadletter/<source>/<YYYY-MM-DD>/<batch-id>.jsonl``,
written atomically, each ``{"source", "file", "line", "offset", "reason", "record",
"rejected_at"}``. Nothing rejected is ever dropped silently.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson

from mantissa.lake.storage import Storage

PREFIX = "deadletter"


@dataclass
class Rejection:
    source: str
    file: str
    line: int | None
    reason: str
    record: str | None
    offset: int | None = None

    def to_json(self, now: str) -> bytes:
        return orjson.dumps(
            {
                "source": self.source,
                "file": self.file,
                "line": self.line,
                "offset": self.offset,
                "reason": self.reason,
                "record": self.record,
                "rejected_at": now,
            }
        )


class DeadLetterStore:
    def __init__(self, storage: Storage) -> None:
        self.storage = storage

    def write(self, source: str, batch_id: str, rejections: list[Rejection]) -> str | None:
        """Write ``rejections`` as one object; returns its key (None when empty)."""
        if not rejections:
            return None
        now = dt.datetime.now(dt.UTC)
        stamp = now.isoformat()
        key = f"{PREFIX}/{source}/{now:%Y-%m-%d}/{batch_id}.jsonl"
        body = b"\n".join(r.to_json(stamp) for r in rejections) + b"\n"
        self.storage.write_bytes(key, body)
        return key

    def entries(self, source: str | None = None) -> Iterator[dict[str, Any]]:
        prefix = f"{PREFIX}/{source}" if source else PREFIX
        for obj in self.storage.list(prefix, ".jsonl"):
            for line in self.storage.read_bytes(obj.key).splitlines():
                if line.strip():
                    yield orjson.loads(line)

    def counts(self) -> dict[str, int]:
        """Dead-letter entries per source."""
        out: dict[str, int] = {}
        for obj in self.storage.list(PREFIX, ".jsonl"):
            src = obj.key.split("/")[1]
            n = self.storage.read_bytes(obj.key).count(b"\n")
            out[src] = out.get(src, 0) + n
        return out
