"""GCP Pub/Sub inputs (gcp_audit, gcp_vpc_flow) over REST: a stub enforcing the documented
request shapes and service-account OAuth, and Google's own Pub/Sub emulator when present."""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import duckdb
import httpx
import pytest

from mantissa.inputs.base import CURSOR_NS, Runner, configured_inputs, statuses
from mantissa.lake.deadletter import DeadLetterStore
from mantissa.lake.ingest import Pipeline
from mantissa.runtime import Runtime

pytest.importorskip("cryptography", reason="service-account auth needs cryptography")

from tests.inputs.pubsub_stub import PubSubStub, rsa_key

EMULATOR = "/usr/lib/google-cloud-sdk/platform/pubsub-emulator/bin/cloud-pubsub-emulator"


def audit_entry(i: int, tag: str = "a") -> dict:
    return {
        "insertId": f"{tag}{i:06d}",
        "logName": "projects/proj-1/logs/cloudaudit.googleapis.com%2Factivity",
        "timestamp": f"2026-11-29T06:{i // 60 % 60:02d}:{i % 60:02d}.000Z",
        "receiveTimestamp": "2026-11-29T06:59:59.000Z",
        "severity": "NOTICE",
        "resource": {"type": "gce_instance", "labels": {"project_id": "proj-1"}},
        "protoPayload": {
            "@type": "type.googleapis.com/google.cloud.audit.AuditLog",
            "serviceName": "compute.googleapis.com",
            "methodName": "v1.compute.instances.insert",
            "resourceName": f"projects/proj-1/zones/us-central1-a/instances/vm-{i}",
            "authenticationInfo": {"principalEmail": f"user{i % 5}@example.com"},
            "requestMetadata": {"callerIp": "198.51.100.9"},
        },
    }


def flow_entry(i: int) -> dict:
    return {
        "insertId": f"flow{i:06d}",
        "logName": "projects/proj-1/logs/compute.googleapis.com%2Fvpc_flows",
        "timestamp": "2026-11-29T06:00:00.000Z",
        "resource": {"type": "gce_subnetwork", "labels": {"project_id": "proj-1"}},
        "jsonPayload": {
            "connection": {
                "src_ip": "10.0.0.2",
                "src_port": 40000 + i,
                "dest_ip": "10.0.0.3",
                "dest_port": 443,
                "protocol": 6,
            },
            "reporter": "SRC",
            "bytes_sent": "1200",
            "packets_sent": "4",
            "start_time": "2026-11-29T05:59:58Z",
            "end_time": "2026-11-29T06:00:00Z",
        },
    }


@pytest.fixture(scope="module")
def key():
    return rsa_key()


@pytest.fixture
def stub(key):
    sa, pub = key
    s = PubSubStub(pub, sa["client_email"], ack_deadline=10.0)
    yield s
    s.close()


def write_config(data_dir: Path, stub: PubSubStub, sa: dict, typ: str = "gcp_audit", **extra):
    keyfile = data_dir / "sa.json"
    keyfile.write_text(json.dumps({**sa, "token_uri": stub.token_uri}))
    opts = "".join(f"    {k}: {v}\n" for k, v in extra.items())
    (data_dir / "mantissa.yaml").write_text(
        "inputs:\n"
        "  gcp:\n"
        f"    type: {typ}\n"
        f"    subscription: {PubSubStub.SUB}\n"
        f"    credentials_file: {keyfile}\n"
        f'    base_url: "{stub.url}"\n'
        "    max_messages: 1000\n"
        "    batch_messages: 1000\n"
        "    max_backoff: 1s\n" + opts
    )


def lake_ids(data_dir: Path, source: str = "gcp_audit") -> list[str]:
    files = [str(f) for f in (data_dir / "lake").rglob("*.parquet")]
    if not files:
        return []
    rows = (
        duckdb.connect()
        .execute(
            "SELECT event_id FROM read_parquet(?, union_by_name=true) WHERE source=?",
            [files, source],
        )
        .fetchall()
    )
    return [r[0] for r in rows]


def run_cycle(data_dir: Path, patch_cfg=None):
    rt = Runtime(data_dir)
    cls, cfg = configured_inputs(rt)["gcp"]
    if patch_cfg:
        patch_cfg(cfg)
    return rt, Runner(rt).cycle("gcp", cls, cfg)


