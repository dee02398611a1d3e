"""The whole rule library and the question evaluation set on DuckDB and on Spark local[2].

One lake holds every rule's samples (match and nomatch sets of all 199 sample files,
batched into one input file per source); the questions run over the evaluation lake of
tests/nlq; one Spark session serves the whole module. Every rule runs in the packed units the scheduler uses
(one scan per table), with the SQL each engine runs in production: DuckDB's text for
DuckDB, the Spark dialect rendering of the same tree for Spark. Every planned question
runs through the engine's ``execute`` (DuckDB SQL, transpiled for Spark). Results must be
identical: same rows in the same order where the SQL orders them, same Python types,
timestamps as the same UTC instants.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import shutil
from typing import Any

import pytest
import yaml

pytest.importorskip("pyspark", reason="pyspark is not installed: pip install -e '.[spark]'")
if shutil.which("java") is None:
    pytest.skip(
        "no Java runtime: run scripts/test-deps.sh (openjdk-17-jre-headless)",
        allow_module_level=True,
    )

# ~32 Spark jobs for the rule library and 67 for the questions: about 4 minutes on an idle
# 2-core machine, longer beside the rest of the suite
pytestmark = [pytest.mark.slow, pytest.mark.timeout(2400)]

from tests.nlq.conftest import nlq_lake  # noqa: E402, F401 - the evaluation lake fixture


def _samples_by_source(index: Any) -> dict[str, list[Any]]:
    from mantissa.detect.samples import samples_path

    out: dict[str, list[Any]] = {}
    for rule in index.rules:
        sp = samples_path(rule)
        if not sp.exists():
            continue
        doc = yaml.safe_load(sp.read_text()) or {}
        src = doc.get("source")
        if not src:
            continue
        events = [*(doc.get("match") or []), *(doc.get("nomatch") or [])]
        out.setdefault(src, []).extend(events)
    return out


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Any]:
    """(runtime, rule index) over one lake holding every rule's samples."""
    from mantissa.apm.samples import ingest_samples
    from mantissa.config import IngestConfig
    from mantissa.detect.rules import RuleIndex
    from mantissa.detect.samples import APM_SAMPLE_SOURCES
    from mantissa.lake.ingest import Pipeline, ingest_connection
    from mantissa.runtime import Runtime
    from mantissa.sources.base import get_source, registry

    root = tmp_path_factory.mktemp("xengine")
    data = root / "data"
    data.mkdir()
    rt = Runtime(data)
    index = RuleIndex.load(None)
    con = ingest_connection()
    cfg = IngestConfig(max_future_secs=10 * 365 * 86400)
    for src, events in sorted(_samples_by_source(index).items()):
        if src in APM_SAMPLE_SOURCES:
            ingest_samples(events, src, data)  # writes traces/metrics into <data>/lake
            continue
        if src not in registry():
            continue
        f = root / f"samples-{src}.jsonl"
        with f.open("w") as fh:
            for e in events:
                fh.write((e if isinstance(e, str) else json.dumps(e)) + "\n")
        Pipeline(rt.storage, get_source(src), cfg, con=con).ingest_paths([str(f)])
    con.close()
    return rt, index


def _engines(rt: Any) -> tuple[Any, Any]:
    # one Spark application per process; each engine works in its own session of it
    return rt.make_engine("duckdb", max_rows=1_000_000), rt.make_engine(
        "spark", master="local[2]", max_rows=1_000_000, timeout_secs=900
    )


def _norm(v: Any) -> Any:
    if isinstance(v, float):
        return round(v, 9)
    if isinstance(v, decimal.Decimal):
        return round(float(v), 9)
    if isinstance(v, list):
        return [_norm(x) for x in v]
    if isinstance(v, dict):
        return {k: _norm(x) for k, x in v.items()}
    return v


def _typed(row: list[Any]) -> list[tuple[str, Any]]:
    return [(type(v).__name__, _norm(v)) for v in row]


def _key(row: list[Any]) -> str:
    return json.dumps(_typed(row), default=str, sort_keys=True)


