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
import subprocess
import sys
import tempfile
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from mantissa.alerts.model import AlertCandidate
from mantissa.alerts.service import AlertService
from mantissa.runtime import Runtime

SECRET = "bench-secret"


def serve(port_file: str, out_file: str) -> None:
    """The local webhook, in its own process (as a real receiver would be): verifies each
    signature and appends ``<alert id> <receive time>`` to ``out_file``."""
    out = open(out_file, "a", buffering=1)  # noqa: SIM115 - lives as long as the process

    class H(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            ts = self.headers["X-Mantissa-Timestamp"]
            want = (
                "sha256="
                + hmac.new(SECRET.encode(), f"{ts}.".encode() + body, hashlib.sha256).hexdigest()
            )
            ok = hmac.compare_digest(want, self.headers["X-Mantissa-Signature"])
            alert_id = json.loads(body)["alert"]["id"] if ok else "BAD"
            out.write(f"{alert_id} {time.time()}\n")
            self.send_response(204 if ok else 401)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *a: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), H)
    server.daemon_threads = True
    Path(port_file).write_text(str(server.server_address[1]))
    server.serve_forever()


class Receiver:
    """Runs :func:`serve` in a subprocess and reads what it received."""

    def __init__(self, tmp: Path) -> None:
        self.port_file, self.out_file = tmp / "port", tmp / "received.txt"
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--serve", str(self.port_file), str(self.out_file)]
        )
        deadline = time.time() + 60
        while not self.port_file.exists() or not self.port_file.read_text():
            if time.time() > deadline:
                raise RuntimeError("webhook receiver did not start")
            time.sleep(0.05)
        self.url = f"http://127.0.0.1:{self.port_file.read_text()}/hook"

    def received(self) -> tuple[dict[str, float], int]:
        got: dict[str, float] = {}
        bad = 0
        for line in self.out_file.read_text().splitlines():
            alert_id, t = line.split()
            if alert_id == "BAD":
                bad += 1
            else:
                got.setdefault(alert_id, float(t))
        return got, bad

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)


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
    ap.add_argument("--serve", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        serve(*args.serve)
        return
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        recv = Receiver(data)
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
        time.sleep(0.5)  # let the receiver's last lines land
        received, bad = recv.received()
        recv.close()
        lat = sorted(received[k] - created[k] for k in created if k in received)
        missing = len(created) - len(lat)
        q = statistics.quantiles(lat, n=100) if len(lat) > 1 else [0.0] * 99
        print(f"alerts            {len(created):>10,}")
        print(f"delivered         {len(lat):>10,}   (missing {missing}, bad signatures {bad})")
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


if __name__ == "__main__":
    main()
