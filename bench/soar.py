"""SOAR benchmark: executions/s of a 5-step dry-run playbook in one process, and the
latency from alert creation to the first action request reaching a local stand-in.

    python bench/soar.py [--executions 1000] [--alerts 200] [--state-url URL]

* throughput: N executions of a 5-step playbook (http_request, revoke_sessions,
  disable_user, block_ip, send_notification-free) in ``--dry-run``: every step renders its
  templates in the sandbox, validates its parameters and commits its rows (SQLite default,
  or ``--state-url postgresql://...``); goal >= 200/s;
* alert → first request: ``AlertService.raise_alerts`` of a new alert through the normal
  alert path; an active alert-triggered playbook's first step POSTs to a stand-in on
  127.0.0.1, which timestamps arrival; p50/p99 over ``--alerts`` alerts; goal p99 < 1 s.

Writes bench/out/soar.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml

FIVE_STEPS = {
    "name": "Bench five steps",
    "id": "bench-five",
    "version": "1.0.0",
    "status": "active",
    "trigger": {"type": "manual"},
    "vars": {"conn": "okta_main"},
    "steps": [
        {
            "id": "notify",
            "name": "notify",
            "action_type": "http_request",
            "parameters": {
                "url": "http://127.0.0.1:9/hook",
                "body": {"alert": "{{ input.id }}", "user": "{{ input.user }}"},
            },
        },
        {
            "id": "revoke",
            "name": "revoke",
            "action_type": "revoke_sessions",
            "depends_on": ["notify"],
            "parameters": {"user_id": "{{ input.user }}", "connection": "{{ vars.conn }}"},
        },
        {
            "id": "disable",
            "name": "disable",
            "action_type": "disable_user",
            "depends_on": ["revoke"],
            "condition": "input.severity in ['high', 'critical']",
            "parameters": {
                "user_id": "{{ input.user }}",
                "reason": "bench {{ input.id }}",
                "connection": "{{ vars.conn }}",
            },
        },
        {
            "id": "block",
            "name": "block",
            "action_type": "block_ip",
            "parameters": {"ip_address": "{{ input.ip }}", "connection": "cf"},
        },
        {
            "id": "asset",
            "name": "asset",
            "action_type": "update_asset",
            "parameters": {
                "asset_id": "{{ input.user | lower }}",
                "status": "suspect",
                "tags": ["bench"],
            },
        },
    ],
}


def _runtime(data_dir: Path, state_url: str | None, extra: dict[str, Any]) -> Any:
    from mantissa.runtime import Runtime

    cfg: dict[str, Any] = {
        "connections": {
            "okta_main": {"type": "okta", "base_url": "http://127.0.0.1:9", "token": "x" * 20},
            "cf": {
                "type": "cloudflare",
                "base_url": "http://127.0.0.1:9",
                "token": "y" * 20,
                "zone_id": "z",
            },
        },
        "alerts": {"enrichment": {"user_context": {"enabled": False}}},
        **extra,
    }
    if state_url:
        cfg["state"] = {"url": state_url}
    (data_dir / "mantissa.yaml").write_text(yaml.safe_dump(cfg))
    return Runtime(data_dir)


def throughput(n: int, state_url: str | None) -> dict[str, Any]:
    from mantissa.soar.executor import Executor
    from mantissa.soar.store import PlaybookStore

    with tempfile.TemporaryDirectory() as d:
        rt = _runtime(Path(d), state_url, {})
        PlaybookStore(rt).import_text(yaml.safe_dump(FIVE_STEPS, sort_keys=False))
        ex = Executor(rt)
        for i in range(20):  # warm-up
            ex.run(ex.start("bench-five", input=_input(i), dry_run=True, version="1.0.0"))
        t0 = time.perf_counter()
        c0 = time.process_time()
        statuses: dict[str, int] = {}
        for i in range(n):
            eid = ex.start("bench-five", input=_input(i), dry_run=True, version="1.0.0")
            st = ex.run(eid)
            statuses[st] = statuses.get(st, 0) + 1
        secs = time.perf_counter() - t0
        cpu = time.process_time() - c0
        rt.state.close()
    return {
        "executions": n,
        "steps_per_execution": 5,
        "seconds": round(secs, 3),
        "executions_per_sec": round(n / secs, 1),
        # CPU seconds of this process: what the figure would be on an idle core
        "cpu_seconds": round(cpu, 3),
        "executions_per_cpu_sec": round(n / cpu, 1),
        "statuses": statuses,
        "state": "postgresql" if state_url else "sqlite",
    }


def _input(i: int) -> dict[str, Any]:
    return {
        "id": f"al_{i}",
        "user": f"User{i}@example.com",
        "severity": "high",
        "ip": f"203.0.113.{i % 250 + 1}",
    }


class _StandIn:
    def __init__(self) -> None:
        self.arrivals: dict[str, float] = {}
        stand = self

        class H(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                stand.arrivals.setdefault(body["alert"], time.perf_counter())
                self.send_response(204)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def alert_latency(n: int, state_url: str | None) -> dict[str, Any]:
    from mantissa.alerts.model import AlertCandidate
    from mantissa.alerts.service import AlertService
    from mantissa.soar.store import PlaybookStore
    from mantissa.soar.triggers import invalidate, wait_pending

    stand = _StandIn()
    url = f"http://127.0.0.1:{stand.server.server_address[1]}/hook"
    pb = {
        "name": "Bench alert",
        "id": "bench-alert",
        "version": "1.0.0",
        "status": "active",
        "trigger": {"type": "alert", "conditions": {"rule_id": "bench_*"}},
        "steps": [
            {
                "id": "post",
                "name": "post",
                "action_type": "http_request",
                "parameters": {"url": url, "body": {"alert": "{{ alert.id }}"}},
            }
        ],
    }
    lat: list[float] = []
    with tempfile.TemporaryDirectory() as d:
        rt = _runtime(Path(d), state_url, {})
        PlaybookStore(rt).import_text(yaml.safe_dump(pb, sort_keys=False))
        invalidate()
        svc = AlertService(rt)
        now = dt.datetime.now(dt.UTC)
        for i in range(n):
            cand = AlertCandidate(
                rule_id="bench_rule",
                rule_title="Bench",
                severity="high",
                dedup_key=f"bench|{i}|{time.time_ns()}",
                entities={"user": f"u{i}"},
                first_seen=now,
                last_seen=now,
            )
            t0 = time.perf_counter()
            [alert] = svc.raise_alerts([cand])
            end = time.monotonic() + 5
            while alert.id not in stand.arrivals and time.monotonic() < end:
                time.sleep(0.0005)
            if alert.id in stand.arrivals:
                lat.append(stand.arrivals[alert.id] - t0)
        wait_pending(30)
        svc.close()
        rt.state.close()
    stand.server.shutdown()
    lat.sort()
    q = statistics.quantiles(lat, n=100) if len(lat) >= 2 else lat * 99
    return {
        "alerts": n,
        "received": len(lat),
        "p50_ms": round(q[49] * 1000, 1),
        "p99_ms": round(q[98] * 1000, 1),
        "max_ms": round(lat[-1] * 1000, 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--executions", type=int, default=1000)
    ap.add_argument("--alerts", type=int, default=200)
    ap.add_argument("--state-url", default=None)
    args = ap.parse_args()
    out = {
        "throughput": throughput(args.executions, args.state_url),
        "alert_to_first_request": alert_latency(args.alerts, args.state_url),
    }
    out["load_average"] = [round(x, 2) for x in os.getloadavg()]
    out["cpus"] = os.cpu_count()
    print(json.dumps(out, indent=2))
    dest = Path(__file__).parent / "out"
    dest.mkdir(exist_ok=True)
    name = "soar-postgres.json" if args.state_url else "soar.json"
    (dest / name).write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
