"""Executions against stub vendors on 127.0.0.1: approvals, failures, retries, timeouts,
dry-run, cancel and the audit trail, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from mantissa.soar.approvals import ApprovalConflict, decide, list_approvals, sweep
from mantissa.soar.executor import Executor
from mantissa.soar.store import PlaybookStore
from tests.alerts.stubs import StubServer
from tests.soar.conftest import playbook
from tests.soar.stubs import OKTA_TOKEN, HookStub

SHIPPED = Path(__file__).resolve().parents[2] / "src/mantissa/rules/playbooks"
ALERT = {
    "id": "al_1",
    "rule_id": "okta_mfa_fatigue",
    "rule_title": "MFA fatigue",
    "severity": "high",
    "entities": {"user": "bob@example.com"},
}


def _effects(okta: Any) -> list[tuple[str, str]]:
    return okta[0].effects


def test_okta_playbook_approve(okta_runtime: Any, okta: Any, cli: Any) -> None:
    rt = okta_runtime
    PlaybookStore(rt).import_path(SHIPPED / "compromised-okta-user.yaml")
    r = cli(
        "playbooks",
        "run",
        "compromised-okta-user",
        "--input",
        json.dumps(ALERT),
        "--format",
        "json",
        data=rt.data_dir,
    )
    assert r.code == 0, r.err
    out = r.json()
    assert set(out) == {"execution_id", "status"} and out["status"] == "waiting_approval"
    assert _effects(okta) == [("revoke_sessions", "00ub0b")]
    r = cli("approvals", "list", "--format", "json", data=rt.data_dir)
    [ap] = r.json()
    assert {"id", "execution_id", "step", "requested_at", "expires_at"} <= set(ap)
    assert ap["step"] == "disable" and ap["parameters"]["user_id"] == "bob@example.com"
    r = cli("approvals", "approve", ap["id"], "--as", "alice", "--format", "json", data=rt.data_dir)
    assert r.code == 0, r.err
    assert r.json()["execution_status"] == "succeeded"
    assert _effects(okta) == [("revoke_sessions", "00ub0b"), ("suspend", "00ub0b")]
    r = cli(
        "executions", "show", out["execution_id"], "--format", "json", "--audit", data=rt.data_dir
    )
    ex = r.json()
    assert ex["id"] == out["execution_id"] and ex["status"] == "succeeded"
    assert [(s["id"], s["action"], s["status"]) for s in ex["steps"]] == [
        ("revoke", "revoke_sessions", "succeeded"),
        ("disable", "disable_user", "succeeded"),
    ]
    assert all({"id", "action", "status", "output", "error"} <= set(s) for s in ex["steps"])
    calls = [a for a in ex["audit"] if a["kind"] == "call"]
    assert {"method", "host", "path", "status", "latency_ms"} <= set(calls[0])
    decisions = [a for a in ex["audit"] if a["kind"] == "decision"]
    assert decisions[0]["actor"] == "alice" and decisions[0]["via"] == "cli"
    # second decision refused
    r = cli("approvals", "deny", ap["id"], "--as", "eve", data=rt.data_dir)
    assert r.code == 2 and "already approved by alice" in " ".join(r.err.split())
    r = cli("executions", "list", "--format", "json", data=rt.data_dir)
    assert r.json()[0]["id"] == out["execution_id"]


def _steps_pb(rt: Any, steps: list[dict[str, Any]], **kw: Any) -> str:
    return PlaybookStore(rt).import_text(playbook(steps, **kw)).id


def _okta_step(sid: str, action: str, **kw: Any) -> dict[str, Any]:
    return {
        "id": sid,
        "name": sid,
        "action_type": action,
        "parameters": {"user_id": "{{ input.user }}", "connection": "okta_main"},
        **kw,
    }


def test_deny_and_on_deny_skip(okta_runtime: Any, okta: Any) -> None:
    rt = okta_runtime
    pid = _steps_pb(
        rt,
        [
            _okta_step("d", "disable_user", requires_approval=True),
            _okta_step("r", "revoke_sessions"),
        ],
    )
    ex = Executor(rt)
    eid = ex.start(pid, input={"user": "bob@example.com"})
    assert ex.run(eid) == "waiting_approval"
    [ap] = list_approvals(rt)
    out = decide(rt, ap["id"], "deny", "bob", reason="false positive")
    assert out["execution_status"] == "denied"
    doc = ex.get(eid)
    assert [s["status"] for s in doc["steps"]] == ["denied", "skipped"]
    assert _effects(okta) == []
    pid2 = _steps_pb(
        rt,
        [
            _okta_step("d", "disable_user", requires_approval=True, on_deny="skip"),
            _okta_step("r", "revoke_sessions"),
        ],
        name="skip on deny",
    )
    eid2 = ex.start(pid2, input={"user": "bob@example.com"})
    assert ex.run(eid2) == "waiting_approval"
    [ap2] = list_approvals(rt)
    assert decide(rt, ap2["id"], "deny", "bob")["execution_status"] == "succeeded"
    assert [s["status"] for s in ex.get(eid2)["steps"]] == ["skipped", "succeeded"]
    assert _effects(okta) == [("revoke_sessions", "00ub0b")]


def test_expiry_is_absolute_and_refuses_late_decisions(okta_runtime: Any, okta: Any) -> None:
    rt = okta_runtime
    pid = _steps_pb(
        rt, [_okta_step("d", "disable_user", requires_approval=True, approval_timeout_seconds=1)]
    )
    ex = Executor(rt)
    eid = ex.start(pid, input={"user": "bob@example.com"})
    assert ex.run(eid) == "waiting_approval"
    [ap] = list_approvals(rt)
    time.sleep(1.05)
    # a fresh process (restart) applies the expiry: nothing runs in between
    assert sweep(rt) == [ap["id"]]
    assert ex.get(eid)["status"] == "expired"
    with pytest.raises(ApprovalConflict) as exc:
        decide(rt, ap["id"], "approve", "alice")
    assert exc.value.http_status == 409
    assert _effects(okta) == []


def test_late_approval_refused_before_sweep(okta_runtime: Any) -> None:
    rt = okta_runtime
    pid = _steps_pb(
        rt, [_okta_step("d", "disable_user", requires_approval=True, approval_timeout_seconds=1)]
    )
    ex = Executor(rt)
    eid = ex.start(pid, input={"user": "bob@example.com"})
    ex.run(eid)
    aid = ex.get(eid)["approvals"][0]["id"]
    time.sleep(1.05)
    with pytest.raises(ApprovalConflict, match="expired"):
        decide(rt, aid, "approve", "alice")


def test_auto_approve_after_timeout(okta_runtime: Any, okta: Any) -> None:
    rt = okta_runtime
    pid = _steps_pb(
        rt,
        [
            _okta_step(
                "d",
                "disable_user",
                requires_approval=True,
                approval_timeout_seconds=1,
                auto_approve_after_timeout=True,
            )
        ],
    )
    ex = Executor(rt)
    eid = ex.start(pid, input={"user": "bob@example.com"})
    ex.run(eid)
    time.sleep(1.05)
    sweep(rt)
    assert ex.get(eid)["status"] == "succeeded"
    assert _effects(okta) == [("suspend", "00ub0b")]


def test_failure_stops_keeps_earlier_results(okta_runtime: Any, okta: Any) -> None:
    rt = okta_runtime
    okta[1].queued_failures.extend([(500, {}, b'{"errorCode":"E0000009"}')] * 5)
    pid = _steps_pb(
        rt,
        [
            {
                "id": "n",
                "name": "n",
                "action_type": "http_request",
                "parameters": {
                    "url": okta[1].url + "/x",
                    "method": "GET",
                    "headers": {"Authorization": f"SSWS {OKTA_TOKEN}"},
                },
                "on_failure": "continue",
            },
            _okta_step("r", "revoke_sessions"),
            _okta_step("d", "disable_user"),
        ],
        name="fails",
    )
    ex = Executor(rt)
    eid = ex.start(pid, input={"user": "bob@example.com"})
    assert ex.run(eid) == "failed"
    doc = ex.get(eid)
    assert [s["status"] for s in doc["steps"]] == ["failed", "failed", "skipped"]
    assert "step r" in doc["error"] and "answered 500" in doc["error"] and "fails" in doc["error"]
    assert OKTA_TOKEN not in json.dumps(doc)


def test_transport_retry_on_429_retry_after(okta_runtime: Any, okta: Any) -> None:
    rt = okta_runtime
    okta[1].queued_failures.append((429, {"Retry-After": "1"}, b"{}"))
    pid = _steps_pb(rt, [_okta_step("r", "revoke_sessions")])
    ex = Executor(rt)
    t0 = time.monotonic()
    eid = ex.start(pid, input={"user": "bob@example.com"})
    assert ex.run(eid) == "succeeded"
    assert time.monotonic() - t0 >= 1.0
    assert _effects(okta) == [("revoke_sessions", "00ub0b")]
    calls = [a for a in ex.audit_log(eid) if a["kind"] == "call"]
    assert [c["status"] for c in calls] == [429, 204]


def test_step_retries_with_backoff(okta_runtime: Any, okta: Any) -> None:
    rt = okta_runtime
    okta[1].queued_failures.extend([(500, {}, b"{}"), (502, {}, b"{}")])
    pid = _steps_pb(
        rt,
        [_okta_step("r", "revoke_sessions", retries={"max_attempts": 3, "backoff_seconds": 0.1})],
    )
    ex = Executor(rt)
    eid = ex.start(pid, input={"user": "bob@example.com"})
    assert ex.run(eid) == "succeeded"
    [s] = ex.get(eid)["steps"]
    assert s["attempt"] == 3
    assert _effects(okta) == [("revoke_sessions", "00ub0b")]


def test_slow_endpoint_times_out(okta_runtime: Any, okta: Any) -> None:
    rt = okta_runtime
    okta[1].delay_secs = 3
    pid = _steps_pb(rt, [_okta_step("r", "revoke_sessions", timeout_seconds=1)])
    ex = Executor(rt)
    t0 = time.monotonic()
    eid = ex.start(pid, input={"user": "bob@example.com"})
    assert ex.run(eid) == "failed"
    assert time.monotonic() - t0 < 2.5
    assert "timed out" in ex.get(eid)["error"] or "timeout" in ex.get(eid)["error"]


def test_endpoint_down_is_clear(okta_runtime: Any) -> None:
    rt = okta_runtime
    pid = _steps_pb(
        rt,
        [
            {
                "id": "h",
                "name": "h",
                "action_type": "http_request",
                "parameters": {"url": "http://127.0.0.1:9/down"},
            }
        ],
        name="down",
    )
    ex = Executor(rt)
    eid = ex.start(pid, input={})
    assert ex.run(eid) == "failed"
    assert "down" in ex.get(eid)["error"] and "step h" in ex.get(eid)["error"]
    assert "cannot reach 127.0.0.1" in ex.get(eid)["error"]


def test_dry_run_sends_nothing_masks_secrets(okta_runtime: Any, okta: Any) -> None:
    rt = okta_runtime
    pid = _steps_pb(rt, [_okta_step("r", "revoke_sessions"), _okta_step("d", "disable_user")])
    ex = Executor(rt)
    eid = ex.start(pid, input={"user": "bob@example.com"}, dry_run=True)
    assert ex.run(eid) == "succeeded"
    assert okta[1].journal == []
    doc = ex.get(eid)
    req = doc["steps"][0]["output"]["requests"][0]
    assert req["method"] == "DELETE" and req["url"].endswith(
        "/api/v1/users/bob@example.com/sessions"
    )
    assert req["headers"]["Authorization"] == "***"
    assert OKTA_TOKEN not in json.dumps(doc)


def test_condition_for_each_and_outputs(okta_runtime: Any, make_runtime: Any) -> None:
    rt = okta_runtime
    hook = HookStub()
    server = StubServer(hook)
    try:
        pid = _steps_pb(
            rt,
            [
                {
                    "id": "a",
                    "name": "a",
                    "action_type": "http_request",
                    "parameters": {"url": server.url + "/hook", "body": {"u": "{{ item }}"}},
                    "for_each": "input.users",
                },
                {
                    "id": "b",
                    "name": "b",
                    "action_type": "http_request",
                    "depends_on": ["a"],
                    "condition": "steps.a.output['items'] | length > 5",
                    "parameters": {"url": server.url + "/hook"},
                },
                {
                    "id": "c",
                    "name": "c",
                    "action_type": "http_request",
                    "depends_on": ["a"],
                    "condition": "steps.a.output['items'][1].status == 201",
                    "parameters": {
                        "url": server.url + "/hook",
                        "body": {
                            "n": "{{ steps.a.output['items'] | length }}",
                            "v": "{{ vars.greeting }} {{ input.users[0] }}",
                        },
                    },
                },
            ],
            vars={"greeting": "hi"},
        )
        ex = Executor(rt)
        eid = ex.start(pid, input={"users": ["ann", "bob"]})
        assert ex.run(eid) == "succeeded"
        st = {s["id"]: s["status"] for s in ex.get(eid)["steps"]}
        assert st == {"a": "succeeded", "b": "skipped", "c": "succeeded"}
        bodies = [json.loads(r.body) for r in server.journal]
        assert bodies == [{"u": "ann"}, {"u": "bob"}, {"n": 2, "v": "hi ann"}]
        keys = [r.headers["idempotency-key"] for r in server.journal]
        assert len(set(keys)) == 3
    finally:
        server.close()


def test_template_error_names_step(okta_runtime: Any) -> None:
    rt = okta_runtime
    pid = _steps_pb(
        rt,
        [
            {
                "id": "t",
                "name": "t",
                "action_type": "http_request",
                "parameters": {"url": "{{ input.missing.deeper }}"},
            }
        ],
        name="tpl",
    )
    ex = Executor(rt)
    eid = ex.start(pid, input={})
    assert ex.run(eid) == "failed"
    err = ex.get(eid)["error"]
    assert "tpl" in err and "step t" in err and "missing" in err


def test_cancel_while_waiting(okta_runtime: Any, cli: Any) -> None:
    rt = okta_runtime
    pid = _steps_pb(rt, [_okta_step("d", "disable_user", requires_approval=True)])
    ex = Executor(rt)
    eid = ex.start(pid, input={"user": "bob@example.com"})
    ex.run(eid)
    r = cli("executions", "cancel", eid, "--format", "json", data=rt.data_dir)
    assert r.json() == {"execution_id": eid, "status": "cancelled"}
    assert list_approvals(rt) == []


def test_graph_and_google(
    make_runtime: Any, monkeypatch: pytest.MonkeyPatch, state_url: str
) -> None:
    from tests.soar.stubs import GOOGLE_TOKEN, GoogleStub, GraphStub

    monkeypatch.setenv("GRAPH_SECRET", "cs-SECRET")
    monkeypatch.setenv("GOOGLE_TOKEN", GOOGLE_TOKEN)
    g, gs = GraphStub(), GoogleStub()
    s1, s2 = StubServer(g), StubServer(gs)
    try:
        rt = make_runtime(
            {
                "connections": {
                    "entra": {
                        "type": "entra_id",
                        "base_url": s1.url,
                        "tenant_id": "t1",
                        "client_id": "c1",
                        "client_secret": "${env:GRAPH_SECRET}",
                        "token_url": s1.url + "/t1/oauth2/v2.0/token",
                    },
                    "gws": {"type": "google", "base_url": s2.url, "token": "${env:GOOGLE_TOKEN}"},
                }
            },
            state_url,
        )
        steps = []
        for conn in ("entra", "gws"):
            for act in ("disable_user", "revoke_sessions", "enable_user"):
                steps.append(
                    {
                        "id": f"{conn}-{act}",
                        "name": act,
                        "action_type": act,
                        "parameters": {"user_id": "bob@example.com", "connection": conn},
                    }
                )
        pid = _steps_pb(rt, steps)
        ex = Executor(rt)
        eid = ex.start(pid, input={})
        assert ex.run(eid) == "succeeded", ex.get(eid)["error"]
        assert g.effects == [
            ("accountEnabled", "bob@example.com=False"),
            ("revokeSignInSessions", "bob@example.com"),
            ("accountEnabled", "bob@example.com=True"),
        ]
        assert gs.effects == [
            ("suspended", "bob@example.com=True"),
            ("signOut", "bob@example.com"),
            ("suspended", "bob@example.com=False"),
        ]
        blob = json.dumps(ex.get(eid)) + json.dumps(ex.audit_log(eid), default=str)
        assert "cs-SECRET" not in blob and GOOGLE_TOKEN not in blob
    finally:
        s1.close()
        s2.close()


def test_bad_vendor_auth_is_clear(
    make_runtime: Any, okta: Any, monkeypatch: Any, state_url: str
) -> None:
    monkeypatch.setenv("OKTA_TOKEN", "wrong-token-value")
    rt = make_runtime(
        {
            "connections": {
                "okta_main": {"type": "okta", "base_url": okta[1].url, "token": "${env:OKTA_TOKEN}"}
            }
        },
        state_url,
    )
    pid = _steps_pb(rt, [_okta_step("r", "revoke_sessions")])
    ex = Executor(rt)
    eid = ex.start(pid, input={"user": "bob@example.com"})
    assert ex.run(eid) == "failed"
    assert "answered 401" in ex.get(eid)["error"] and "E0000011" in ex.get(eid)["error"]


def test_playbook_yaml_roundtrip_in_storage(okta_runtime: Any) -> None:
    rt = okta_runtime
    PlaybookStore(rt).import_path(SHIPPED)
    text = rt.storage.read_bytes("playbooks/compromised-okta-user/1.0.0/playbook.yaml").decode()
    assert yaml.safe_load(text)["id"] == "compromised-okta-user"
