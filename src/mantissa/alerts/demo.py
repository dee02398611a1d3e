"""Demo step "Alerts" (order 50): route the alerts the detection step raised to a local
file and a local signed webhook, and show the deliveries.

The demo never notifies anyone real: whatever ``destinations:`` the config has, this
step uses its own two local ones: ``demo_file`` (``<data-dir>/alerts/demo-deliveries.jsonl``,
internal, unredacted) and ``demo_webhook`` (a receiver on 127.0.0.1 that checks each
request's HMAC signature; external, so it receives redacted alerts).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from mantissa.config import Config
from mantissa.demo import DemoContext, step


class _Receiver:
    """A local webhook endpoint that verifies ``X-Mantissa-Signature``."""

    def __init__(self, secret: str) -> None:
        self.secret = secret
        self.verified = 0
        self.rejected = 0
        self.bodies: list[dict[str, Any]] = []
        recv = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                ts = self.headers.get("X-Mantissa-Timestamp", "")
                want = (
                    "sha256="
                    + hmac.new(
                        recv.secret.encode(), ts.encode() + b"." + body, hashlib.sha256
                    ).hexdigest()
                )
                ok = hmac.compare_digest(self.headers.get("X-Mantissa-Signature", ""), want)
                if ok and ts.isdigit() and abs(time.time() - int(ts)) < 300:
                    recv.verified += 1
                    recv.bodies.append(json.loads(body))
                    self.send_response(204)
                else:
                    recv.rejected += 1
                    self.send_response(401)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def demo_config(base: Config, webhook_url: str, secret_env: str) -> Config:
    """The runtime's config with the demo's local destinations and routes."""
    data = base.model_dump()
    data["destinations"] = {
        "demo_file": {"type": "file", "path": "alerts/demo-deliveries.jsonl"},
        "demo_webhook": {
            "type": "webhook",
            "url": webhook_url,
            "secret": "${env:" + secret_env + "}",
            "max_attempts": 3,
            "backoff_base_secs": 0.2,
        },
    }
    data["routes"] = [
        {"name": "soc", "match": {"min_severity": "medium"}, "to": ["demo_webhook", "demo_file"]},
        {"name": "audit", "match": {}, "to": ["demo_file"]},
    ]
    return Config.model_validate(data)


@step("Alerts: routing and delivery", 50)
def alerts_step(ctx: DemoContext) -> None:
    import os

    from rich.table import Table

    from mantissa.alerts.service import AlertService
    from mantissa.alerts.store import AlertStore
    from mantissa.runtime import Runtime

    rt = ctx.runtime
    console = ctx.console
    store = AlertStore(rt.state)
    pending, total = store.list(status=["open", "acknowledged"], limit=1000, sort="-severity")
    if not total:
        console.print(
            "  No alerts yet: the detection step raises them. Nothing to route; "
            "`mantissa alerts list` will show them once rules have run."
        )
        ctx.results["alerts"] = {"alerts": 0, "deliveries": 0}
        return
    secret_env = "MANTISSA_DEMO_WEBHOOK_SECRET"
    os.environ[secret_env] = secrets.token_hex(16)
    recv = _Receiver(os.environ[secret_env])
    try:
        demo_rt = Runtime(rt.data_dir, config=demo_config(rt.config, recv.url, secret_env))
        svc = AlertService(demo_rt)
        queued = 0
        for alert in pending:
            if not any(d["destination"].startswith("demo_") for d in alert.deliveries):
                queued += len(svc.route(alert))
        res = svc.outbox.flush(timeout_secs=20)
        table = Table(header_style="bold cyan")
        for col in ("alert", "severity", "rule", "demo_webhook", "demo_file"):
            table.add_column(col, overflow="fold")
        rows = 0
        for alert in pending[:15]:
            a = svc.store.get(alert.id)
            st = {d["destination"]: d["status"] for d in a.deliveries if d["kind"] == "trigger"}
            table.add_row(
                a.id,
                a.severity.value,
                a.rule_title[:60],
                st.get("demo_webhook", "-"),
                st.get("demo_file", "-"),
            )
            rows += 1
        console.print(table)
        if total > rows:
            console.print(f"  … and {total - rows} more")
        path = rt.data_dir / "alerts" / "demo-deliveries.jsonl"
        console.print(
            f"  {queued} deliveries queued, {res.delivered} delivered, {res.pending} pending, "
            f"{res.dead} dead in {res.seconds:.1f}s"
        )
        console.print(
            f"  webhook {recv.url}: {recv.verified} signed requests verified "
            f"(alerts redacted for this external destination)"
        )
        console.print(f"  file    {path}")
        sample = next((b for b in recv.bodies if "user" in b["alert"]["entities"]), None) or next(
            (b for b in recv.bodies if b["alert"]["entities"]), None
        )
        if sample:
            console.print(
                f"  e.g. the webhook saw entities {sample['alert']['entities']} "
                f"for alert {sample['alert']['id']}"
            )
        first = pending[0].id
        console.print(
            f"  try: mantissa alerts show {first}  ·  mantissa alerts test-route {first}  ·  "
            f"mantissa alerts ack {first}"
        )
        ctx.results["alerts"] = {
            "alerts": total,
            "deliveries": res.delivered,
            "pending": res.pending,
            "dead": res.dead,
            "webhook_verified": recv.verified,
            "file": str(path),
        }
        svc.close()
        demo_rt.state.close()
    finally:
        recv.close()
        os.environ.pop(secret_env, None)