def _diff(a: Any, b: Any, ordered: bool) -> str | None:
    """Why two results differ (columns, row count, values, types, time zones), or None."""
    ca, cb = [c.lower() for c in a.columns], [c.lower() for c in b.columns]
    if ca != cb:
        return f"columns {ca} vs {cb}"
    if len(a.rows) != len(b.rows):
        return f"{len(a.rows)} rows vs {len(b.rows)}"
    ra = a.rows if ordered else sorted(a.rows, key=_key)
    rb = b.rows if ordered else sorted(b.rows, key=_key)
    for x, y in zip(ra, rb, strict=True):
        for col, vx, vy in zip(ca, x, y, strict=True):
            if isinstance(vy, dt.datetime) and vy.utcoffset() != dt.timedelta(0):
                return f"{col}: Spark time {vy!r} is not UTC"
            if type(vx) is not type(vy):
                return f"{col}: type {type(vx).__name__} vs {type(vy).__name__} ({vx!r} / {vy!r})"
            if _norm(vx) != _norm(vy):
                return f"{col}: {vx!r} vs {vy!r}"
    return None


def test_full_rule_library_same_on_duckdb_and_spark(lake: tuple[Any, Any]) -> None:
    from mantissa.detect.dialects import render
    from mantissa.detect.engine import DetectionEngine
    from mantissa.detect.query import pack, unit_tree

    rt, index = lake
    duck, spark = _engines(rt)
    det = DetectionEngine(rt, index, engine=duck)
    rules = [r for r in index.rules if r.generate and (r.table or r.kind == "correlation")]
    compiled, errors = det.compile(rules)
    assert not errors, errors
    available = set(duck.tables())
    runnable = [c for c in compiled if all(t in available for t in c.tables)]
    assert len(runnable) == len(compiled) >= 190, "every library rule runs on both engines"
    units = pack(runnable)
    failures: list[str] = []
    matched_rules: set[str] = set()
    for unit in units:
        tree = unit_tree(unit, None, None)
        ids = [c.rule.id for c in unit]
        a = duck.execute(render(tree, "duckdb"))
        try:
            b = spark.execute_tree(tree)
        except Exception as exc:
            failures.append(f"{unit[0].rule.table} ({len(unit)} rules): Spark failed: {exc}")
            continue
        why = _diff(a, b, ordered=False)
        if why:
            # name the rules whose rows differ
            def by_rule(res: Any) -> dict[str, list[str]]:
                out: dict[str, list[str]] = {}
                for rec in res.records():
                    out.setdefault(str(rec.get("rule_id")), []).append(_key(list(rec.values())))
                return {k: sorted(v) for k, v in out.items()}

            ra, rb = by_rule(a), by_rule(b)
            bad = sorted(r for r in set(ra) | set(rb) if ra.get(r) != rb.get(r)) or ids
            names = [index.get(r).name or r for r in bad if r in ids] or bad
            failures.append(f"{unit[0].rule.table}: {why}; rules {names[:8]}")
        matched_rules |= {str(r.get("rule_id")) for r in a.records()}
    assert not failures, "\n".join(failures)
    # the comparison is not vacuous: most rules matched their samples on both engines
    assert len(matched_rules) >= 0.8 * len(runnable), len(matched_rules)


def test_question_set_same_on_duckdb_and_spark(nlq_lake: tuple[Any, Any]) -> None:  # noqa: F811
    from mantissa.ask.lexicon import load_lexicon
    from mantissa.ask.render import render
    from mantissa.ask.service import check_sql, translate
    from tests.nlq.dataset import NOW
    from tests.nlq.questions import CASES

    rt, _ = nlq_lake  # tests/nlq's evaluation lake (16 days of CloudTrail, Okta, VPC flows)
    duck, spark = _engines(rt)
    lex = load_lexicon(rt)
    allowed = duck.tables()
    plans: dict[str, tuple[str, Any]] = {}
    for case in CASES:
        for q in case.questions:
            tr = translate(q, lex, NOW)
            if tr.plan is None:
                continue
            sql = check_sql(render(tr.plan, "duckdb"), allowed, NOW, tr.plan.time_column)
            plans.setdefault(sql, (q, tr.plan))
    assert len(plans) >= 60, len(plans)
    failures: list[str] = []
    non_empty = 0
    for sql, (q, _plan) in plans.items():
        a = duck.execute(sql)
        try:
            b = spark.execute(sql)
        except Exception as exc:
            failures.append(f"{q!r}: Spark failed: {exc}")
            continue
        ordered = " ORDER BY " in sql.upper()
        why = _diff(a, b, ordered)
        if why and ordered:
            # ties in ORDER BY may come back in any order: compare as sets, then order keys
            why = _diff(a, b, ordered=False) and why
        if why:
            failures.append(f"{q!r}: {why}\n    {sql}")
        non_empty += bool(a.rows)
    assert not failures, f"{len(failures)} of {len(plans)} differ:\n" + "\n".join(failures)
    assert non_empty >= 0.8 * len(plans)
