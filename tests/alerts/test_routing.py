"""Routing: the issue's YAML verbatim, match criteria, stop, throttling, escalation, and the
``mantissa alerts`` commands (list/show/ack/close/deliver/test-route) with --format json."""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path

import pytest

from mantissa.alerts.model import Alert
from mantissa.alerts.routing import Router
from mantissa.alerts.service import AlertService
from mantissa.config import load_config
from tests.alerts import stubs
from tests.alerts.conftest import T0, candidate

ISSUE_YAML = """\
destinations:
  soc_webhook: {type: webhook, url: "http://127.0.0.1:9999/hook", secret: "${env:WEBHOOK_SECRET}"}
  oncall:      {type: pagerduty, routing_key: "${env:PD_ROUTING_KEY}"}
routes:
  - {match: {severity: [high, critical]}, to: [oncall, soc_webhook], suppress_secs: 900}
  - {match: {tags: ["attack.credential_access"]}, to: [soc_webhook]}
"""


def _alert(**kw) -> Alert:
    return Alert(
        id=kw.pop("id", "al_r1"), created_at=T0, updated_at=T0, **candidate(**kw).model_dump()
    )


def test_issue_example_parses_without_resolving_secrets(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("WEBHOOK_SECRET", raising=False)
    monkeypatch.delenv("PD_ROUTING_KEY", raising=False)
    p = tmp_path / "mantissa.yaml"
    p.write_text(ISSUE_YAML)
    r = Router.from_config(load_config(p, tmp_path))
    assert {k: d.type for k, d in r.destinations.items()} == {
        "soc_webhook": "webhook",
        "oncall": "pagerduty",
    }
    hi = r.decide(_alert(severity="critical", tags=[]))
    assert [d.matched for d in hi] == [True, False]
    cred = r.decide(_alert(severity="medium", tags=["attack.credential_access", "attack.t1110"]))
    assert [d.matched for d in cred] == [False, True]
    assert r.routes[0].suppress_secs == 900


def test_match_criteria_globs_and_stop(make_runtime) -> None:
    rt = make_runtime(
        {
            "destinations": {"a": {"type": "file"}, "b": {"type": "file", "path": "b.jsonl"}},
            "routes": [
                {
                    "name": "k8s",
                    "match": {
                        "rule_id": "k8s_*",
                        "source": "kubernetes",
                        "min_severity": "medium",
                        "entities": {"user": "system:serviceaccount:*"},
                    },
                    "to": "a",
                    "stop": True,
                },
                {"name": "all", "match": {"tags": ["attack.t1078*"]}, "to": ["b"]},
            ],
        }
    )
    r = AlertService(rt).router
    sa = _alert(
        rule_id="k8s_exec",
        source="kubernetes",
        severity="high",
        tags=["attack.t1078"],
        entities={"user": "system:serviceaccount:kube-system:admin"},
    )
    d = r.decide(sa)
    assert d[0].matched and d[0].stopped_here and not d[1].matched
    other = r.decide(
        _alert(rule_id="k8s_exec", source="kubernetes", severity="low", tags=["attack.t1078.004"])
    )
    assert not other[0].matched and other[1].matched
    failed = {c["criterion"]: c["ok"] for c in other[0].checks}
    assert failed == {
        "min_severity": False,
        "rule_id": True,
        "source": True,
        "entities.user": False,
    }


def test_route_throttle_suppresses_a_repeat_of_the_same_dedup_key(make_runtime) -> None:
    svc = AlertService(
        make_runtime(
            {
                "destinations": {"f": {"type": "file"}},
                "routes": [{"name": "page", "match": {}, "to": ["f"], "suppress_secs": 900}],
            }
        )
    )
    [a] = svc.raise_alerts([candidate()])
    svc.set_status(a.id, "closed", "ann")
    later = T0 + dt.timedelta(minutes=1)
    [b] = svc.raise_alerts(
        [candidate(first_seen=later, last_seen=later, evidence_event_ids=["ev-2"])]
    )
    assert b.id != a.id and b.deliveries == []
    assert b.history[-1]["suppressed_routes"] == ["page"]
    tr = svc.test_route(b.id)
    assert tr["routes"][0]["suppressed"] and tr["destinations"] == []
    # another dedup key is not throttled
    [c] = svc.raise_alerts([candidate(dedup_key="other")])
    assert [d["status"] for d in c.deliveries] == ["delivered"]


@pytest.mark.slow
def test_escalation_fires_only_while_unacknowledged(make_runtime, stub) -> None:
    pd = stubs.PagerDutyStub()
    s = stub(pd)
    svc = AlertService(
        make_runtime(
            {
                "destinations": {
                    "chat": {"type": "file"},
                    "oncall": {
                        "type": "pagerduty",
                        "routing_key": stubs.PD_ROUTING_KEY,
                        "url": s.url + "/v2/enqueue",
                    },
                },
                "routes": [
                    {"match": {}, "to": ["chat"], "escalate": {"after_secs": 1, "to": ["oncall"]}}
                ],
                "alerts": {"delivery": {"flush_timeout_secs": 0}},
            }
        )
    )
    a, b = svc.raise_alerts([candidate(), candidate(dedup_key="second")])
    svc.set_status(b.id, "acknowledged", "ann", flush=False)
    time.sleep(1.1)
    res = svc.deliver(timeout_secs=3)
    assert res.delivered == 2 and res.skipped == 1  # escalation of a, ack of b to chat
    assert list(pd.incidents) == [a.id]
    esc = [d for d in svc.store.get(b.id).deliveries if d["kind"] == "escalate"]
    assert esc[0]["status"] == "skipped" and "acknowledged" in esc[0]["last_error"]


# -- the CLI ----------------------------------------------------------------------------------------
def _seed(data_dir: Path) -> list[str]:
    (data_dir / "mantissa.yaml").write_text(
        "alerts: {enrichment: {user_context: {enabled: false}}}\n"
        "destinations:\n  audit: {type: file}\n"
        "routes:\n  - {match: {severity: [high, critical]}, to: [audit]}\n"
    )
    from mantissa.runtime import Runtime

    svc = AlertService(Runtime(data_dir))
    alerts = svc.raise_alerts(
        [
            candidate(),
            candidate(
                rule_id="okta_mfa_reset",
                rule_title="Okta MFA factor reset",
                severity="medium",
                dedup_key="okta|bob",
                entities={"user": "bob"},
                source="okta",
                first_seen=T0 + dt.timedelta(hours=1),
                last_seen=T0 + dt.timedelta(hours=1),
            ),
        ]
    )
    svc.runtime.state.close()
    return [a.id for a in alerts]


def test_cli_alerts_commands(cli, data_dir: Path) -> None:
    hi, med = _seed(data_dir)
    r = cli("alerts", "list", "--format", "json")
    assert r.code == 0, r.err
    doc = r.json()
    assert doc["total"] == 2 and [a["id"] for a in doc["alerts"]] == [med, hi]
    r = cli("alerts", "list", "--severity", "high", "--format", "json")
    assert [a["id"] for a in r.json()["alerts"]] == [hi]
    r = cli(
        "alerts", "list", "--since", "2026-03-01T12:30:00Z", "--rule", "okta_*", "--format", "json"
    )
    assert [a["id"] for a in r.json()["alerts"]] == [med]
    r = cli("alerts", "show", hi, "--format", "json")
    shown = r.json()
    assert shown["id"] == hi and shown["deliveries"][0]["status"] == "delivered"
    assert shown["enrichment"]["observables"]["ips"] == ["203.0.113.10"]
    r = cli("alerts", "test-route", med, "--format", "json")
    tr = r.json()
    assert tr["routes"][0]["matched"] is False and tr["destinations"] == []
    r = cli("alerts", "ack", hi, "--as", "ann", "--reason", "on it", "--format", "json")
    assert r.json()["status"] == "acknowledged" and r.json()["history"][-1]["actor"] == "ann"
    r = cli("alerts", "close", med, "--false-positive", "--reason", "test user", "--format", "json")
    assert r.json()["status"] == "false_positive"
    r = cli("alerts", "deliver", "--format", "json")
    assert r.code == 0 and r.json()["pending"] == 0
    lines = (data_dir / "alerts" / "deliveries.jsonl").read_text().splitlines()
    kinds = [json.loads(x)["kind"] for x in lines]
    assert kinds == ["trigger", "acknowledge"]
    r = cli("alerts", "show", "al_nope", "--format", "json")
    assert r.code == 2 and "not found" in r.err and r.out == ""
    r = cli("alerts", "list", "--since", "yesterday-ish")
    assert r.code == 2 and "cannot read time" in r.err
    r = cli("alerts", "destinations", "--format", "json")
    assert r.json()["destinations"][0] == {
        "id": "audit",
        "type": "file",
        "external": False,
        "max_attempts": 8,
        "guarantee": r.json()["destinations"][0]["guarantee"],
    }
    assert set(r.json()["types"]) >= {
        "slack",
        "pagerduty",
        "email",
        "teams",
        "jira",
        "servicenow",
        "webhook",
        "file",
    }
    r = cli("alerts", "test-destination", "audit", "--format", "json")
    assert r.code == 0 and r.json()["ok"] is True