def payloads(n: int, tag: str = "a") -> list[bytes]:
    return [json.dumps(audit_entry(i, tag)).encode() for i in range(n)]


def test_backfill_then_steady_state(data_dir: Path, stub: PubSubStub, key) -> None:
    stub.publish(payloads(2500))
    write_config(data_dir, stub, key[0])
    rt, res = run_cycle(data_dir)
    assert res.ok, res.error
    assert res.events == 2500 and res.batches == 3
    ids = lake_ids(data_dir)
    assert len(ids) == len(set(ids)) == 2500
    assert stub.backlog() == 0 and set(stub.deliveries().values()) == {1}
    # every request carried the documented shape; acks only after the lake write
    assert stub.calls["acknowledge"] == 3 and stub.token_grants == 1
    cur = rt.state.get(CURSOR_NS, "gcp")
    assert cur["messages"] == 2500 and cur["last_message_id"] == "2500"
    # steady state: new messages only
    stub.publish(payloads(7, "b"))
    _rt, res2 = run_cycle(data_dir)
    assert res2.ok and res2.events == 7
    assert len(lake_ids(data_dir)) == 2507
    st = {s["id"]: s for s in statuses(Runtime(data_dir))}["gcp"]
    assert st["state"] == "ok" and st["events_last_hour"] == 2507
    assert st["last_cursor"]["messages"] == 2507 and st["last_event_time"]


def test_vpc_flow_type(data_dir: Path, stub: PubSubStub, key) -> None:
    stub.publish([json.dumps(flow_entry(i)).encode() for i in range(30)])
    write_config(data_dir, stub, key[0], typ="gcp_vpc_flow")
    _rt, res = run_cycle(data_dir)
    assert res.ok and res.events == 30
    assert len(lake_ids(data_dir, "gcp_vpc_flow")) == 30


def test_429_and_503_back_off_then_deliver(data_dir: Path, stub: PubSubStub, key) -> None:
    stub.publish(payloads(300))
    stub.throttle_next = 3
    stub.unavailable_next = 2
    write_config(data_dir, stub, key[0])
    _rt, res = run_cycle(data_dir)
    assert res.ok, res.error
    assert len(lake_ids(data_dir)) == 300 and stub.backlog() == 0


def test_503_outage_is_an_input_error_and_nothing_is_lost(
    data_dir: Path, stub: PubSubStub, key
) -> None:
    stub.publish(payloads(50))
    stub.unavailable_next = 100
    write_config(data_dir, stub, key[0], max_retries=2)
    rt, res = run_cycle(data_dir)
    assert not res.ok and "UNAVAILABLE" in res.error
    assert {s["id"]: s for s in statuses(rt)}["gcp"]["last_error"]["code"] == "input_error"
    stub.unavailable_next = 0
    _rt, res2 = run_cycle(data_dir)
    assert res2.ok and len(lake_ids(data_dir)) == 50


def test_expired_token_is_refreshed_once(data_dir: Path, stub: PubSubStub, key) -> None:
    stub.publish(payloads(2000))
    write_config(data_dir, stub, key[0])
    real_put = Pipeline.ingest_bytes

    def revoke_after_first_write(self, *a, **kw):
        real_put(self, *a, **kw)
        stub.revoke_tokens()  # the access token dies mid-cycle (expiry, clock skew)

    Pipeline.ingest_bytes = revoke_after_first_write
    try:
        _rt, res = run_cycle(data_dir)
    finally:
        Pipeline.ingest_bytes = real_put
    assert res.ok, res.error
    assert stub.token_grants >= 2 and len(lake_ids(data_dir)) == 2000 and stub.backlog() == 0


def test_refused_key_is_a_clear_auth_error(data_dir: Path, stub: PubSubStub, key) -> None:
    other, _pub = rsa_key()  # a key the token endpoint does not know (deleted / rotated)
    stub.publish(payloads(5))
    write_config(data_dir, stub, {**other, "client_email": key[0]["client_email"]})
    rt, res = run_cycle(data_dir)
    assert not res.ok and res.error_code == "input_auth_failed"
    assert "refused the service account" in res.error and "BEGIN" not in res.error
    assert stub.calls["pull"] == 0 and stub.backlog() == 5
    assert {s["id"]: s for s in statuses(rt)}["gcp"]["state"] == "auth_failed"


