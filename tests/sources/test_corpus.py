"""Conformance on the vendors' real published samples in ``../shared/corpus``.

For each source folder: every input record parses or is dead-lettered for a reason listed
in ``tests/fixtures/<source>/corpus.json``, at least 98% parse, and where another
project's reference parse (``<input>.expected.json``, Elastic/Beats ECS documents) sits
beside an input, our timestamp, user, source IP, action and outcome agree with it.

``corpus.json`` keys (all optional):
* ``not_logs``: files that are not log input at all (with the reason in ``why``);
* ``expected_rejections``: ``{file: reason substring}`` rejections we defend;
* ``not_records``: ``{file: reason substring}`` rejections of records that are not this
  vendor's at all (e.g. a test harness's enrichment-only stubs): excluded from the rate;
* ``compare``: which of timestamp/user/src_ip/action/outcome to check (default all);
* ``timestamp``: ``instant`` (default), ``wallclock`` (the reference read a zone-less time
  in its test machine's zone: compare the digits), ``either`` (instant or wall clock) or
  ``noyear`` (syslog without year);
* ``outcome_map``: reference outcome → ours (e.g. ``{"allow": "success"}``);
* ``skip_compare``: ``{file: why}`` references that describe another pipeline's output.
Skipped when ``../shared`` is absent.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from mantissa.sources.base import registry
from tests.conftest import FIXTURES, SHARED
from tests.sources.harness import parse_files

CORPUS = SHARED / "corpus"
MIN_PARSE_RATE = 0.98
FIELDS = ("timestamp", "user", "src_ip", "action", "outcome")
_REFERENCE_KEYS = (
    "@timestamp",
    "source.ip",
    "user.name",
    "user.email",
    "source.user.name",
    "event.action",
    "event.outcome",
)


def corpus_inputs(source: str) -> list[Path]:
    d = CORPUS / source
    return sorted(
        p
        for p in d.iterdir()
        if p.is_file() and not p.name.endswith((".expected.json", ".index.jsonl"))
    )


def settings(source: str) -> dict[str, Any]:
    f = FIXTURES / source / "corpus.json"
    return json.loads(f.read_text()) if f.exists() else {}


def _need_corpus(source: str) -> None:
    if not CORPUS.exists():
        pytest.skip("../shared/corpus not present (only on dev and CI machines)")
    if not (CORPUS / source).exists():
        pytest.skip(f"no corpus folder for {source}")


def _matches(rejection: dict[str, Any], table: dict[str, str]) -> bool:
    name = Path(rejection["file"]).name
    return any(name == f and reason in rejection["reason"] for f, reason in table.items())


@pytest.mark.parametrize("source", sorted(registry()))
def test_corpus_parse_rate(source, tmp_path):
    _need_corpus(source)
    cfg = settings(source)
    files = [p for p in corpus_inputs(source) if p.name not in cfg.get("not_logs", {})]
    parsed = parse_files(source, files, tmp_path / "lake")
    s = parsed.summary
    allowed = cfg.get("expected_rejections", {})
    foreign = cfg.get("not_records", {})
    not_records = [r for r in parsed.rejections if _matches(r, foreign)]
    total = s.events + s.duplicates + s.rejected - len(not_records)
    assert total > 0
    rate = (s.events + s.duplicates) / total
    unexplained = [
        r for r in parsed.rejections if not _matches(r, allowed) and not _matches(r, foreign)
    ]
    assert not unexplained, unexplained[:5]
    assert rate >= MIN_PARSE_RATE, f"{source}: {rate:.1%} parsed; rejections: {s.reasons}"


# -- reference parses ---------------------------------------------------------------------


def _reference_cases() -> list[tuple[str, str]]:
    if not CORPUS.exists():
        return []
    out = []
    for source in sorted(registry()):
        d = CORPUS / source
        if d.exists():
            for exp in sorted(d.glob("*.expected.json")):
                out.append((source, exp.name.removesuffix(".expected.json")))
    return out


def _records(path: Path, multiline: bool) -> list[str]:
    """Input records in order: non-empty lines; indented lines continue the previous one."""
    out: list[str] = []
    for line in path.read_text(encoding="utf-8", errors="replace").split("\n"):
        line = line.rstrip("\r")
        if not line.strip():
            continue
        if multiline and line[:1] in (" ", "\t") and out:
            out[-1] += "\n" + line
        else:
            out.append(line)
    return out


def _canonical(text: str) -> str | None:
    try:
        return json.dumps(json.loads(text), sort_keys=True)
    except ValueError:
        return None


def _json_records(path: Path) -> list[str] | None:
    """JSON inputs as canonical texts, one per event (NDJSON, or documents one after another)."""
    text = path.read_text(encoding="utf-8", errors="replace")
    dec = json.JSONDecoder()
    docs: list[object] = []
    pos = 0
    while True:
        while pos < len(text) and text[pos] in " \t\r\n":
            pos += 1
        if pos >= len(text):
            break
        try:
            doc, pos = dec.raw_decode(text, pos)
        except ValueError:
            return None
        docs.extend(doc if isinstance(doc, list) else [doc])
    return [json.dumps(d, sort_keys=True) for d in docs]


def _ts(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


def _same_time(ours: str, theirs: str, mode: str) -> bool:
    a, b = _ts(ours), _ts(theirs)
    # references keep milliseconds
    wall = abs((a.replace(tzinfo=None) - b.replace(tzinfo=None)).total_seconds()) < 0.001
    if mode == "wallclock":
        return wall
    if mode == "either":  # zone-less inputs read in the reference's test zone
        return wall or abs((a - b).total_seconds()) < 0.001
    if mode == "noyear":
        return a.replace(tzinfo=None, year=2000) == b.replace(tzinfo=None, year=2000)
    return abs((a - b).total_seconds()) < 0.001


def _same_user(ours: str | None, theirs: str) -> bool:
    if ours is None:
        return False
    theirs = theirs.strip()
    return ours == theirs or ours.split("@")[0] == theirs or ours.lower() == theirs.lower()


@pytest.mark.parametrize("source,name", _reference_cases())
def test_corpus_matches_reference_parse(source, name, tmp_path):
    _need_corpus(source)
    cfg = settings(source)
    if name in cfg.get("not_logs", {}) or name in cfg.get("skip_compare", {}):
        pytest.skip(cfg.get("skip_compare", {}).get(name, "not log input"))
    path = CORPUS / source / name
    expected = json.loads(path.with_name(name + ".expected.json").read_text())
    if isinstance(expected, dict):
        expected = expected.get("expected", [])
    records = _records(path, multiline=source == "syslog")
    if source == "vpc_flow":  # format header lines are not records
        from mantissa.sources.vpc_flow import is_header

        records = [r for r in records if not is_header(r)]
    parsed = parse_files(source, [path], tmp_path / "lake")
    by_raw = {r["raw"]: r for r in parsed.rows}
    as_json = _json_records(path) if parsed.rows and _canonical(parsed.rows[0]["raw"]) else None
    if as_json is not None:
        # JSON events are matched by content: pretty-printed documents span many lines
        records = as_json
        by_raw = {_canonical(r["raw"]): r for r in parsed.rows}
    fields = cfg.get("compare", list(FIELDS))
    mode = cfg.get("timestamp", "instant")
    omap = cfg.get("outcome_map", {})
    compared = comparable = 0
    diffs = []
    for i, (rec, exp) in enumerate(zip(records, expected, strict=False)):
        row = by_raw.get(rec)
        if any(exp.get(k) is not None for k in _REFERENCE_KEYS):
            comparable += 1
        if row is None:
            continue  # rejected (checked by the parse-rate test)
        checks = {
            "timestamp": (exp.get("@timestamp"), row["event_time"]),
            "src_ip": (exp.get("source.ip"), row["src_ip"]),
            "user": (
                exp.get("user.name") or exp.get("user.email") or exp.get("source.user.name"),
                row["user"],
            ),
            "action": (exp.get("event.action"), row["event_type"]),
            "outcome": (
                omap.get(exp.get("event.outcome"), exp.get("event.outcome")),
                row["outcome"],
            ),
        }
        for f in fields:
            theirs, ours = checks[f]
            if theirs is None or isinstance(theirs, list):
                continue
            compared += 1
            if f == "timestamp":
                ok = ours is not None and _same_time(ours, theirs, mode)
            elif f == "user":
                ok = _same_user(ours, theirs)
            else:
                ok = ours == theirs
            if not ok:
                diffs.append((i + 1, f, theirs, ours))
    assert compared or not comparable, f"no record of {name} matched its reference parse"
    assert not diffs, (
        f"{len(diffs)} of {compared} differ (record, field, reference, ours): {diffs[:8]}"
    )
