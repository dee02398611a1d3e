"""Splunk HEC formats (batched concatenated objects, /raw, channels) and delivery-scoped
event ids: a retry of the same request dedups, identical lines of distinct deliveries (or
within one) are all kept. Also Splunk's own Node.js HEC client (npm ``splunk-logging``)
shipping a file, when scripts/test-deps.sh could install it."""

from __future__ import annotations

import json
import logging
import logging.handlers
import os
import shutil
import socket
import subprocess
import time
import uuid
from pathlib import Path

import duckdb
import httpx
import pytest

from mantissa.api.app import create_app
from mantissa.api.auth import TokenStore
from mantissa.inputs.receiver import SyslogListener
from mantissa.inputs.syslog import SyslogServer
from mantissa.runtime import Runtime
from tests.api.conftest import start_server

HEC_CLIENT_DIR = Path(
    os.environ.get("MANTISSA_HEC_CLIENT_DIR") or Path.home() / ".cache" / "mantissa-hec-client"
)


def lake(data_dir: Path, source: str) -> list[tuple]:
    files = [str(f) for f in (data_dir / "lake").rglob("*.parquet") if f"logs/{source}/" in str(f)]
    if not files:
        return []
    return (
        duckdb.connect()
        .execute(
            "SELECT event_id, message, host, raw FROM read_parquet(?, union_by_name=true)",
            [files],
        )
        .fetchall()
    )


@pytest.fixture
def env(data_dir: Path):
    (data_dir / "mantissa.yaml").write_text(
        "receivers:\n  http:\n    hec:\n      sourcetypes: {'syslog': syslog}\n"
    )
    rt = Runtime(data_dir)
    token = TokenStore(rt.state).create("ingest", name="shipper")[1]
    srv = start_server(create_app(rt))
    yield srv.url, token, data_dir
    srv.stop()


def test_identical_events_kept_and_retries_deduplicated(env) -> None:
    url, token, data_dir = env
    h = {"Authorization": f"Splunk {token}"}
    reset = {"time": 1764396000, "host": "lb-1", "event": "connection reset by peer"}
    # one request, batched as concatenated objects: three identical events + one other
    body = json.dumps(reset) * 3 + json.dumps({**reset, "event": "connection accepted"})
    r = httpx.post(f"{url}/services/collector/event", content=body, headers=h)
    assert r.json() == {"text": "Success", "code": 0}
    assert len(lake(data_dir, "json_lines")) == 4
    # the shipper did not see the answer and sends the same request again: no new rows
    r = httpx.post(f"{url}/services/collector/event", content=body, headers=h)
    assert r.status_code == 200 and len(lake(data_dir, "json_lines")) == 4
    # the same lines in a genuinely new delivery (another channel): kept
    ch = str(uuid.uuid4())
    r = httpx.post(f"{url}/services/collector/event?channel={ch}", content=body, headers=h)
    assert r.status_code == 200 and len(lake(data_dir, "json_lines")) == 8
    # that channel's retry: deduplicated (header and query string name the same channel)
    r = httpx.post(
        f"{url}/services/collector/event",
        content=body,
        headers={**h, "X-Splunk-Request-Channel": ch},
    )
    assert r.status_code == 200 and len(lake(data_dir, "json_lines")) == 8
    rows = lake(data_dir, "json_lines")
    assert sum(1 for row in rows if row[1] == "connection reset by peer") == 6
    assert len({row[0] for row in rows}) == 8
    # a channel must be a GUID (HEC code 11)
    r = httpx.post(f"{url}/services/collector/event?channel=nope", content=body, headers=h)
    assert r.status_code == 400 and r.json()["code"] == 11


def test_event_without_time_gets_the_receipt_time(env) -> None:
    url, token, data_dir = env
    before = time.time()
    r = httpx.post(
        f"{url}/services/collector/event",
        content=json.dumps({"event": {"action": "login", "user": "bob"}}),
        headers={"Authorization": f"Splunk {token}"},
    )
    assert r.status_code == 200 and r.json()["code"] == 0
    (row,) = lake(data_dir, "json_lines")
    assert before - 1 <= json.loads(row[3])["time"] <= time.time() + 1


