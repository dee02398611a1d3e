"""Every destination over real HTTP on 127.0.0.1 against stubs that enforce the vendor's
documented method, path, auth and body shape, through the real outbox (retries,
Retry-After, dead letters, idempotency)."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import pytest

from mantissa.alerts.destinations.base import Delivery
from mantissa.alerts.service import AlertService
from tests.alerts import stubs
from tests.alerts.conftest import candidate

# the lake is empty in these tests: skip the user-context query (tested in test_enrich)
NO_LAKE = {"enrichment": {"user_context": {"enabled": False}}}


def _service(make_runtime: Any, dest: dict[str, Any], **alerts_cfg: Any) -> AlertService:
    dest = {"backoff_base_secs": 0.05, "backoff_max_secs": 0.2, **dest}
    cfg = {
        "destinations": {"d": dest},
        "routes": [{"match": {"min_severity": "low"}, "to": ["d"]}],
        "alerts": {"delivery": {"flush_timeout_secs": 10}, **NO_LAKE, **alerts_cfg},
    }
    return AlertService(make_runtime(cfg))


def _deliveries(svc: AlertService, alert_id: str) -> list[dict[str, Any]]:
    return svc.store.get(alert_id).deliveries


# -- Slack ---------------------------------------------------------------------------------
def test_slack_incoming_webhook_honours_retry_after(make_runtime, stub) -> None:
    s = stub(stubs.slack_webhook)
    s.queued_failures.append(stubs.reply_text(429, "rate_limited", {"Retry-After": "1"}))
    svc = _service(make_runtime, {"type": "slack", "webhook_url": s.url + stubs.SLACK_HOOK_PATH})
    [alert] = svc.raise_alerts([candidate()])
    d = alert.deliveries[0]
    assert d["status"] == "delivered" and d["attempts"] == 2
    assert len(s.journal) == 2
    # the retry waited for Retry-After, not for the 0.05 s backoff
    assert s.request_times[1] - s.request_times[0] >= 0.9
    body = s.journal[1].json()
    assert body["blocks"][0]["type"] == "header" and "AWS root" in body["text"]


def test_slack_chat_post_message_threads_updates(make_runtime, stub) -> None:
    s = stub(stubs.slack_api)
    svc = _service(
        make_runtime,
        {
            "type": "slack",
            "token": "${env:T_SLACK_TOKEN}",
            "channel": "C0SECOPS",
            "api_url": s.url + "/api",
        },
    )
    import os

    os.environ["T_SLACK_TOKEN"] = stubs.SLACK_TOKEN
    try:
        [alert] = svc.raise_alerts([candidate()])
        ts = alert.deliveries[0]["response"]["ts"]
        svc.set_status(alert.id, "closed", "tester", "benign")
    finally:
        del os.environ["T_SLACK_TOKEN"]
    kinds = [d["kind"] for d in _deliveries(svc, alert.id) if d["status"] == "delivered"]
    assert kinds == ["trigger", "resolve"]
    assert s.journal[1].json()["thread_ts"] == ts
    assert "[RESOLVED]" in s.journal[1].json()["text"]


def test_slack_bad_token_is_dead_at_once_and_never_logged(make_runtime, stub, caplog) -> None:
    s = stub(stubs.slack_api)
    import os

    os.environ["T_SLACK_BAD"] = "xoxb-wrong-secret-value"
    try:
        svc = _service(
            make_runtime,
            {
                "type": "slack",
                "token": "${env:T_SLACK_BAD}",
                "channel": "C0SECOPS",
                "api_url": s.url + "/api",
            },
        )
        with caplog.at_level(logging.DEBUG):
            [alert] = svc.raise_alerts([candidate()])
    finally:
        del os.environ["T_SLACK_BAD"]
    d = alert.deliveries[0]
    assert d["status"] == "dead" and d["attempts"] == 1 and "invalid_auth" in d["last_error"]
    assert "xoxb-wrong-secret-value" not in caplog.text + str(alert.to_dict())


def test_slack_webhook_url_secret_stays_out_of_errors(make_runtime, stub) -> None:
    s = stub(stubs.slack_webhook)
    svc = _service(
        make_runtime,
        {"type": "slack", "webhook_url": s.url + "/services/T0/B0/S3CR3TPATH", "max_attempts": 1},
    )
    [alert] = svc.raise_alerts([candidate()])
    d = alert.deliveries[0]
    assert d["status"] == "dead" and "404" in d["last_error"]
    assert "S3CR3TPATH" not in d["last_error"]


# -- PagerDuty -----------------------------------------------------------------------------------
def test_pagerduty_trigger_retry_resolve_dedups(make_runtime, stub) -> None:
    pd = stubs.PagerDutyStub()
    s = stub(pd)
    s.queued_failures.append(stubs.reply_json(500, {"status": "error"}))
    s.queued_failures.append(stubs.reply_json(429, {"status": "throttled"}))
    svc = _service(
        make_runtime,
        {"type": "pagerduty", "routing_key": stubs.PD_ROUTING_KEY, "url": s.url + "/v2/enqueue"},
    )
    [alert] = svc.raise_alerts([candidate(severity="critical")])
    d = alert.deliveries[0]
    assert d["status"] == "delivered" and d["attempts"] == 3
    assert d["response"]["dedup_key"] == alert.id
    ev = pd.events[0]
    assert ev["payload"]["severity"] == "critical" and ev["dedup_key"] == alert.id
    # a re-sent trigger (as after a crash) folds into the same incident
    svc.router.destinations["d"].send(
        Delivery(
            alert=svc.store.get(alert.id), kind="trigger", idempotency_key="x", destination_id="d"
        )
    )
    assert len(pd.incidents) == 1 and pd.incidents[alert.id]["opened"] == 1
    svc.set_status(alert.id, "acknowledged", "ann")
    assert pd.incidents[alert.id]["status"] == "acknowledged"
    svc.set_status(alert.id, "closed", "ann")
    assert pd.incidents[alert.id]["status"] == "resolved"
    assert [e["event_action"] for e in pd.events] == [
        "trigger",
        "trigger",
        "acknowledge",
        "resolve",
    ]


def test_pagerduty_invalid_key_is_permanent(make_runtime, stub) -> None:
    s = stub(stubs.PagerDutyStub())
    svc = _service(
        make_runtime, {"type": "pagerduty", "routing_key": "wrong", "url": s.url + "/v2/enqueue"}
    )
    [alert] = svc.raise_alerts([candidate()])
    d = alert.deliveries[0]
    assert d["status"] == "dead" and d["attempts"] == 1 and "400" in d["last_error"]
    assert alert.history[-1]["action"] == "delivery_dead"


# -- Teams -------------------------------------------------------------------------------------
def test_teams_workflow_adaptive_card(make_runtime, stub) -> None:
    s = stub(stubs.teams)
    url = (
        f"{s.url}{stubs.TEAMS_PATH}?api-version=2016-06-01&sp=%2Ftriggers%2Fmanual%2Frun"
        f"&sv=1.0&sig={stubs.TEAMS_SIG}"
    )
    s.queued_failures.append(stubs.reply_text(503, "busy", {"Retry-After": "0"}))
    svc = _service(
        make_runtime,
        {"type": "teams", "webhook_url": url},
        console_url="https://mantissa.example/alerts/{id}",
    )
    [alert] = svc.raise_alerts([candidate(description="Root signed in without MFA")])
    assert alert.deliveries[0]["status"] == "delivered"
    card = s.journal[-1].json()["attachments"][0]["content"]
    assert card["actions"][0]["url"] == f"https://mantissa.example/alerts/{alert.id}"
    facts = {f["title"]: f["value"] for f in card["body"][2]["facts"]}
    assert facts["Severity"] == "high" and facts["Alert id"] == alert.id


def test_teams_bad_signature_is_dead(make_runtime, stub) -> None:
    s = stub(stubs.teams)
    url = f"{s.url}{stubs.TEAMS_PATH}?api-version=2016-06-01&sig=forged"
    svc = _service(make_runtime, {"type": "teams", "webhook_url": url})
    [alert] = svc.raise_alerts([candidate()])
    assert (
        alert.deliveries[0]["status"] == "dead"
        and "forged" not in alert.deliveries[0]["last_error"]
    )


# -- Jira --------------------------------------------------------------------------------------
def _jira(s: Any, **kw: Any) -> dict[str, Any]:
    return {
        "type": "jira",
        "base_url": s.url,
        "email": stubs.JIRA_EMAIL,
        "api_token": stubs.JIRA_TOKEN,
        "project_key": "SEC",
        "priority_map": {"high": "High"},
        **kw,
    }


def test_jira_no_duplicate_when_the_create_response_is_lost(make_runtime, stub) -> None:
    jira = stubs.JiraStub()
    jira.lose_next_create_response = True
    s = stub(jira)
    svc = _service(make_runtime, _jira(s))
    [alert] = svc.raise_alerts([candidate()])
    d = alert.deliveries[0]
    assert d["status"] == "delivered" and d["attempts"] == 2
    assert len(jira.issues) == 1 and d["response"] == {"key": "SEC-1", "created": False}
    fields = jira.issues["SEC-1"]["fields"]
    assert f"mantissa-{alert.id}" in fields["labels"] and fields["priority"] == {"name": "High"}
    assert fields["description"]["type"] == "doc"
    svc.set_status(alert.id, "closed", "ann", "done")
    assert jira.issues["SEC-1"]["status"] == "Done" and len(jira.comments["SEC-1"]) == 1
    assert len(jira.issues) == 1


def test_jira_wrong_token_is_permanent(make_runtime, stub) -> None:
    s = stub(stubs.JiraStub())
    svc = _service(make_runtime, _jira(s, api_token="nope"))
    [alert] = svc.raise_alerts([candidate()])
    assert alert.deliveries[0]["status"] == "dead" and "401" in alert.deliveries[0]["last_error"]


# -- ServiceNow ---------------------------------------------------------------------------------
def test_servicenow_correlation_id_create_update_resolve(make_runtime, stub) -> None:
    sn = stubs.ServiceNowStub()
    sn.lose_next_create_response = True
    s = stub(sn)
    svc = _service(
        make_runtime,
        {
            "type": "servicenow",
            "instance_url": s.url,
            "username": stubs.SNOW_USER,
            "password": stubs.SNOW_PASSWORD,
            "assignment_group": "SecOps",
        },
    )
    [alert] = svc.raise_alerts([candidate(severity="critical")])
    assert alert.deliveries[0]["status"] == "delivered"
    assert len(sn.records) == 1
    [rec] = sn.records.values()
    assert (
        rec["correlation_id"] == alert.id
        and rec["urgency"] == "1"
        and rec["assignment_group"] == "SecOps"
    )
    svc.set_status(alert.id, "acknowledged", "ann")
    svc.set_status(alert.id, "false_positive", "ann", "scanner")
    assert rec["state"] == "6" and rec["close_code"] and "false_positive" in rec["close_notes"]
    assert len(sn.records) == 1


# -- webhook --------------------------------------------------------------------------------------
def test_webhook_signature_headers_and_retry(make_runtime, stub, monkeypatch) -> None:
    recv = stubs.WebhookReceiver()
    s = stub(recv)
    s.queued_failures.append(stubs.reply_text(502, "bad gateway"))
    monkeypatch.setenv("T_WEBHOOK_SECRET", stubs.WEBHOOK_SECRET)
    monkeypatch.setenv("T_TENANT", "acme")
    svc = _service(
        make_runtime,
        {
            "type": "webhook",
            "url": s.url + "/hook",
            "secret": "${env:T_WEBHOOK_SECRET}",
            "headers": {"X-Tenant": "${env:T_TENANT}"},
        },
    )
    [alert] = svc.raise_alerts([candidate()])
    assert alert.deliveries[0]["status"] == "delivered" and alert.deliveries[0]["attempts"] == 2
    [(key, doc)] = recv.accepted.items()
    assert key == f"{alert.id}:d:trigger" and doc["alert"]["id"] == alert.id
    req = s.journal[-1]
    assert req.headers["x-tenant"] == "acme"
    assert req.headers["x-mantissa-signature"].startswith("sha256=")
    assert stubs.WEBHOOK_SECRET not in str(req.headers)


def test_webhook_wrong_secret_is_rejected_by_the_receiver(make_runtime, stub) -> None:
    s = stub(stubs.WebhookReceiver())
    svc = _service(make_runtime, {"type": "webhook", "url": s.url + "/hook", "secret": "other"})
    [alert] = svc.raise_alerts([candidate()])
    assert alert.deliveries[0]["status"] == "dead" and "401" in alert.deliveries[0]["last_error"]


def test_down_destination_stays_queued_then_delivers(make_runtime, stub) -> None:
    recv = stubs.WebhookReceiver()
    s = stub(recv)
    port = s.server.server_address[1]
    s.close()  # down: connection refused
    svc = _service(
        make_runtime,
        {
            "type": "webhook",
            "url": f"http://127.0.0.1:{port}/hook",
            "secret": stubs.WEBHOOK_SECRET,
            "backoff_base_secs": 0.01,
        },
        delivery={"flush_timeout_secs": 0.3},
    )
    [alert] = svc.raise_alerts([candidate()])
    d = alert.deliveries[0]
    assert d["status"] == "pending" and d["attempts"] >= 1 and "cannot reach" in d["last_error"]
    # back up on the same port
    from tests.alerts.stubs import StubServer

    up = None
    for _ in range(50):
        try:
            up = StubServer.on_port(recv, port)
            break
        except OSError:
            time.sleep(0.1)
    assert up is not None
    try:
        res = svc.deliver(timeout_secs=5)
        assert res.delivered == 1 and res.pending == 0
        assert list(recv.accepted) == [f"{alert.id}:d:trigger"]
    finally:
        up.close()


def test_unknown_destination_in_route_is_a_config_error(make_runtime) -> None:
    from mantissa.errors import ConfigError

    rt = make_runtime(
        {
            "destinations": {"a": {"type": "file"}},
            "routes": [{"match": {"severity": "high"}, "to": ["a", "nope"]}],
        }
    )
    with pytest.raises(
        ConfigError, match=r"mantissa.yaml:\d+: routes.0.to: unknown destination 'nope'"
    ):
        AlertService(rt)


def test_bad_destination_settings_name_file_and_line(make_runtime) -> None:
    from mantissa.errors import ConfigError

    rt = make_runtime({"destinations": {"oncall": {"type": "pagerduty", "routing_kye": "x"}}})
    with pytest.raises(ConfigError, match=r"mantissa.yaml:\d+: destinations.oncall"):
        AlertService(rt)
    rt = make_runtime({"destinations": {"x": {"type": "carrier_pigeon"}}})
    with pytest.raises(ConfigError, match="unknown destination type 'carrier_pigeon'"):
        AlertService(rt)


def test_load_destination_and_message_alert_for_soar(make_runtime, stub) -> None:
    from mantissa.alerts.destinations.base import message_alert
    from mantissa.alerts.routing import load_destination
    from mantissa.errors import ConfigError

    recv = stubs.WebhookReceiver()
    s = stub(recv)
    rt = make_runtime(
        {
            "destinations": {
                "soc": {"type": "webhook", "url": s.url + "/hook", "secret": stubs.WEBHOOK_SECRET}
            }
        }
    )
    dest = load_destination(rt, "soc")
    msg = message_alert(
        "Playbook disabled user bob",
        "Okta user bob was suspended",
        "medium",
        entities={"user": "bob"},
    )
    dest.send(
        Delivery(alert=msg, kind="trigger", idempotency_key="exec-1:step-2", destination_id="soc")
    )
    assert recv.accepted["exec-1:step-2"]["alert"]["rule_title"] == "Playbook disabled user bob"
    with pytest.raises(ConfigError, match="unknown destination 'nope'"):
        load_destination(rt, "nope")


def test_secrets_reach_no_log_record_or_database_file(
    make_runtime, stub, monkeypatch, caplog
) -> None:
    pd = stubs.PagerDutyStub()
    recv = stubs.WebhookReceiver()
    s_pd, s_hook = stub(pd), stub(recv)
    s_pd.queued_failures.append(stubs.reply_json(500, {"status": "error"}))
    monkeypatch.setenv("T_PD_KEY", stubs.PD_ROUTING_KEY)
    monkeypatch.setenv("T_HOOK_SECRET", stubs.WEBHOOK_SECRET)
    rt = make_runtime(
        {
            "destinations": {
                "pd": {
                    "type": "pagerduty",
                    "routing_key": "${env:T_PD_KEY}",
                    "url": s_pd.url + "/v2/enqueue",
                    "backoff_base_secs": 0.05,
                },
                "hook": {
                    "type": "webhook",
                    "url": s_hook.url + "/hook",
                    "secret": "${env:T_HOOK_SECRET}",
                },
            },
            "routes": [{"match": {}, "to": ["pd", "hook"]}],
        }
    )
    svc = AlertService(rt)
    with caplog.at_level(logging.DEBUG):
        [alert] = svc.raise_alerts([candidate()])
        svc.set_status(alert.id, "closed", "ann")
    assert {d["status"] for d in svc.store.get(alert.id).deliveries} == {"delivered"}
    assert pd.incidents[alert.id]["status"] == "resolved" and recv.accepted
    rt.state.close()
    blobs = b"".join(p.read_bytes() for p in rt.data_dir.glob("state.db*"))
    assert blobs, "no database file found"
    for secret in (stubs.PD_ROUTING_KEY, stubs.WEBHOOK_SECRET):
        assert secret.encode() not in blobs
        assert secret not in caplog.text
        assert secret not in json.dumps(svc.store.get(alert.id).to_dict())
