"""Golden fixtures: every source parses its fixtures into the expected rows.

``tests/fixtures/<source>/<name>`` is an input written from the vendor's documented format;
``<name>.expected.json`` beside it is ``{"rejected": N, "rows": [{column: value, ...}]}``
where each expected row lists the columns to check (a subset), in ``event_time, event_id``
order. Adding a fixture pair adds a test; every registered source must have one.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mantissa.sources.base import registry
from tests.conftest import FIXTURES
from tests.sources.harness import parse_files


def _cases() -> list[tuple[str, Path]]:
    out = []
    for expected in sorted(FIXTURES.glob("*/*.expected.json")):
        source = expected.parent.name
        out.append((source, expected.with_name(expected.name.removesuffix(".expected.json"))))
    return out


@pytest.mark.parametrize("source", sorted(registry()))
def test_every_source_has_a_golden_fixture(source):
    assert list((FIXTURES / source).glob("*.expected.json")), (
        f"add tests/fixtures/{source}/<input> and <input>.expected.json"
    )


@pytest.mark.parametrize("source,path", _cases(), ids=lambda v: v if isinstance(v, str) else v.name)
def test_golden(source, path, tmp_path):
    expected = json.loads(path.with_name(path.name + ".expected.json").read_text())
    parsed = parse_files(source, [path], tmp_path / "lake")
    assert parsed.summary.rejected == expected.get("rejected", 0), parsed.rejections
    want = expected["rows"]
    assert len(parsed.rows) == len(want), [r.get("event_type") for r in parsed.rows]
    for got, exp in zip(parsed.rows, want, strict=True):
        sub = {k: got.get(k) for k in exp}
        assert sub == exp
