"""Fuzzing every registered source through the real Pipeline: rows or dead letters only.

Inputs: random bytes, truncated fixture records, every field of a fixture record replaced
by a value of another type, deep nesting and huge strings. Whatever comes in, the
pipeline must not raise; each record becomes a row, a skip or a dead-letter entry.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mantissa.lake.ingest import Pipeline
from mantissa.lake.storage import LocalStorage
from mantissa.sources.base import get_source, registry
from tests.conftest import FIXTURES

SOURCES = sorted(registry())
ODD = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.text(max_size=20),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
)


def _sample(source: str) -> str:
    for p in sorted((FIXTURES / source).glob("*")):
        if (p.is_file() and not p.name.endswith(".json")) or p.suffix == ".ndjson":
            return p.read_text()
    for p in sorted((FIXTURES / source).glob("*.json")):
        if not p.name.endswith((".expected.json", "corpus.json")):
            return p.read_text()
    return "{}\n"


def _mutate(record: object, value: object, which: int) -> object:
    if isinstance(record, dict) and record:
        keys = sorted(record)
        k = keys[which % len(keys)]
        return {**record, k: value}
    return value


def _ingest(source: str, data: bytes, tmp: Path) -> None:
    pipe = Pipeline(LocalStorage(tmp), get_source(source))
    f = tmp / "input.log"
    f.write_bytes(data)
    s = pipe.ingest_paths([str(f)])
    assert s.events + s.rejected + s.skipped + s.duplicates >= 0


FUZZ = settings(
    max_examples=8, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True
)


@pytest.mark.slow
@pytest.mark.parametrize("source", SOURCES)
@FUZZ
@given(data=st.binary(max_size=400))
def test_random_bytes(source, data, tmp_path_factory):
    _ingest(source, data, tmp_path_factory.mktemp("f"))


@pytest.mark.slow
@pytest.mark.parametrize("source", SOURCES)
@FUZZ
@given(cut=st.integers(min_value=0, max_value=4000))
def test_truncated(source, cut, tmp_path_factory):
    text = _sample(source)
    _ingest(source, text[: cut % (len(text) + 1)].encode(), tmp_path_factory.mktemp("f"))


@pytest.mark.slow
@pytest.mark.parametrize("source", SOURCES)
@FUZZ
@given(value=ODD, which=st.integers(min_value=0, max_value=50))
def test_wrong_types(source, value, which, tmp_path_factory):
    lines = []
    for line in _sample(source).splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            lines.append(line.replace(" ", f" {value!s} ", 1))
            continue
        lines.append(json.dumps(_mutate(rec, value, which)))
    _ingest(source, "\n".join(lines).encode(), tmp_path_factory.mktemp("f"))


@pytest.mark.slow
@pytest.mark.parametrize("source", SOURCES)
def test_deep_nesting_and_huge_strings(source, tmp_path):
    deep = "[" * 5000 + "]" * 5000
    nested = '{"a":' * 2000 + "1" + "}" * 2000
    huge = json.dumps({"eventType": "x" * 2_000_000, "message": "y" * 100})
    data = "\n".join([deep, nested, huge, "z" * 3_000_000]).encode()
    _ingest(source, data, tmp_path)
