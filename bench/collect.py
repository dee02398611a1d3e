"""Benchmark the collectors on loopback:

* syslog TCP: N messages from one sender into the lake; events/s with zero loss;
* syslog UDP: N datagrams at full speed; events/s and the loss rate at that rate;
* Splunk HEC: 20 concurrent senders, batches of 100 events; events/s and p99 ack latency
  (an ack means the batch is in the lake);
* a pull input (okta) against its stub with a backlog and a rate limit: time to catch up,
  compared with the floor the stub's rate limit sets.

    .venv/bin/python bench/collect.py [--syslog 200000] [--hec 200000] [--backlog 1000000]
        [--rate-limit 100] [--only syslog,hec,pull]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

import duckdb  # noqa: E402

from mantissa.inputs.base import Runner, configured_inputs  # noqa: E402
from mantissa.inputs.receiver import SyslogListener  # noqa: E402
from mantissa.inputs.syslog import SyslogServer  # noqa: E402
from mantissa.runtime import Runtime  # noqa: E402


def lake_count(data_dir: Path, source: str) -> int:
    files = [str(f) for f in (data_dir / "lake").rglob("*.parquet") if f"logs/{source}/" in str(f)]
    if not files:
        return 0
    return duckdb.connect().execute("SELECT count(*) FROM read_parquet(?)", [files]).fetchone()[0]


def syslog_msgs(n: int, tag: str) -> list[bytes]:
    return [
        f"<38>Nov 29 06:{(i // 60) % 60:02d}:{i % 60:02d} host{i % 50} sshd[{i % 9000}]: "
        f"Failed password for user{i % 1000} from 198.51.{(i >> 8) % 256}.{i % 256} port 22 ssh2 {tag}{i}".encode()
        for i in range(n)
    ]


def bench_syslog_tcp(n: int) -> dict:
    d = Path(tempfile.mkdtemp(prefix="bench-syslog-"))
    srv = SyslogServer(
        Runtime(d), "bench", SyslogListener(protocol="tcp", port=0, flush_events=50000)
    )
    srv.start()
    payload = b"\n".join(syslog_msgs(n, "t")) + b"\n"
    load = os.getloadavg()[0]
    t0 = time.perf_counter()
    cpu0 = time.process_time()  # every thread of this process: receiver + writer + sender
    with socket.create_connection(srv.address) as c:
        c.sendall(payload)
    while srv.written < n and time.perf_counter() - t0 < 600:
        time.sleep(0.01)
    secs = time.perf_counter() - t0
    cpu = time.process_time() - cpu0
    srv.close()
    stored = lake_count(d, "syslog")
    return {
        "events": n,
        "stored": stored,
        "lost": n - stored,
        "secs": round(secs, 2),
        "events_per_s": round(n / secs),
        # what the code costs, whatever else the machine runs: events per CPU-second
        # (2 cores → at most twice this on an idle box)
        "cpu_secs": round(cpu, 2),
        "events_per_cpu_s": round(n / cpu),
        "load_avg_1m_before": round(load, 2),
    }


def bench_syslog_udp(n: int) -> dict:
    d = Path(tempfile.mkdtemp(prefix="bench-syslog-"))
    srv = SyslogServer(
        Runtime(d), "bench", SyslogListener(protocol="udp", port=0, flush_events=50000)
    )
    srv.start()
    msgs = syslog_msgs(n, "u")
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    t0 = time.perf_counter()
    for m in msgs:
        s.sendto(m, srv.address)
    send_secs = time.perf_counter() - t0
    deadline = time.perf_counter() + 120
    while srv.written + srv.dropped + srv.kernel_dropped < n and time.perf_counter() < deadline:
        prev = srv.received
        time.sleep(0.5)
        if srv.received == prev and srv.buffer.size == 0 and srv.written >= srv.received:
            break
    secs = time.perf_counter() - t0
    srv.close()
    stored = lake_count(d, "syslog")
    return {
        "events_sent": n,
        "stored": stored,
        "send_rate_per_s": round(n / send_secs),
        "loss_rate": round(1 - stored / n, 4),
        "dropped_buffer": srv.dropped,
        "dropped_kernel": srv.kernel_dropped,
        "secs": round(secs, 2),
        "events_per_s": round(stored / secs),
    }


def bench_hec(n: int, senders: int = 20, batch: int = 100) -> dict:
    from tests.api.conftest import start_server

    from mantissa.api.app import create_app
    from mantissa.api.auth import TokenStore

    d = Path(tempfile.mkdtemp(prefix="bench-hec-"))
    (d / "mantissa.yaml").write_text("receivers:\n  http:\n    max_concurrent: 4\n")
    rt = Runtime(d)
    token = TokenStore(rt.state).create("ingest", name="bench")[1]
    srv = start_server(create_app(rt))
    per_sender = n // senders // batch
    # the senders run in another process, as real shippers do: they must not share
    # the receiver's interpreter lock
    sender_code = f"""
import json, sys, threading, time, httpx
url, token, senders, per_sender, batch = {srv.url!r}, {token!r}, {senders}, {per_sender}, {batch}
lat, retries, lock = [], [0], threading.Lock()
bodies = [["".join(json.dumps({{"time": 1764396000 + i, "host": f"h{{k}}", "sourcetype": "app",
           "event": {{"msg": "user login", "user": f"u{{i}}", "seq": f"{{k}}-{{b}}-{{i}}"}}}}) + "\\n"
           for i in range(batch)) for b in range(per_sender)] for k in range(senders)]
