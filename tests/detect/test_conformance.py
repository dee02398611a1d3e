"""Conformance with community rules: every SigmaHQ rule in ../shared/sigmahq loads, converts
to all five dialects (each statement parsed back by sqlglot in its dialect) and runs on
DuckDB against the lake; and vendor-format true-positive events alert through the real
parser + lake + SQL path. Skipped when ../shared is absent."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from pathlib import Path

import duckdb
import pytest
import sqlglot
import yaml

from mantissa.detect.dialects import DIALECTS, SQLGLOT_NAME
from mantissa.detect.engine import DetectionEngine
from mantissa.detect.rules import RuleIndex
from mantissa.errors import MantissaError
from tests.detect.conftest import SIGMAHQ, ingest_events

pytestmark = pytest.mark.skipif(
    not SIGMAHQ.exists(), reason=f"SigmaHQ rule set not found at {SIGMAHQ} (../shared absent)"
)
TP_FILE = Path(__file__).parent / "fixtures" / "sigmahq_true_positives.yml"


@pytest.mark.slow
def test_sigmahq_convert_and_execute(rt) -> None:
    idx = RuleIndex.load(rt, paths=[SIGMAHQ])
    total = len(idx.rules) + len(idx.issues)
    assert total >= 278
    failures: Counter[str] = Counter()
    ok = 0
    # one sandboxed session for all rules; every statement still goes through the guard
    con = rt.engine.connect()
    for rule in idx.rules:
        try:
            compiled = idx.compiled(rule)
            for d in DIALECTS:
                sqlglot.parse_one(compiled.sql(d), read=SQLGLOT_NAME[d])
            con.execute(rt.engine.prepare(compiled.sql("duckdb"))).fetchall()
            ok += 1
        except MantissaError as exc:
            failures[f"{Path(rule.path).name}: {exc.message}"] += 1
        except duckdb.Error as exc:
            failures[f"{Path(rule.path).name}: {exc}"] += 1
    con.close()
    for issue in idx.issues:
        failures[f"{Path(issue.path).name}: {issue.message}"] += 1
    assert ok / total >= 0.95, failures


def _tp_cases() -> list[dict]:
    if not TP_FILE.exists():
        return []
    return yaml.safe_load(TP_FILE.read_text())


@pytest.mark.slow
def test_sigmahq_true_positives(rt) -> None:
    cases = _tp_cases()
    assert len(cases) >= 30
    by_source: dict[str, list[dict]] = {}
    for c in cases:
        by_source.setdefault(c["source"], []).append(c)
    for source, items in by_source.items():
        summary = ingest_events(rt, source, [e for c in items for e in c["events"]], source)
        assert summary.rejected == 0, (source, summary.to_dict())
    idx = RuleIndex.load(rt, paths=[SIGMAHQ / c["rule"] for c in cases])
    by_path = {str(Path(r.path).relative_to(SIGMAHQ)): r for r in idx.rules}
    engine = DetectionEngine(rt, idx)
    start = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
    end = dt.datetime.now(dt.UTC) + dt.timedelta(days=3650)
    ev = engine.evaluate(start, end, rules=[by_path[c["rule"]] for c in cases])
    assert not ev.errors, ev.errors
    alerted = {c.rule_id: set(c.evidence_event_ids) for c in ev.candidates}
    missed = []
    for c in cases:
        rule = by_path[c["rule"]]
        if rule.id not in alerted:
            missed.append(c["rule"])
    assert not missed, f"{len(missed)} true positives did not alert: {missed}"
