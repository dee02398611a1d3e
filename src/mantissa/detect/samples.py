"""``mantissa rules test``: a rule's sample events through the real parser, lake and SQL.

Beside ``<name>.yml`` a rule keeps ``<name>.samples.yml``::

    source: cloudtrail            # the parser the events go through
    match: [ {...vendor event...}, ... ]
    nomatch: [ {...}, ... ]

Each list is written as the vendor would deliver it (one JSON object per line, or the raw
text line for line-based sources), ingested into a private lake with the source's parser,
and the rule's compiled SQL runs on DuckDB over it. A plain rule passes when *every*
``match`` event matches and no ``nomatch`` event does; an aggregation or correlation rule
passes when the ``match`` set raises at least one alert group and the ``nomatch`` set none.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mantissa.config import IngestConfig
from mantissa.detect.dialects import render
from mantissa.detect.rules import SAMPLES_SUFFIX, Rule, RuleIndex
from mantissa.errors import MantissaError


@dataclass
class SampleResult:
    rule_id: str
    title: str
    path: str | None
    passed: bool
    skipped: bool = False
    checks: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule_id": self.rule_id,
            "title": self.title,
            "samples": self.path,
            "passed": self.passed,
            "skipped": self.skipped,
            "checks": self.checks,
            "error": self.error,
        }


# APM rules' samples are spans / data points, written through the OTLP decoder
APM_SAMPLE_SOURCES = ("otlp_traces", "otlp_metrics")


def samples_path(rule: Rule) -> Path:
    p = Path(rule.path)
    return p.with_name(p.name.rsplit(".", 1)[0] + SAMPLES_SUFFIX)


def _write_events(events: list[Any], dest: Path) -> None:
    with dest.open("w") as fh:
        for e in events:
            fh.write((e if isinstance(e, str) else json.dumps(e)) + "\n")


def _ingest(events: list[Any], source: str, root: Path, con: Any) -> tuple[Any, Any]:
    from mantissa.engines.duckdb import DuckDBEngine
    from mantissa.lake.ingest import Pipeline
    from mantissa.lake.storage import open_storage
    from mantissa.sources.base import get_source

    if source in APM_SAMPLE_SOURCES:
        from mantissa.apm.samples import ingest_samples

        return ingest_samples(events, source, root)
    root.mkdir(parents=True, exist_ok=True)
    storage = open_storage(None, root / "lake")
    summary = None
    if events:
        f = root / "events.jsonl"
        _write_events(events, f)
        cfg = IngestConfig(max_future_secs=10 * 365 * 86400)
        summary = Pipeline(storage, get_source(source), cfg, con=con).ingest_paths([str(f)])
    return DuckDBEngine(storage, timeout_secs=60, max_rows=1_000_000), summary


def run_rule_samples(rule: Rule, index: RuleIndex, work: Path, con: Any) -> SampleResult:
    """Check one rule against its samples file."""
    sp = samples_path(rule)
    res = SampleResult(rule.id, rule.title, str(sp) if sp.exists() else None, False)
    if not sp.exists():
        res.error = f"no samples file ({sp.name})"
        return res
    try:
        data = yaml.safe_load(sp.read_text()) or {}
    except yaml.YAMLError as exc:
        res.error = f"{sp}: invalid YAML: {exc}"
        return res
    source = data.get("source")
    if not source:
        res.error = f"{sp}: missing 'source'"
        return res
    from mantissa.sources.base import registry

    if source not in registry() and source not in APM_SAMPLE_SOURCES:
        res.skipped = True
        res.passed = True
        res.error = f"skipped: no {source} parser in this installation"
        return res
    try:
        compiled = index.compiled(rule)
    except MantissaError as exc:
        res.error = exc.message
        return res
    sql = render(compiled.tree(None, None), "duckdb")
    plain = compiled.packable
    ok = True
    for label in ("match", "nomatch"):
        events = list(data.get(label) or [])
        try:
            engine, summary = _ingest(events, source, work / f"{rule.id}-{label}", con)
        except MantissaError as exc:
            res.error = f"{label} samples: {exc.message}"
            return res
        ingested = summary.events if summary else 0
        rejected = summary.rejected if summary else 0
        check: dict[str, Any] = {"set": label, "events": len(events), "ingested": ingested}
        if rejected:
            check["rejected"] = rejected
            check["passed"] = False
            check["reason"] = f"{rejected} sample event(s) rejected by the {source} parser"
            res.checks.append(check)
            ok = False
            continue
        if not events:
            check["passed"] = True
            res.checks.append(check)
            continue
        try:
            records = engine.execute(sql).records()
        except MantissaError as exc:
            res.error = f"{label}: {exc.message}"
            return res
        groups = {
            (
                r["rule_id"],
                tuple(v for k, v in r.items() if k.startswith("g") and k[1:].isdigit()),
                r.get("bucket"),
            ): r
            for r in records
        }
        matched = sum(int(r["match_count"]) for r in groups.values())
        check["matched"] = matched
        check["alerts"] = len(groups)
        if label == "match":
            passed = (matched >= ingested) if plain else len(groups) > 0
            if not passed:
                check["reason"] = (
                    f"{ingested - matched} of {ingested} match event(s) did not match"
                    if plain
                    else "the match set raised no alert"
                )
        else:
            passed = len(groups) == 0
            if not passed:
                check["reason"] = f"{matched} nomatch event(s) matched"
        check["passed"] = passed
        ok = ok and passed
        res.checks.append(check)
    res.passed = ok
    return res


def run_samples(index: RuleIndex, rules: list[Rule]) -> list[SampleResult]:
    from mantissa.lake.ingest import ingest_connection

    con = ingest_connection(threads=1)
    with tempfile.TemporaryDirectory(prefix="mantissa-rules-test-") as tmp:
        try:
            return [run_rule_samples(r, index, Path(tmp), con) for r in rules]
        finally:
            con.close()
