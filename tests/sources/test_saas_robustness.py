"""Adversarial input for the SaaS sources: every field of every fixture record replaced by a
wrong type, deep nesting, a huge string, truncation. The only outcomes are rows or
dead-letter entries, and every input record is accounted for."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import FIXTURES
from tests.sources.saas import parse_text

SOURCES = [
    "google_workspace",
    "microsoft_365",
    "duo",
    "crowdstrike",
    "jamf",
    "slack_audit",
    "github",
    "kubernetes",
    "docker",
    "snowflake",
    "salesforce",
    "onepassword",
]

WRONG = [
    None,
    0,
    -1,
    1.5e308,
    True,
    "",
    "x" * 100_000,
    [],
    [1, [2, [3]]],
    {},
    {"a": {"b": {}}},
    "2024-13-45T99:99:99Z",
    "\u0000\ud7ff\U0001f600",
    10**30,
]


def _deep(n: int) -> object:
    v: object = "leaf"
    for _ in range(n):
        v = {"k": [v]}
    return v


def _records(source: str) -> list[dict]:
    out = []
    for f in sorted((FIXTURES / source).iterdir()):
        if f.name.endswith(".json") and not f.name.endswith((".expected.json", "corpus.json")):
            text, pos, docs = f.read_text(), 0, []
            while text[pos:].strip():  # one document or several in a row
                doc, pos = json.JSONDecoder().raw_decode(text, len(text) - len(text[pos:].lstrip()))
                docs.append(doc)
            if len(docs) > 1:
                out.extend(d for d in docs if isinstance(d, dict))
                continue
            doc = docs[0]
            items = doc if isinstance(doc, list) else None
            for key in ("items", "entries", "records", "authlogs"):
                if items is None and isinstance(doc.get(key), list):
                    items = doc[key]
            if items is None and isinstance(doc.get("response"), dict):
                items = doc["response"].get("authlogs")
            out.extend(i for i in (items or [doc]) if isinstance(i, dict))
        elif f.suffix in (".ndjson", ".log"):
            for line in f.read_text().splitlines():
                try:
                    obj = json.loads(line)
                except ValueError:
                    continue
                if isinstance(obj, dict):
                    out.append(obj)
    return out


@pytest.mark.slow
@pytest.mark.parametrize("source", SOURCES)
def test_every_field_with_every_wrong_type(source, tmp_path):
    records = _records(source)
    assert records, f"no JSON records in the {source} fixtures"
    lines = []
    for rec in records[:3]:
        for key in rec:
            for bad in WRONG:
                lines.append(json.dumps({**rec, key: bad}))
        lines.append(json.dumps({**rec, "deep": _deep(200)}))
    parsed = parse_text(source, "\n".join(lines), tmp_path, "mutants.ndjson")
    s = parsed.summary
    accounted = s.events + s.duplicates + s.rejected + s.skipped
    if source == "google_workspace":  # one row per event of an activity
        assert accounted >= len(lines)
    else:
        assert accounted == len(lines)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.binary(max_size=2000), source=st.sampled_from(SOURCES))
def test_random_bytes_never_raise(data, source, tmp_path_factory):
    tmp: Path = tmp_path_factory.mktemp("fuzz")
    parsed = parse_text(source, data, tmp, "random.bin")
    assert parsed.summary.events >= 0


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(source=st.sampled_from(SOURCES), cut=st.integers(min_value=1, max_value=400))
def test_truncated_records_never_raise(source, cut, tmp_path_factory):
    tmp: Path = tmp_path_factory.mktemp("trunc")
    text = "\n".join(json.dumps(r)[:cut] for r in _records(source)[:5])
    parsed = parse_text(source, text, tmp, "cut.ndjson")
    assert parsed.summary.events + parsed.summary.rejected + parsed.summary.duplicates >= 0
