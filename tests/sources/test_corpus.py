"""Conformance on the vendors' real published samples in ``../shared/corpus``.

For each source folder: every input record parses or is dead-lettered, at least 98%
parse, and where another project's reference parse (``<input>.expected.json``) exists,
our timestamp, user, source IP, action and outcome agree with it. Per-source notes
(which reference field maps to which of our columns, documented differences) live in
``tests/fixtures/<source>/corpus.json``. Skipped when ``../shared`` is absent.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mantissa.sources.base import registry
from tests.conftest import FIXTURES, SHARED
from tests.sources.harness import parse_files

CORPUS = SHARED / "corpus"
MIN_PARSE_RATE = 0.98


def corpus_inputs(source: str) -> list[Path]:
    d = CORPUS / source
    return sorted(
        p for p in d.iterdir()
        if p.is_file() and not p.name.endswith((".expected.json", ".index.jsonl"))
    )


def settings(source: str) -> dict[str, Any]:
    f = FIXTURES / source / "corpus.json"
    return json.loads(f.read_text()) if f.exists() else {}


@pytest.mark.parametrize("source", sorted(registry()))
def test_corpus_parse_rate(source, tmp_path):
    if not CORPUS.exists():
        pytest.skip("../shared/corpus not present (only on dev and CI machines)")
    if not (CORPUS / source).exists():
        pytest.skip(f"no corpus folder for {source}")
    cfg = settings(source)
    files = [p for p in corpus_inputs(source) if p.name not in cfg.get("not_logs", {})]
    parsed = parse_files(source, files, tmp_path / "lake")
    s = parsed.summary
    allowed = cfg.get("expected_rejections", {})
    total = s.events + s.duplicates + s.rejected
    assert total > 0
    rate = (s.events + s.duplicates) / total
    unexplained = [
        r for r in parsed.rejections
        if not any(Path(r["file"]).name == f and reason in r["reason"]
                   for f, reason in allowed.items())
    ]
    assert not unexplained, unexplained[:5]
    assert rate >= MIN_PARSE_RATE, f"{source}: {rate:.1%} parsed; rejections: {s.reasons}"