def test_malformed_messages_are_dead_lettered_and_acked(
    data_dir: Path, stub: PubSubStub, key
) -> None:
    stub.publish(payloads(20))
    bad_b64 = stub.publish_raw("%%% not base64 %%%")
    (not_json,) = stub.publish([b"connection reset by peer"])
    (scalar,) = stub.publish([b"[1, 2]"])
    write_config(data_dir, stub, key[0])
    rt, res = run_cycle(data_dir)
    assert res.ok, res.error
    assert res.events == 20 and res.rejected == 3 and len(lake_ids(data_dir)) == 20
    assert stub.backlog() == 0  # poison messages do not block the subscription
    dead = list(DeadLetterStore(rt.storage).entries("gcp_audit"))
    by_reason = {d["reason"].split(":")[0]: d for d in dead}
    assert set(by_reason) == {"invalid base64", "invalid JSON", "not a JSON object"}
    assert by_reason["invalid base64"]["file"].endswith(f"#{bad_b64}")
    assert by_reason["invalid JSON"]["file"].endswith(f"#{not_json}")
    assert (
        by_reason["invalid JSON"]["record"]
        == base64.b64encode(b"connection reset by peer").decode()
    )
    assert by_reason["not a JSON object"]["file"].endswith(f"#{scalar}")
    st = {s["id"]: s for s in statuses(rt)}["gcp"]
    assert st["last_error"]["code"] == "rejected_rows" and st["errors_last_hour"] >= 1


def test_failed_write_nacks_for_immediate_redelivery(data_dir: Path, stub: PubSubStub, key) -> None:
    stub.publish(payloads(40))
    write_config(data_dir, stub, key[0])
    real = Pipeline.ingest_bytes

    def boom(self, *a, **kw):
        raise OSError("disk full")

    Pipeline.ingest_bytes = boom
    try:
        _rt, res = run_cycle(data_dir)
    finally:
        Pipeline.ingest_bytes = real
    assert not res.ok and "disk full" in res.error
    assert stub.calls["acknowledge"] == 0 and (40, 0) in stub.modacks  # nack
    _rt, res2 = run_cycle(data_dir)  # at once, without waiting for the deadline
    assert res2.ok and len(lake_ids(data_dir)) == 40


def test_lease_is_extended_while_a_slow_batch_is_written(
    data_dir: Path, stub: PubSubStub, key
) -> None:
    stub.ack_deadline = 1.0  # the subscription's default deadline is short
    stub.publish(payloads(1500))
    write_config(data_dir, stub, key[0], batch_messages=1500)
    real = Pipeline.ingest_bytes

    def slow(self, *a, **kw):
        time.sleep(3.5)  # a big batch: longer than our (test) deadline of 2 s
        return real(self, *a, **kw)

    def short_deadline(cfg):
        cfg.ack_deadline = 2.0  # renew every second (production: >= 10 s)

    Pipeline.ingest_bytes = slow
    try:
        _rt, res = run_cycle(data_dir, short_deadline)
    finally:
        Pipeline.ingest_bytes = real
    assert res.ok, res.error
    # never redelivered: the lease outlived the write, then the ack came
    assert set(stub.deliveries().values()) == {1} and stub.backlog() == 0
    renewals = [m for m in stub.modacks if m[1] == 2]
    assert len(renewals) >= 4  # 2 on receipt (two pulls) + at least 2 renewals


