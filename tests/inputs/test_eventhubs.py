"""azure_activity from an Event Hub over the Kafka protocol (SASL PLAIN $ConnectionString),
against a wire-protocol stub of the Event Hubs Kafka endpoint; checkpoints per partition."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import duckdb
import pytest

pytest.importorskip("kafka", reason="kafka-python (the azure extra) is not installed")

from mantissa.inputs.base import CURSOR_NS, Runner, configured_inputs, statuses
from mantissa.lake.deadletter import DeadLetterStore
from mantissa.runtime import Runtime
from tests.inputs.kafka_stub import EventHubsKafkaStub

HUB = "insights-activity-logs"


def activity(i: int, tag: str = "a") -> dict:
    return {
        "time": f"2026-11-29T06:{i // 60 % 60:02d}:{i % 60:02d}.0000000Z",
        "resourceId": f"/SUBSCRIPTIONS/S1/RESOURCEGROUPS/RG/PROVIDERS/MICROSOFT.COMPUTE/VIRTUALMACHINES/VM{i}",
        "operationName": "MICROSOFT.COMPUTE/VIRTUALMACHINES/WRITE",
        "category": "Administrative",
        "resultType": "Success",
        "callerIpAddress": "198.51.100.4",
        "correlationId": f"{tag}-{i:06d}",
        "level": "Information",
        "identity": {"claims": {"name": f"user{i % 3}"}},
        "properties": {"eventCategory": "Administrative"},
    }


def export(records: list[dict]) -> bytes:
    return json.dumps({"records": records}).encode()


@pytest.fixture
def hub():
    s = EventHubsKafkaStub()
    s.create_hub(HUB, partitions=3)
    yield s
    s.close()


def write_config(data_dir: Path, stub: EventHubsKafkaStub, **extra) -> None:
    extra = {"batch_events": 400, **extra}
    opts = "".join(f"    {k}: {v}\n" for k, v in extra.items())
    (data_dir / "mantissa.yaml").write_text(
        "inputs:\n  activity:\n    type: azure_activity\n"
        f"    event_hub: {HUB}\n"
        '    connection_string: "${env:EVENTHUB_CONN}"\n'
        f"    bootstrap_servers: {stub.bootstrap}\n"
        "    security_protocol: SASL_PLAINTEXT\n"
        "    poll_wait: 10s\n" + opts
    )


def lake_ids(data_dir: Path) -> list[str]:
    files = [str(f) for f in (data_dir / "lake").rglob("*.parquet") if "azure_activity" in str(f)]
    if not files:
        return []
    return [
        r[0]
        for r in duckdb.connect()
        .execute("SELECT event_id FROM read_parquet(?, union_by_name=true)", [files])
        .fetchall()
    ]


def cycle(data_dir: Path):
    rt = Runtime(data_dir)
    cls, cfg = configured_inputs(rt)["activity"]
    return rt, Runner(rt).cycle("activity", cls, cfg)


def fill(stub: EventHubsKafkaStub, n_msgs: int, per_msg: int = 3, tag: str = "a") -> int:
    k = 0
    for m in range(n_msgs):
        recs = [activity(k + j, tag) for j in range(per_msg)]
        stub.send(HUB, m % 3, [export(recs)])
        k += per_msg
    return k


def test_backfill_then_steady_state_per_partition(
    data_dir: Path, hub: EventHubsKafkaStub, monkeypatch
) -> None:
    monkeypatch.setenv("EVENTHUB_CONN", hub.connection_string)
    total = fill(hub, 450)  # 150 messages per partition, 3 records each
    write_config(data_dir, hub)
    rt, res = cycle(data_dir)
    assert res.ok, res.error
    assert res.events == total == 1350 and res.batches >= 2
    ids = lake_ids(data_dir)
    assert len(ids) == len(set(ids)) == 1350
    assert rt.state.get(CURSOR_NS, "activity")["offsets"] == {"0": 150, "1": 150, "2": 150}
    # steady state: only the new events, per partition
    hub.send(HUB, 2, [export([activity(i, "b") for i in range(5)])])
    _rt, res2 = cycle(data_dir)
    assert res2.ok and res2.events == 5 and len(lake_ids(data_dir)) == 1355
    st = {s["id"]: s for s in statuses(Runtime(data_dir))}["activity"]
    assert st["last_cursor"]["offsets"]["2"] == 151 and st["events_last_hour"] == 1355
    assert hub.calls["auth_ok"] >= 1


def test_first_run_starts_at_the_start_window(
    data_dir: Path, hub: EventHubsKafkaStub, monkeypatch
) -> None:
    monkeypatch.setenv("EVENTHUB_CONN", hub.connection_string)
    now_ms = int(time.time() * 1000)
    old = now_ms - 10 * 86400_000  # retained by the hub, but older than `start`
    hub.send(HUB, 0, [export([activity(i, "old")]) for i in range(4)], ts_ms=old)
    hub.send(HUB, 0, [export([activity(i, "new")]) for i in range(3)], ts_ms=now_ms - 3600_000)
    hub.send(HUB, 1, [export([activity(i, "old1")]) for i in range(2)], ts_ms=old)
    write_config(data_dir, hub, start="7d")
    rt, res = cycle(data_dir)
    assert res.ok, res.error
    assert res.events == 3  # only what was enqueued within the last 7 days
    assert rt.state.get(CURSOR_NS, "activity")["offsets"] == {"0": 7, "1": 2, "2": 0}


def _cert(tmp: Path) -> tuple[str, str]:
    cert, key = tmp / "hub.pem", tmp / "hub.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return str(cert), str(key)


def test_sasl_ssl_as_on_port_9093(data_dir: Path, tmp_path: Path, monkeypatch) -> None:
    cert, key = _cert(tmp_path)
    hub = EventHubsKafkaStub(tls=(cert, key))
    try:
        hub.create_hub(HUB, partitions=1)
        hub.send(HUB, 0, [export([activity(i)]) for i in range(10)])
        monkeypatch.setenv("EVENTHUB_CONN", hub.connection_string)
        (data_dir / "mantissa.yaml").write_text(
            "inputs:\n  activity:\n    type: azure_activity\n"
            f"    event_hub: {HUB}\n"
            '    connection_string: "${env:EVENTHUB_CONN}"\n'
            f"    bootstrap_servers: {hub.bootstrap}\n"
            f"    ssl_cafile: {cert}\n    timeout: 4s\n"  # security_protocol: SASL_SSL (default)
        )
        _rt, res = cycle(data_dir)
        assert res.ok, res.error
        assert res.events == 10 and hub.calls["auth_ok"] >= 1
        # without our CA the certificate is refused: a clear TLS error, nothing read
        (data_dir / "mantissa.yaml").write_text(
            (data_dir / "mantissa.yaml").read_text().replace(f"    ssl_cafile: {cert}\n", "")
        )
        hub.send(HUB, 0, [export([activity(99, "z")])])
        _rt, res = cycle(data_dir)
        assert (
            not res.ok and "TLS handshake" in res.error and "CERTIFICATE_VERIFY_FAILED" in res.error
        )
        assert len(lake_ids(data_dir)) == 10
    finally:
        hub.close()


def test_wrong_connection_string_is_a_clear_auth_error(
    data_dir: Path, hub: EventHubsKafkaStub, monkeypatch
) -> None:
    wrong = hub.connection_string.replace("c2VjcmV0LWtleQ==", "d3Jvbmc=")
    monkeypatch.setenv("EVENTHUB_CONN", wrong)
    fill(hub, 3)
    write_config(data_dir, hub, timeout="4s")  # the client retries a refused login until then
    rt, res = cycle(data_dir)
    assert not res.ok and res.error_code == "input_auth_failed", res.error
    assert "d3Jvbmc=" not in res.error  # the key never shows
    assert hub.calls["auth_failed"] >= 1 and hub.calls["fetch"] == 0
    assert {s["id"]: s for s in statuses(rt)}["activity"]["state"] == "auth_failed"


def test_malformed_events_dead_lettered_with_location(
    data_dir: Path, hub: EventHubsKafkaStub, monkeypatch
) -> None:
    monkeypatch.setenv("EVENTHUB_CONN", hub.connection_string)
    hub.send(HUB, 0, [export([activity(1)]), b"{not json", export([activity(2)])])
    write_config(data_dir, hub)
    rt, res = cycle(data_dir)
    assert res.ok and res.events == 2 and res.rejected == 1
    (dead,) = list(DeadLetterStore(rt.storage).entries("azure_activity"))
    assert dead["file"] == f"{HUB}/0@1" and dead["record"] == "{not json"
    assert rt.state.get(CURSOR_NS, "activity")["offsets"]["0"] == 3


def test_expired_offsets_are_reported_not_skipped_silently(
    data_dir: Path, hub: EventHubsKafkaStub, monkeypatch
) -> None:
    monkeypatch.setenv("EVENTHUB_CONN", hub.connection_string)
    fill(hub, 6)  # two messages per partition
    write_config(data_dir, hub)
    rt, res = cycle(data_dir)
    assert res.ok and rt.state.get(CURSOR_NS, "activity")["offsets"]["0"] == 2
    hub.send(HUB, 0, [export([activity(900 + i)]) for i in range(5)])  # offsets 2-6
    # an outage longer than the hub's retention: offsets 2-4 of partition 0 expire unread
    hub.expire(HUB, 0, 5)
    _rt, res = cycle(data_dir)
    assert not res.ok and "expired before they were read" in res.error
    assert "partition 0: offsets 2-4" in res.error
    assert Runtime(data_dir).state.get(CURSOR_NS, "activity")["offsets"]["0"] == 7


@pytest.mark.slow
def test_kill_9_between_lake_write_and_checkpoint(
    data_dir: Path, hub: EventHubsKafkaStub, monkeypatch
) -> None:
    monkeypatch.setenv("EVENTHUB_CONN", hub.connection_string)
    total = fill(hub, 600, per_msg=2)
    write_config(data_dir, hub, batch_events=100)
    script = textwrap.dedent(
        f"""
        import os, signal, sys
        from mantissa.state import store
        from mantissa.inputs.base import CURSOR_NS
        real_put, seen = store.StateStore.put, []
        def put(self, ns, key, value, conn=None):
            if ns == CURSOR_NS and conn is None:
                seen.append(1)
                if len(seen) == 2:
                    os.kill(os.getpid(), signal.SIGKILL)
            return real_put(self, ns, key, value, conn)
        store.StateStore.put = put
        from mantissa.cli.main import run
        sys.exit(run(["--data-dir", {str(data_dir)!r}, "collect", "--once", "activity"]))
        """
    )
    env = {**os.environ, "EVENTHUB_CONN": hub.connection_string}
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, timeout=120)
    assert proc.returncode == -9, proc.stderr.decode()[-2000:]
    first = len(lake_ids(data_dir))
    assert 0 < first < total
    proc2 = subprocess.run(
        [
            sys.executable,
            "-m",
            "mantissa.cli.main",
            "--data-dir",
            str(data_dir),
            "collect",
            "--once",
            "activity",
            "--format",
            "json",
        ],
        env=env,
        capture_output=True,
        timeout=120,
    )
    assert proc2.returncode == 0, proc2.stderr.decode()[-2000:]
    ids = lake_ids(data_dir)
    assert len(ids) == len(set(ids)) == total  # no gap, no duplicate
