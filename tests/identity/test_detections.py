"""Identity detections over the demo lake, through the real alert path (AlertService)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def run(demo_runtime: Any) -> Any:
    from mantissa.identity.run import IdentityRun

    end = dt.datetime.now(dt.UTC)
    return IdentityRun(demo_runtime).run(end - dt.timedelta(days=3), end)


def _by_rule(run: Any) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for a in run.alerts:
        out.setdefault(a.rule_id, []).append(a)
    return out


def test_demo_attacks_caught(run: Any) -> None:
    assert not run.errors
    rules = _by_rule(run)
    for rid in (
        "identity.password_spray",  # Okta and Entra ID sprays
        "identity.mfa_fatigue",  # niaj pushed until accepted
        "identity.brute_force",  # CloudTrail console brute force
        "identity.self_grant",
        "identity.privilege_escalation_chain",
        "identity.mfa_bypass",
        "identity.kill_chain",
    ):
        assert rid in rules, (rid, sorted(rules))
    sprays = {a.entities["ip"] for a in rules["identity.password_spray"]}
    assert {"45.137.21.9", "193.32.162.44"} <= sprays
    fatigue = {a.entities["user"]: a for a in rules["identity.mfa_fatigue"]}
    niaj = fatigue["niaj@example.com"]
    assert str(niaj.severity) == "critical" and "ACCEPTED" in niaj.description
    assert niaj.entities["provider"] == "okta" and niaj.entities["session_id"]


def test_alerts_are_explained_with_evidence(run: Any) -> None:
    for a in run.alerts:
        assert a.description and any(ch.isdigit() for ch in a.description), a.rule_id
        assert a.evidence_rows, a.rule_id
        if a.rule_id != "identity.kill_chain":
            assert a.evidence_event_ids, a.rule_id
            assert "baseline" in a.evidence_rows[0] and "observed" in a.evidence_rows[0]
            assert any(t.startswith("identity.stage.") for t in a.tags)
    spray = next(a for a in run.alerts if a.rule_id == "identity.password_spray")
    assert "accounts failed to sign in from" in spray.description
    assert "0 of them signed in from this IP before" in spray.description


def test_alerts_stored_and_deduplicated(demo_runtime: Any, run: Any) -> None:
    from mantissa.alerts.store import AlertStore
    from mantissa.identity.run import IdentityRun

    store = AlertStore(demo_runtime.state)
    _, total = store.list(rule_id="identity.mfa_fatigue", limit=100)
    assert total >= 1
    end = dt.datetime.now(dt.UTC)
    again = IdentityRun(demo_runtime).run(end - dt.timedelta(days=3), end)
    _, total2 = store.list(rule_id="identity.mfa_fatigue", limit=100)
    assert total2 == total  # the same finding updates the open alert
    assert again.alerts


def test_risk_and_resolution(demo_runtime: Any, run: Any) -> None:
    from mantissa.identity import risk
    from mantissa.identity.config import load
    from mantissa.identity.correlation import Resolver

    top = risk.top(demo_runtime, 5)
    assert top and 0 < top[0]["score"] <= 100
    assert top[0]["reasons"] and top[0]["reasons"][0]["why"]
    res = Resolver(demo_runtime, load(demo_runtime))
    # the AWS IAM user "mallory" is the same person as mallory@example.com (inferred)
    assert res.resolve("mallory") == ("mallory@example.com", "inferred")
    assert res.resolve("arn:aws:iam::123456789012:user/mallory")[0] == "mallory@example.com"


def test_cli_json(demo_runtime: Any, run: Any, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from mantissa.cli.main import run as cli_run

    base = ["--data-dir", str(demo_runtime.data_dir)]
    for args in (
        ["identity", "risky", "--top", "3", "--format", "json"],
        ["identity", "show", "niaj@example.com", "--format", "json"],
        ["identity", "detections", "--format", "json"],
        ["identity", "run", "--since", "1h", "--dry-run", "--format", "json"],
    ):
        code = cli_run([*base, *args])
        out = capsys.readouterr().out
        assert code in (0, None), (args, out)
        doc = json.loads(out)
        assert isinstance(doc, dict)
    code = cli_run([*base, "identity", "show", "nobody@nowhere", "--format", "json"])
    capsys.readouterr()
    assert code not in (0, None)


def test_scheduler_tick_respects_lease(demo_runtime: Any, run: Any) -> None:
    from mantissa.identity.serve import LEASE, tick

    st = demo_runtime.state
    before = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=3)).isoformat()
    st.put("identity", "watermark", before)
    assert st.acquire_lease(LEASE, "other-process", 60)
    assert tick(demo_runtime, owner="me") == 0
    assert st.get("identity", "watermark") == before
    st.release_lease(LEASE, "other-process")
    tick(demo_runtime, owner="me")
    assert st.get("identity", "watermark") > before


def test_demo_step_explains(demo_runtime: Any, run: Any) -> None:
    import io

    from rich.console import Console

    from mantissa.demo import DemoContext, steps
    from mantissa.demo.scenario import Scenario

    step = next(s for s in steps() if s.name == "Identity threats")
    buf = io.StringIO()
    ctx = DemoContext(demo_runtime, Scenario(seed=7, days=2), Console(file=buf, width=200), {})
    step.fn(ctx)
    out = buf.getvalue()
    assert "MFA fatigue" in out and "ACCEPTED" in out and "riskiest identities" in out
    assert "identity.mfa_fatigue" in ctx.results["identity"]["rules"]
