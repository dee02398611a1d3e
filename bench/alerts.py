"""Benchmark: N alerts (default 10,000) upserted, enriched (geo-IP, threat intel), redacted
and routed to a local signed webhook through the durable outbox, in detection-sized
batches. Prints alerts/s and the latency from creation to delivery (p50/p99).

    .venv/bin/python bench/alerts.py [--alerts 10000] [--batch 500] [--state URL]
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import random
import statistics
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from mantissa.alerts.model import AlertCandidate
from mantissa.alerts.service import AlertService
from mantissa.runtime import Runtime

SECRET = "bench-secret"


class Receiver:
    def __init__(self) -> None:
        self.received: dict[str, float] = {}
        self.bad = 0
        recv = self

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                ts = self.headers["X-Mantissa-Timestamp"]
                want = (
                    "sha256="
                    + hmac.new(
                        SECRET.encode(), f"{ts}.".encode() + body, hashlib.sha256
                    ).hexdigest()
                )
                if hmac.compare_digest(want, self.headers["X-Mantissa-Signature"]):
                    recv.received.setdefault(json.loads(body)["alert"]["id"], time.time())
                else:
                    recv.bad += 1
                self.send_response(204)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"


def candidates(n: int, seed: int = 1) -> list[AlertCandidate]:
    import datetime as dt

    rng = random.Random(seed)
    now = dt.datetime.now(dt.UTC)
    out = []
    sev = ["low", "medium", "high", "critical"]
    for i in range(n):
        ip = f"{rng.choice([45, 81, 185, 193, 91])}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
        user = f"user{rng.randint(0, 500)}@corp.example"
        t = now - dt.timedelta(seconds=rng.randint(0, 3600))
        out.append(
            AlertCandidate(
                rule_id=f"bench.rule{i % 50}",
                rule_title=f"Bench rule {i % 50}",
                severity=sev[i % 4],
                tags=["attack.credential_access", f"attack.t{1000 + i % 100}"],
                dedup_key=f"bench|{i}",
                entities={"user": user, "ip": ip},
                first_seen=t,
                last_seen=t,
                count=1,
                description=f"{user} from {ip} with token=abcd{i:08d}efgh and phone +1 415 555 {1000 + i % 9000}",
                evidence_event_ids=[f"ev-{i}"],
                evidence_rows=[
                    {
                        "user": user,
                        "src_ip": ip,
                        "eventName": "ConsoleLogin",
                        "userAgent": "python-requests/2.31.0",
                    }
                ],
                source="cloudtrail",
            )
        )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--alerts", type=int, default=10_000)
    ap.add_argument("--batch", type=int, default=500)
    ap.add_argument("--state", default=None, help="state store URL (default: SQLite in a temp dir)")
    ap.add_argument("--workers", type=int, default=8)
    args = ap.parse_args()
    recv = Receiver()
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        intel = data / "intel.txt"
        intel.write_text("\n".join(f"185.{i}.0.0/16" for i in range(0, 256, 8)) + "\n")
        cfg = {
            "destinations": {"soc": {"type": "webhook", "url": recv.url, "secret": SECRET}},
            "routes": [{"match": {"min_severity": "low"}, "to": ["soc"]}],
            "alerts": {
                "delivery": {"workers": args.workers, "batch_size": 500, "flush_timeout_secs": 60},
                "enrichment": {
                    "threat_intel": {"feeds": [{"name": "bench", "path": str(intel)}]},
                    "user_context": {"enabled": False},
                },
            },
        }
        if args.state:
            cfg["state"] = {"url": args.state}
        (data / "mantissa.yaml").write_text(yaml.safe_dump(cfg))
        svc = AlertService(Runtime(data))
        svc.enricher.geoip.lookup("8.8.8.8")  # open the databases before timing
        svc.enricher.intel.load()
        cands = candidates(args.alerts)
        t0 = time.perf_counter()
        created: dict[str, float] = {}
        for i in range(0, len(cands), args.batch):
            batch = cands[i : i + args.batch]
            out = svc.raise_alerts(batch)
            for a in out:
                created[a.id] = a.created_at.timestamp()
        wall = time.perf_counter() - t0
        lat = sorted(recv.received[k] - created[k] for k in created if k in recv.received)
        missing = len(created) - len(lat)
        q = statistics.quantiles(lat, n=100) if len(lat) > 1 else [0.0] * 99
        print(f"alerts            {len(created):>10,}")
        print(f"delivered         {len(lat):>10,}   (missing {missing}, bad signatures {recv.bad})")
        print(f"wall time         {wall:>10.2f} s")
        print(
            f"alerts/s          {len(created) / wall:>10,.0f}   (upsert + enrich + redact + route + deliver)"
        )
        print(f"latency p50       {q[49] * 1000:>10,.0f} ms  (creation → webhook received)")
        print(f"latency p99       {q[98] * 1000:>10,.0f} ms")
        print(
            f"state store       {svc.runtime.state.dialect}; batch {args.batch}; workers {args.workers}; "
            f"cpus {os.cpu_count()}"
        )
    recv.server.shutdown()


if __name__ == "__main__":
    main()
