"""APM Sigma rules: every rule's matching and non-matching samples through the real
OTLP decoder, lake and detection SQL; the demo's planted incident raises APM alerts."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

pytest.importorskip("mantissa.detect.engine", reason="the detection engine is not installed")

from mantissa.apm import demo
from mantissa.runtime import Runtime

RULES = Path(__file__).resolve().parents[2] / "src" / "mantissa" / "rules" / "sigma" / "apm"


def test_every_apm_rule_passes_its_samples(cli):
    r = cli("rules", "test", "--path", str(RULES), "--format", "json")
    out = r.json()
    failed = [x for x in out["results"] if not x["passed"] or x.get("skipped")]
    assert not failed, failed
    assert out["total"] >= 13
    for res in out["results"]:
        sets = {c["set"]: c for c in res["checks"]}
        assert sets["match"]["events"] > 0 and sets["nomatch"]["events"] > 0, res["title"]


def test_rules_validate_and_map_to_traces(cli):
    out = cli("rules", "validate", str(RULES), "--format", "json").json()
    assert out["valid"] == out["total"] and not out["unsupported"] and not out["invalid"]
    sql = cli(
        "rules",
        "convert",
        "--dialect",
        "duckdb",
        "--format",
        "json",
        str(RULES / "apm_error_payment_service.yml"),
    ).json()
    assert sql[0]["error"] is None and "FROM traces" in sql[0]["sql"]
    assert sql[0]["rule_id"] == "apm-error-payment-001"  # the reference's id, as written


@pytest.mark.slow
def test_demo_incident_raises_apm_alerts(tmp_path):
    rt = Runtime(tmp_path / "d")
    demo.load(rt, dt.datetime.now(dt.UTC))
    alerts = demo.run_apm_rules(rt, "4h")
    titles = {a.rule_title for a in alerts}
    assert {
        "Error burst in one service",
        "P99 latency over 2 seconds",
        "SQL injection in a database statement",
        "Login failures from one client address",
    } <= titles
    burst = [a for a in alerts if a.rule_title == "Error burst in one service"]
    assert {a.entities.get("service") for a in burst} >= {"payment"}
    assert all(len(a.entities.get("trace_id", "")) == 32 for a in burst)


def test_demo_traces_step_alerts_and_answers_why_checkout_is_slow(tmp_path):
    """`mantissa demo`'s Traces step: the incident alerts, and the offline question tier
    names checkout's slowest dependencies (payment timeouts, slow inventory queries)."""
    import io

    from rich.console import Console

    from mantissa.demo import DemoContext
    from mantissa.demo.scenario import Scenario

    buf = io.StringIO()
    ctx = DemoContext(Runtime(tmp_path / "data"), Scenario(), Console(file=buf, width=200), {})
    demo.traces_step(ctx)
    got = ctx.results["apm"]
    assert "P99 latency over 2 seconds" in got["alerts"]
    assert [r[0] for r in got["why_slow"][:2]] == ["payment", "inventory"]
    assert "checkout waits longest on payment" in buf.getvalue()