def run(k):
    with httpx.Client(timeout=120) as c:
        for body in bodies[k]:
            t = time.perf_counter()
            while True:
                r = c.post(url + "/services/collector/event", content=body,
                           headers={{"Authorization": "Splunk " + token}})
                if r.status_code in (429, 503):
                    with lock:
                        retries[0] += 1
                    time.sleep(0.02)
                    continue
                break
            assert r.status_code == 200, r.text
            with lock:
                lat.append(time.perf_counter() - t)
t0 = time.perf_counter()
ts = [threading.Thread(target=run, args=(k,)) for k in range(senders)]
[t.start() for t in ts]
[t.join() for t in ts]
print(json.dumps({{"secs": time.perf_counter() - t0, "lat": lat, "retries": retries[0]}}))
"""
    import subprocess

    proc = subprocess.run([sys.executable, "-c", sender_code], capture_output=True, text=True)
    if proc.returncode:
        raise RuntimeError(proc.stderr[-2000:])
    res = json.loads(proc.stdout)
    lat, retries = res["lat"], [res["retries"]]
    t0 = time.perf_counter() - res["secs"]
    secs = time.perf_counter() - t0
    srv.stop()
    sent = per_sender * senders * batch
    lat.sort()
    return {
        "events": sent,
        "stored": lake_count(d, "json_lines"),
        "senders": senders,
        "batch": batch,
        "secs": round(secs, 2),
        "events_per_s": round(sent / secs),
        "ack_p50_ms": round(statistics.median(lat) * 1000, 1),
        "ack_p99_ms": round(lat[int(len(lat) * 0.99) - 1] * 1000, 1),
        "retries_429": retries[0],
    }


class LazyEvents:
    """``n`` Okta LogEvents, built when a page asks for them (sorted by ``published``)."""

    def __init__(self, n: int, start: dt.datetime, step_secs: float) -> None:
        self.n, self.start, self.step = n, start, step_secs

    def __len__(self) -> int:
        return self.n

    def _event(self, i: int) -> dict:
        t = self.start + dt.timedelta(seconds=i * self.step)
        return {
            "uuid": f"{i:08x}-0000-4000-8000-{i:012x}",
            "published": t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z",
            "eventType": "user.session.start",
            "severity": "INFO",
            "displayMessage": "User login to Okta",
            "actor": {"id": "00u1", "type": "User", "alternateId": f"user{i % 97}@example.com"},
            "client": {"ipAddress": f"198.51.100.{i % 250}"},
            "outcome": {"result": "SUCCESS"},
        }

    def __getitem__(self, key: int | slice) -> object:
        if isinstance(key, slice):
            return [self._event(i) for i in range(*key.indices(self.n))]
        return self._event(key)

    def __iter__(self):
        return (self._event(i) for i in range(self.n))


def bench_pull(backlog: int, rate_limit: int) -> dict:
    from tests.inputs.stubs import OktaStub

    stub = OktaStub("bench-token", rate_limit=rate_limit)
    now = dt.datetime.now(dt.UTC)
    # a backlog of 1M dicts would take GBs in this process: events are made per page
    stub.events = LazyEvents(backlog, now - dt.timedelta(days=2), 86400 / max(backlog, 1))
    d = Path(tempfile.mkdtemp(prefix="bench-pull-"))
    (d / "mantissa.yaml").write_text(
        f"inputs:\n  okta:\n    type: okta\n    domain: x.okta.com\n    token: bench-token\n"
        f"    base_url: {stub.url}\n    start: 7d\n    limit: 1000\n"
    )
    os.environ.setdefault("OKTA_TOKEN", "bench-token")
    rt = Runtime(d)
    cls, cfg = configured_inputs(rt)["okta"]
    t0 = time.perf_counter()
    res = Runner(rt).cycle("okta", cls, cfg)
    secs = time.perf_counter() - t0
    stub.close()
    pages = -(-backlog // 1000) + 1
    return {
        "backlog": backlog,
        "ok": res.ok,
        "stored": lake_count(d, "okta"),
        "secs": round(secs, 1),
        "events_per_s": round(backlog / secs),
        "stub_rate_limit_req_per_s": rate_limit,
        "floor_secs_from_rate_limit": round(pages / rate_limit, 1),
        "requests": len(stub.requests),
        "throttled_429": stub.throttled,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--syslog", type=int, default=200_000)
    ap.add_argument("--hec", type=int, default=200_000)
    ap.add_argument("--backlog", type=int, default=1_000_000)
    ap.add_argument("--rate-limit", type=int, default=100)
    ap.add_argument("--only", default="syslog,hec,pull")
    a = ap.parse_args()
    only = set(a.only.split(","))
    out: dict = {"cpus": os.cpu_count()}
    if "syslog" in only:
        out["syslog_tcp"] = bench_syslog_tcp(a.syslog)
        print(json.dumps({"syslog_tcp": out["syslog_tcp"]}), file=sys.stderr)
        out["syslog_udp"] = bench_syslog_udp(a.syslog)
        print(json.dumps({"syslog_udp": out["syslog_udp"]}), file=sys.stderr)
    if "hec" in only:
        out["hec"] = bench_hec(a.hec)
        print(json.dumps({"hec": out["hec"]}), file=sys.stderr)
    if "pull" in only:
        out["pull_okta"] = bench_pull(a.backlog, a.rate_limit)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