@pytest.mark.slow
def test_kill_9_between_lake_write_and_ack(data_dir: Path, stub: PubSubStub, key) -> None:
    stub.ack_deadline = 2.0
    stub.publish(payloads(3000))
    write_config(data_dir, stub, key[0], ack_deadline="10s")
    script = textwrap.dedent(
        f"""
        import os, signal, sys
        from mantissa.inputs import _pubsub
        real, seen = _pubsub.PubSub.acknowledge, []
        def acknowledge(self, ids):
            seen.append(1)
            if len(seen) == 2:  # batch 2 is in the lake and checkpointed, not acked
                os.kill(os.getpid(), signal.SIGKILL)
            return real(self, ids)
        _pubsub.PubSub.acknowledge = acknowledge
        from mantissa.cli.main import run
        sys.exit(run(["--data-dir", {str(data_dir)!r}, "collect", "--once", "gcp"]))
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=120)
    assert proc.returncode == -9, proc.stderr.decode()[-2000:]
    assert len(lake_ids(data_dir)) == 2000
    assert stub.backlog() == 2000  # batch 1 acked; batch 2 and 3 still on the subscription
    time.sleep(10.5)  # the killed process's lease runs out; Pub/Sub redelivers
    proc2 = subprocess.run(
        [
            sys.executable,
            "-m",
            "mantissa.cli.main",
            "--data-dir",
            str(data_dir),
            "collect",
            "--once",
            "gcp",
            "--format",
            "json",
        ],
        capture_output=True,
        timeout=120,
    )
    assert proc2.returncode == 0, proc2.stderr.decode()[-2000:]
    ids = lake_ids(data_dir)
    assert len(ids) == len(set(ids)) == 3000  # redelivered batch deduplicated: no gap, no dup
    assert stub.backlog() == 0
    assert max(stub.deliveries().values()) == 2


def test_config_errors_are_clear(data_dir: Path) -> None:
    (data_dir / "mantissa.yaml").write_text(
        "inputs:\n  gcp:\n    type: gcp_audit\n    subscription: projects/p/subscriptions/s\n"
    )
    _rt, res = run_cycle(data_dir)
    assert not res.ok and "credentials_file" in res.error
    (data_dir / "mantissa.yaml").write_text(
        "inputs:\n  gcp:\n    type: gcp_audit\n    subscription: my-sub\n    emulator: true\n"
    )
    with pytest.raises(Exception, match="projects/PROJECT/subscriptions/NAME"):
        configured_inputs(Runtime(data_dir))


# -- Google's Pub/Sub emulator (REST on the same port), when the machine has it ------------


@pytest.fixture(scope="module")
def emulator():
    if not os.path.exists(EMULATOR) or not shutil.which("java"):
        pytest.skip("the Pub/Sub emulator (google-cloud-cli-pubsub-emulator) is not installed")
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    proc = subprocess.Popen(
        [EMULATOR, "--host=127.0.0.1", f"--port={port}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 90
        while time.time() < deadline:
            try:
                if httpx.get(url, timeout=1).status_code < 500:
                    break
            except httpx.HTTPError:
                time.sleep(0.3)
        else:
            pytest.skip("the Pub/Sub emulator did not start within 90 s")
        yield url
    finally:
        proc.terminate()
        proc.wait(15)


@pytest.mark.slow
def test_against_the_pubsub_emulator(data_dir: Path, emulator: str) -> None:
    v1 = f"{emulator}/v1/projects/proj-1"
    topic, sub = f"t-{uuid.uuid4().hex[:8]}", f"s-{uuid.uuid4().hex[:8]}"
    assert httpx.put(f"{v1}/topics/{topic}").status_code == 200
    r = httpx.put(
        f"{v1}/subscriptions/{sub}",
        json={"topic": f"projects/proj-1/topics/{topic}", "ackDeadlineSeconds": 10},
    )
    assert r.status_code == 200, r.text
    msgs = [{"data": base64.b64encode(p).decode()} for p in payloads(1500)]
    msgs.append({"data": base64.b64encode(b"garbage").decode()})
    for i in range(0, len(msgs), 500):
        assert httpx.post(f"{v1}/topics/{topic}:publish", json={"messages": msgs[i : i + 500]})
    (data_dir / "mantissa.yaml").write_text(
        "inputs:\n  gcp:\n    type: gcp_audit\n"
        f"    subscription: projects/proj-1/subscriptions/{sub}\n"
        f'    emulator: true\n    base_url: "{emulator}"\n    batch_messages: 1000\n    pull_wait: 1s\n'
    )
    _rt, res = run_cycle(data_dir)
    assert res.ok, res.error
    assert res.events == 1500 and res.rejected == 1
    assert len(set(lake_ids(data_dir))) == 1500
    left = httpx.post(
        f"{v1}/subscriptions/{sub}:pull", json={"maxMessages": 100, "returnImmediately": True}
    ).json()
    assert not left.get("receivedMessages")  # everything was acknowledged