def test_raw_endpoint_lines_and_query_metadata(env) -> None:
    url, token, data_dir = env
    h = {"Authorization": f"Splunk {token}", "X-Splunk-Request-Channel": str(uuid.uuid4())}
    body = b"connection reset by peer\nconnection reset by peer\r\n\nworker 3 restarted\n"
    r = httpx.post(
        f"{url}/services/collector/raw?host=app-7&sourcetype=app:log&time=1764396000",
        content=body,
        headers=h,
    )
    assert r.json() == {"text": "Success", "code": 0}
    rows = lake(data_dir, "json_lines")
    assert sorted(row[1] for row in rows) == [
        "connection reset by peer",
        "connection reset by peer",
        "worker 3 restarted",
    ]
    assert {row[2] for row in rows} == {"app-7"}
    # a mapped sourcetype: lines go to that parser as they are (syslog here)
    line = b"<34>1 2026-11-29T06:00:00Z fw-1 sshd 42 - - Failed password for root"
    r = httpx.post(
        f"{url}/services/collector/raw?sourcetype=syslog", content=line + b"\n" + line, headers=h
    )
    assert r.status_code == 200
    got = lake(data_dir, "syslog")
    assert len(got) == 2 and {row[2] for row in got} == {"fw-1"}
    r = httpx.post(f"{url}/services/collector/raw?time=soon", content=b"x\n", headers=h)
    assert r.status_code == 400 and r.json()["code"] == 6
    r = httpx.post(f"{url}/services/collector/raw", content=b"x\n")
    assert r.status_code == 401 and r.json()["code"] == 2
    r = httpx.post(
        f"{url}/services/collector/raw", content=b"x\n", headers={"Authorization": "Splunk nope"}
    )
    assert r.status_code == 403 and r.json()["code"] == 4
    r = httpx.post(
        f"{url}/services/collector/raw/1.0", content=b"x\n", headers={"Authorization": "Basic x"}
    )
    assert r.status_code == 401 and r.json()["code"] == 3


def test_ingest_endpoint_idempotency_key(env) -> None:
    url, token, data_dir = env
    h = {"Authorization": f"Bearer {token}"}
    body = b"<13>Nov 29 06:00:00 db-1 app: connection reset by peer\n" * 2
    for key in ("k1", "k1", "k2"):
        r = httpx.post(f"{url}/ingest/syslog", content=body, headers={**h, "Idempotency-Key": key})
        assert r.status_code == 200, r.text
    # k1 twice (a retry) + k2 (a new delivery of the same lines): 4 rows
    assert len(lake(data_dir, "syslog")) == 4


def test_syslog_identical_lines_in_separate_batches_are_kept(data_dir: Path) -> None:
    rt = Runtime(data_dir)
    s = SyslogServer(rt, "dup", SyslogListener(protocol="tcp", port=0, flush_secs=0.1))
    s.start()
    try:
        h = logging.handlers.SysLogHandler(address=s.address, socktype=socket.SOCK_STREAM)
        h.setFormatter(logging.Formatter("haproxy[7]: %(message)s"))
        lg = logging.getLogger("t.dup")
        lg.handlers, lg.propagate = [h], False
        lg.setLevel(logging.INFO)
        for batch in range(3):
            for _ in range(2):
                lg.info("connection reset by peer")  # identical, same second
            deadline = time.monotonic() + 20
            while s.written < 2 * (batch + 1) and time.monotonic() < deadline:
                time.sleep(0.05)  # let this batch be flushed before the next one
        h.close()
    finally:
        s.close()
    rows = lake(data_dir, "syslog")
    assert len(rows) == 6 and len({r[0] for r in rows}) == 6


# -- a real HEC client: Splunk's splunk-logging (npm), as scripts/test-deps.sh installs it --

SHIP_JS = r"""
const fs = require("fs");
const SplunkLogger = require("splunk-logging").Logger;
const [url, token, file] = process.argv.slice(2);
// batches of 50 events (sent when full) and a final flush of the rest
const logger = new SplunkLogger({ token, url, maxBatchCount: 50, maxRetries: 3 });
let failed = 0;
let batches = 0;
logger.error = (err) => { failed += 1; console.error("send failed:", err.message); };
const lines = fs.readFileSync(file, "utf8").split("\n").filter((l) => l.length);
const done = (err, resp, body) => { batches += 1; if (err || !body || body.code !== 0) failed += 1; };
for (const line of lines) {
  logger.send({ message: line, metadata: { host: "shipper-1", sourcetype: "app:log" } }, done);
}
logger.flush(done);
process.on("exit", () => {
  console.log(JSON.stringify({ sent: lines.length, batches, failed }));
  if (failed) process.exitCode = 1;
});
"""


@pytest.mark.slow
def test_splunk_logging_client_ships_a_file(env, tmp_path: Path) -> None:
    node = shutil.which("node")
    mod = HEC_CLIENT_DIR / "node_modules" / "splunk-logging"
    if not node or not mod.exists():
        pytest.skip(
            f"Splunk's HEC client (npm splunk-logging) is not in {HEC_CLIENT_DIR}: "
            "run scripts/test-deps.sh"
        )
    url, token, data_dir = env
    log = tmp_path / "app.log"
    lines = [f"request {i} served in {i % 17} ms" for i in range(480)]
    lines += ["connection reset by peer"] * 30  # identical lines, sent within the same ms
    log.write_text("\n".join(lines) + "\n")
    script = tmp_path / "ship.js"
    script.write_text(SHIP_JS)
    proc = subprocess.run(
        [node, str(script), url, token, str(log)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "NODE_PATH": str(HEC_CLIENT_DIR / "node_modules")},
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out == {"sent": 510, "batches": 11, "failed": 0}
    rows = lake(data_dir, "json_lines")
    assert len(rows) == 510  # every line, the 30 identical ones included
    messages = [json.loads(r[3])["message"] for r in rows]
    assert sorted(messages) == sorted(lines)
    assert {r[2] for r in rows} == {"shipper-1"}
