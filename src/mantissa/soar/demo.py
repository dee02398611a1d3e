"""Demo step "Response" (order 70): run the shipped ``compromised-okta-user`` playbook on an
identity alert against a local Okta stand-in, up to the approval a person must give.

The stand-in (127.0.0.1, ephemeral port) checks the ``SSWS`` token like Okta does; the
token lives only in this process's environment. Nothing real is called.
"""

from __future__ import annotations

import json
import os
import secrets
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from mantissa.demo import DemoContext, step

PLAYBOOKS = Path(__file__).resolve().parents[1] / "rules" / "playbooks"


class OktaStandIn:
    """Just enough of Okta's users API: GET user, lifecycle suspend, DELETE sessions."""

    def __init__(self, token: str) -> None:
        self.calls: list[str] = []
        users: dict[str, str] = {}
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def _reply(self, status: int, body: Any = None) -> None:
                data = b"" if body is None else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _do(self) -> None:
                if self.headers.get("Authorization") != f"SSWS {token}":
                    self._reply(401, {"errorCode": "E0000011", "errorSummary": "Invalid token"})
                    return
                path = self.path.split("?")[0]
                stand_in.calls.append(f"{self.command} {path}")
                parts = path.strip("/").split("/")
                user = parts[3] if len(parts) > 3 else ""
                if self.command == "GET":
                    self._reply(200, {"id": user, "status": users.get(user, "ACTIVE")})
                elif self.command == "DELETE" and parts[-1] == "sessions":
                    self._reply(204)
                elif self.command == "POST" and parts[-1] == "suspend":
                    users[user] = "SUSPENDED"
                    self._reply(200, {})
                else:
                    self._reply(404, {"errorCode": "E0000022"})

            do_GET = do_POST = do_DELETE = _do

            def log_message(self, *a: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _identity_alert(rt: Any) -> dict[str, Any]:
    from mantissa.alerts.store import AlertStore

    alerts, _ = AlertStore(rt.state).list(limit=200, sort="-severity")
    for a in alerts:
        if a.entities.get("user"):
            return a.model_dump(mode="json")
    import datetime as dt

    from mantissa.alerts.model import AlertCandidate

    now = dt.datetime.now(dt.UTC)
    alert, _ = AlertStore(rt.state).upsert(
        AlertCandidate(
            rule_id="okta_mfa_push_fatigue",
            rule_title="Okta MFA push fatigue",
            severity="high",
            dedup_key="okta_mfa_push_fatigue|demo.user",
            entities={"user": "demo.user@example.com"},
            first_seen=now,
            last_seen=now,
            source="okta",
        )
    )
    return alert.model_dump(mode="json")


@step("Response: playbook up to an approval", 70)
def soar_step(ctx: DemoContext) -> None:
    from mantissa.config import Config
    from mantissa.runtime import Runtime
    from mantissa.soar.executor import Executor
    from mantissa.soar.store import PlaybookStore

    console = ctx.console
    env = "MANTISSA_DEMO_OKTA_TOKEN"
    os.environ[env] = secrets.token_hex(20)
    okta = OktaStandIn(os.environ[env])
    try:
        data = ctx.runtime.config.model_dump()
        data["connections"] = {
            **(data.get("connections") or {}),
            "okta_main": {"type": "okta", "base_url": okta.url, "token": "${env:" + env + "}"},
        }
        rt = Runtime(ctx.runtime.data_dir, config=Config.model_validate(data))
        store = PlaybookStore(rt)
        for imp in store.import_path(PLAYBOOKS):
            console.print(f"  playbook {imp.id}@{imp.version} ({imp.status})")
        alert = _identity_alert(rt)
        pid, version = store.resolve("compromised-okta-user")
        ex = Executor(rt)
        eid = ex.start(pid, version=version, alert=alert, trigger="manual", actor="demo")
        assert eid is not None
        status = ex.run(eid)
        doc = ex.get(eid)
        console.print(
            f"  alert {alert['id']} ({alert['rule_title']}, user "
            f"{alert['entities'].get('user')}) → execution {eid}: [bold]{status}[/]"
        )
        for s in doc["steps"]:
            console.print(f"    step {s['id']:<8} {s['action']:<16} {s['status']}")
        console.print(f"  Okta stand-in {okta.url} received: {', '.join(okta.calls) or '-'}")
        pending = [a for a in doc["approvals"] if a["status"] == "pending"]
        if pending:
            ap = pending[0]
            console.print(
                f"  waiting for a person: approval {ap['id']} for step {ap['step']} "
                f"expires {ap['expires_at']}"
            )
            console.print(
                f"  give it: mantissa approvals approve {ap['id']} --as YOUR_NAME   "
                f"(or deny: mantissa approvals deny {ap['id']} --reason ...)"
            )
            console.print(
                f"  or in the console: mantissa serve, then /console/approvals/{ap['id']} "
                "(a responder token)"
            )
            console.print(
                "  (the Okta stand-in stops with the demo: configure connections.okta_main in "
                "mantissa.yaml to suspend the user in your Okta)"
            )
        console.print(f"  inspect: mantissa executions show {eid}")
        ctx.results["soar"] = {
            "execution_id": eid,
            "status": status,
            "approval": pending[0]["id"] if pending else None,
            "okta_calls": list(okta.calls),
        }
        rt.state.close()
    finally:
        okta.close()
        os.environ.pop(env, None)
