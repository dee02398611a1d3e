"""API routes (roles, 403 for viewer, 409 after expiry, signed links) and triggers (alert
once per alert through the normal alert path, the serve worker's expiry within 1 s)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from mantissa.api.app import create_app
from mantissa.api.auth import TokenStore
from mantissa.soar.executor import Executor
from mantissa.soar.store import PlaybookStore
from tests.alerts.conftest import candidate
from tests.alerts.stubs import StubServer
from tests.soar.conftest import playbook
from tests.soar.stubs import OKTA_TOKEN, HookStub

GATED = [
    {
        "id": "rev",
        "name": "rev",
        "action_type": "revoke_sessions",
        "parameters": {"user_id": "{{ input.user }}", "connection": "okta_main"},
    },
    {
        "id": "d",
        "name": "d",
        "action_type": "disable_user",
        "requires_approval": True,
        "depends_on": ["rev"],
        "approval_timeout_seconds": 2,
        "parameters": {"user_id": "{{ input.user }}", "connection": "okta_main"},
    },
]


@pytest.fixture
def api(okta_runtime: Any) -> Iterator[tuple[TestClient, dict[str, str], Any]]:
    store = TokenStore(okta_runtime.state)
    toks = {
        r: store.create(r, name=f"t-{r}")[1] for r in ("viewer", "analyst", "responder", "admin")
    }
    with TestClient(create_app(okta_runtime), raise_server_exceptions=False) as c:
        yield c, {r: {"Authorization": f"Bearer {t}"} for r, t in toks.items()}, okta_runtime


def test_api_run_approve_roles(api: Any, okta: Any) -> None:
    c, h, _rt = api
    text = playbook(GATED, id="gated")
    r = c.post(
        "/playbooks", content=text, headers={**h["viewer"], "Content-Type": "application/yaml"}
    )
    assert r.status_code == 403
    r = c.post(
        "/playbooks", content=text, headers={**h["responder"], "Content-Type": "application/yaml"}
    )
    assert r.status_code == 201, r.text
    assert c.get("/playbooks", headers=h["analyst"]).json()[0]["id"] == "gated"
    body = {"input": {"user": "bob@example.com"}}
    assert c.post("/playbooks/gated/run", json=body, headers=h["viewer"]).status_code == 403
    assert c.post("/playbooks/gated/run", json=body, headers=h["analyst"]).status_code == 403
    r = c.post("/playbooks/gated/execute", json=body, headers=h["responder"])
    assert r.status_code == 200 and r.json()["status"] == "waiting_approval"
    eid = r.json()["execution_id"]
    assert c.get("/approvals", headers=h["viewer"]).status_code == 403
    [ap] = c.get("/approvals", headers=h["responder"]).json()
    assert c.post(f"/approvals/{ap['id']}/approve", headers=h["viewer"]).status_code == 403
    r = c.post(f"/approvals/{ap['id']}/approve", headers=h["admin"])
    assert r.status_code == 200 and r.json()["execution_status"] == "succeeded"
    r = c.post(f"/approvals/{ap['id']}/deny", headers=h["responder"])
    assert r.status_code == 409
    doc = c.get(f"/executions/{eid}", headers=h["analyst"]).json()
    assert doc["status"] == "succeeded" and [s["status"] for s in doc["steps"]] == [
        "succeeded",
        "succeeded",
    ]
    assert OKTA_TOKEN not in json.dumps(doc)
    assert c.get("/executions", headers=h["analyst"]).json()["total"] == 1
    assert okta[0].effects == [("revoke_sessions", "00ub0b"), ("suspend", "00ub0b")]


def test_api_409_after_expiry_and_signed_link(api: Any) -> None:
    from mantissa.soar.approvals import sign_link

    c, h, rt = api
    PlaybookStore(rt).import_text(playbook(GATED, id="gated"))
    long = [GATED[0], {**GATED[1], "approval_timeout_seconds": 600}]
    PlaybookStore(rt).import_text(playbook(long, id="gated-long"))
    eid = c.post(
        "/playbooks/gated-long/run",
        json={"input": {"user": "bob@example.com"}},
        headers=h["responder"],
    ).json()["execution_id"]
    [ap] = c.get("/approvals", headers=h["responder"]).json()
    # a signed link: its GET changes nothing and sends the browser to the console's
    # approval page (which asks for a login); a bad, swapped or expired token is refused
    tok = sign_link(rt, ap["id"], "deny")
    r = c.get(f"/approvals/{ap['id']}/link?decision=deny&token={tok}", follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"] == f"/console/approvals/{ap['id']}?decision=deny&token={tok}"
    assert c.get(f"/approvals/{ap['id']}/link?decision=approve&token={tok}").status_code == 403
    old = sign_link(rt, ap["id"], "deny", ttl_secs=1)
    # the API behind the console page checks the link too, for a signed-in responder
    q = {"decision": "deny", "token": tok}
    assert c.get(f"/approvals/{ap['id']}", params=q, headers=h["responder"]).status_code == 200
    assert c.get(f"/approvals/{ap['id']}", params=q, headers=h["analyst"]).status_code == 403
    r = c.post(
        f"/approvals/{ap['id']}/approve", json={"token": tok}, headers=h["responder"]
    )  # a deny link cannot approve
    assert r.status_code == 403
    time.sleep(1.05)
    for bad in (old, "1.x", tok[:-2] + "AA"):
        assert c.get(f"/approvals/{ap['id']}/link?decision=deny&token={bad}").status_code == 403
        r = c.get(
            f"/approvals/{ap['id']}",
            params={"decision": "deny", "token": bad},
            headers=h["responder"],
        )
        assert r.status_code == 403 and "expired" in r.text
    # no token = no decision: the old unauthenticated POST is gone
    r = c.post(f"/approvals/{ap['id']}/link?decision=deny", data={"token": tok, "actor": "sam"})
    assert r.status_code == 405
    r = c.post(
        f"/approvals/{ap['id']}/deny", json={"token": tok, "reason": "fp"}, headers=h["responder"]
    )
    assert r.status_code == 200 and r.json()["status"] == "denied" and r.json()["via"] == "link"
    assert Executor(rt).get(eid)["status"] == "denied"
    # expiry
    eid = c.post(
        "/playbooks/gated/run", json={"input": {"user": "bob@example.com"}}, headers=h["responder"]
    ).json()["execution_id"]
    [ap] = c.get("/approvals", headers=h["responder"]).json()
    time.sleep(2.05)
    r = c.post(f"/approvals/{ap['id']}/approve", headers=h["responder"])
    assert r.status_code == 409 and "expired" in r.text


def test_alert_trigger_once_per_alert(okta_runtime: Any) -> None:
    from mantissa.alerts.service import AlertService
    from mantissa.soar.triggers import invalidate, wait_pending

    rt = okta_runtime
    hook = HookStub()
    server = StubServer(hook)
    try:
        PlaybookStore(rt).import_text(
            playbook(
                [
                    {
                        "id": "post",
                        "name": "post",
                        "action_type": "http_request",
                        "parameters": {
                            "url": server.url + "/hook",
                            "body": {
                                "alert": "{{ alert.id }}",
                                "user": "{{ alert.entities.user }}",
                            },
                        },
                    }
                ],
                id="on-root",
                trigger={
                    "type": "alert",
                    "conditions": {"rule_id": "aws_console_*", "severity": ["high", "critical"]},
                },
            )
        )
        PlaybookStore(rt).import_text(
            playbook(
                [
                    {
                        "id": "x",
                        "name": "x",
                        "action_type": "http_request",
                        "parameters": {"url": server.url + "/never"},
                    }
                ],
                id="not-matching",
                trigger={"type": "alert", "conditions": {"rule_id": "okta_*"}},
            )
        )
        invalidate()
        svc = AlertService(rt)
        [alert] = svc.raise_alerts([candidate()])
        svc.raise_alerts([candidate()])  # the same alert again: updated, not re-run
        wait_pending(20)
        assert len(hook.effects) == 1
        assert json.loads(server.journal[0].body) == {"alert": alert.id, "user": "root"}
        rows, total = Executor(rt).list()
        assert total == 1 and rows[0]["alert_id"] == alert.id and rows[0]["trigger"] == "alert"
        assert rows[0]["status"] == "succeeded"
    finally:
        server.close()


def test_worker_expires_within_one_second(okta_runtime: Any) -> None:
    from mantissa.soar.triggers import worker

    rt = okta_runtime
    PlaybookStore(rt).import_text(playbook(GATED, id="gated"))
    ex = Executor(rt)
    eid = ex.start("gated", input={"user": "bob@example.com"})
    assert ex.run(eid) == "waiting_approval"
    expires = ex.get(eid)["approvals"][0]["expires_at"]
    stop = threading.Event()
    t = threading.Thread(target=worker, args=(rt, stop), daemon=True)
    t.start()
    try:
        import datetime as dt

        deadline = dt.datetime.fromisoformat(expires.replace("Z", "+00:00"))
        while ex.get(eid)["status"] != "expired":
            assert dt.datetime.now(dt.UTC) < deadline + dt.timedelta(seconds=1)
            time.sleep(0.05)
    finally:
        stop.set()
        t.join(5)
    assert ex.get(eid)["steps"][1]["status"] == "expired"


def _channel(kind: str, url: str) -> dict[str, Any]:
    from tests.alerts import stubs as astubs

    if kind == "slack":
        return {"type": "slack", "webhook_url": url + astubs.SLACK_HOOK_PATH}
    if kind == "teams":
        return {
            "type": "teams",
            "webhook_url": f"{url}{astubs.TEAMS_PATH}?api-version=2016-06-01"
            f"&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig={astubs.TEAMS_SIG}",
        }
    return {"type": "webhook", "url": url + "/hook"}


@pytest.mark.parametrize("kind", ["slack", "teams", "webhook"])
def test_approval_request_reaches_channel_with_signed_link(
    make_runtime: Any, okta: Any, kind: str
) -> None:
    """Slack and Teams (their stubs enforce Block Kit / Adaptive Card shapes and the
    workflow signature) get the request with signed console links; the link opens the
    console approval page and is refused once ``link_ttl_secs`` has passed."""
    import re

    from tests.alerts import stubs as astubs

    handler = {"slack": astubs.slack_webhook, "teams": astubs.teams}.get(
        kind, lambda req: (204, {}, b"")
    )
    chan = StubServer(handler)
    try:
        rt = make_runtime(
            {
                "connections": {
                    "okta_main": {
                        "type": "okta",
                        "base_url": okta[1].url,
                        "token": "${env:OKTA_TOKEN}",
                    }
                },
                "destinations": {"secops": _channel(kind, chan.url)},
                "soar": {
                    "approval": {"notification_channel": "secops", "link_ttl_secs": 30},
                    "console_url": "https://mantissa.example.com",
                },
            }
        )
        # an approval that outlives the test (GATED's expires in 2 s)
        steps = [GATED[0], {**GATED[1], "approval_timeout_seconds": 600}]
        PlaybookStore(rt).import_text(playbook(steps, id="gated"))
        ex = Executor(rt)
        eid = ex.start("gated", input={"user": "bob@example.com"})
        assert ex.run(eid) == "waiting_approval"
        aid = ex.get(eid)["approvals"][0]["id"]
        assert len(chan.journal) == 1
        text = chan.journal[0].body.decode()
        assert OKTA_TOKEN not in text
        # Slack escapes & in mrkdwn as &amp; (its clients unescape it)
        text = text.replace("&amp;", "&").replace("\\u0026", "&")
        links = dict(
            re.findall(
                r"https://mantissa\.example\.com/console/approvals/"
                + aid
                + r"\?decision=(approve|deny)&token=([\w.-]+)",
                text,
            )
        )
        assert set(links) == {"approve", "deny"}
        if kind == "slack":  # the message's button opens the approval page
            blocks = json.loads(chan.journal[0].body)["blocks"]
            assert blocks[-1]["elements"][0]["url"].startswith(
                f"https://mantissa.example.com/console/approvals/{aid}?decision=approve"
            )
        if kind == "teams":
            card = json.loads(chan.journal[0].body)["attachments"][0]["content"]
            assert f"/console/approvals/{aid}?decision=approve" in card["actions"][0]["url"]
        assert '"user_id": "bob@example.com"' in text.replace("\\", "").replace("'", '"')
        store = TokenStore(rt.state)
        tok = store.create("responder", name="rita")[1]
        with TestClient(create_app(rt), raise_server_exceptions=False) as c:
            # opened without a session, the console page asks for a login first
            r = c.get(
                f"/console/approvals/{aid}?decision=approve&token={links['approve']}",
                follow_redirects=False,
            )
            assert r.status_code == 303 and r.headers["location"].startswith(
                "/console/login?next=/console/approvals/"
            )
            q = {"decision": "approve", "token": links["approve"]}
            h = {"Authorization": f"Bearer {tok}"}
            assert c.get(f"/approvals/{aid}", params=q, headers=h).json()["status"] == "pending"
            # short-lived: refused once link_ttl_secs has passed (clock moved on)
            import mantissa.soar.approvals as approvals_mod

            real = approvals_mod.time.time
            approvals_mod.time.time = lambda: real() + 31  # type: ignore[assignment]
            try:
                r = c.get(f"/approvals/{aid}", params=q, headers=h)
                assert r.status_code == 403 and "expired" in r.text
                r = c.post(f"/approvals/{aid}/approve", json={"token": q["token"]}, headers=h)
                assert r.status_code == 403
            finally:
                approvals_mod.time.time = real  # type: ignore[assignment]
        audit = [a for a in ex.audit_log(eid) if a.get("event") == "approval_notification"]
        assert audit and audit[0]["status"] == "sent"
    finally:
        chan.close()


def test_schedule_fires_once_per_slot(make_runtime: Any) -> None:
    from mantissa.soar.triggers import due_schedules, invalidate, wait_pending

    rt = make_runtime()
    PlaybookStore(rt).import_text(
        playbook(
            [
                {
                    "id": "a",
                    "name": "a",
                    "action_type": "update_asset",
                    "parameters": {"asset_id": "nightly", "tags": ["{{ input.scheduled_at[:4] }}"]},
                }
            ],
            id="nightly",
            trigger={"type": "schedule", "schedule": "* * * * *"},
        )
    )
    invalidate()
    assert due_schedules(rt) == []  # first sight: remembers the slot, no backfill
    rt.state.put("soar_schedule", "nightly", "2000-01-01T00:00:00+00:00")
    started = due_schedules(rt)
    assert len(started) == 1
    assert due_schedules(rt) == []  # same slot: not again
    wait_pending(20)
    from mantissa.soar.triggers import _POOL

    _POOL.submit(lambda: None).result(10)
    for _ in range(100):
        if Executor(rt).get(started[0])["status"] == "succeeded":
            break
        time.sleep(0.05)
    doc = Executor(rt).get(started[0])
    assert doc["status"] == "succeeded" and doc["trigger"] == "schedule"
