"""Shared helpers of the detection tests: a real lake built through the real parsers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mantissa.lake.ingest import Pipeline, ingest_connection
from mantissa.runtime import Runtime
from mantissa.sources.base import get_source

SIGMAHQ = Path(__file__).resolve().parents[3] / "shared" / "sigmahq"
if not SIGMAHQ.exists():
    SIGMAHQ = Path("/work/shared/sigmahq")


def ingest_events(rt: Runtime, source: str, events: list[Any], name: str = "events") -> Any:
    """Write ``events`` as the vendor delivers them (NDJSON / lines) and ingest them."""
    from mantissa.config import IngestConfig

    f = rt.data_dir / f"{name}-{source}.jsonl"
    with f.open("w") as fh:
        for e in events:
            fh.write((e if isinstance(e, str) else json.dumps(e)) + "\n")
    con = ingest_connection(threads=1)
    try:
        cfg = IngestConfig(max_future_secs=10 * 365 * 86400)
        return Pipeline(rt.storage, get_source(source), cfg, con=con).ingest_paths([str(f)])
    finally:
        con.close()


@pytest.fixture
def rt(tmp_path: Path) -> Runtime:
    (tmp_path / "mantissa.yaml").write_text("detect: {builtin_rules: false, parallelism: 1}\n")
    return Runtime(tmp_path)
