"""Helpers for the SaaS source tests: parse a text body, compare with a reference parse."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mantissa.config import IngestConfig
from mantissa.lake.ingest import Pipeline
from mantissa.lake.storage import LocalStorage
from mantissa.sources.base import get_source
from tests.sources.harness import Parsed, parse_files


def parse_text(source: str, text: str | bytes, tmp: Path, name: str = "input.log") -> Parsed:
    """Write ``text`` to a file named ``name`` under ``tmp`` and ingest it as ``source``."""
    path = tmp / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, str):
        path.write_text(text)
    else:
        path.write_bytes(text)
    return parse_files(source, [path], tmp / "lake")


def ingest_with(source: str, files: list[Path], lake: Path, **config: Any) -> Any:
    """Ingest with a non-default :class:`IngestConfig` (e.g. ``min_event_time``)."""
    pipe = Pipeline(LocalStorage(lake), get_source(source), IngestConfig(**config))
    return pipe.ingest_paths([str(f) for f in files])


def reference_diffs(
    source: str, path: Path, tmp: Path, skip_records: set[int], fields: tuple[str, ...]
) -> tuple[int, list[tuple[int, str, Any, Any]]]:
    """Compare our parse of a corpus file with the reference beside it, record by record.

    Same comparison as ``test_corpus`` (which skips the file as a whole); ``skip_records``
    (1-based) are the records whose documented difference made it skip the file.
    """
    from tests.sources.test_corpus import _records, _same_time, _same_user

    expected = json.loads(path.with_name(path.name + ".expected.json").read_text())
    if isinstance(expected, dict):
        expected = expected.get("expected", [])
    rows = {r["raw"]: r for r in parse_files(source, [path], tmp / "lake").rows}
    diffs = []
    compared = 0
    for i, (rec, exp) in enumerate(zip(_records(path, False), expected, strict=False), 1):
        row = rows.get(rec)
        if row is None or i in skip_records:
            continue
        checks = {
            "timestamp": (exp.get("@timestamp"), row["event_time"]),
            "src_ip": (exp.get("source.ip"), row["src_ip"]),
            "user": (
                exp.get("user.name") or exp.get("user.email") or exp.get("source.user.name"),
                row["user"],
            ),
            "action": (exp.get("event.action"), row["event_type"]),
            "outcome": (exp.get("event.outcome"), row["outcome"]),
        }
        for f in fields:
            theirs, ours = checks[f]
            if theirs is None or isinstance(theirs, list):
                continue
            compared += 1
            if f == "timestamp":
                ok = ours is not None and _same_time(ours, theirs, "instant")
            elif f == "user":
                ok = _same_user(ours, theirs)
            else:
                ok = ours == theirs
            if not ok:
                diffs.append((i, f, theirs, ours))
    return compared, diffs
