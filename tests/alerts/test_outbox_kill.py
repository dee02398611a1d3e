"""The outbox survives a crash: destinations down, then slow; the delivering process is
SIGKILLed mid-delivery and restarted. Every alert arrives everywhere, and where the API
dedups (PagerDuty dedup_key, webhook Idempotency-Key, the file destination) none twice."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml

from tests.alerts import stubs
from tests.alerts.conftest import candidate
from tests.alerts.stubs import StubServer

N_ALERTS = 20


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _deliver(data_dir: Path, timeout: float) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mantissa.cli.main",
            "--data-dir",
            str(data_dir),
            "alerts",
            "deliver",
            "--timeout",
            str(timeout),
            "--format",
            "json",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def _statuses(data_dir: Path) -> dict[str, int]:
    from mantissa.alerts.store import alert_outbox
    from mantissa.state.store import StateStore

    st = StateStore.for_data_dir(data_dir)
    try:
        with st.engine.connect() as c:
            rows = c.execute(
                sa.select(alert_outbox.c.status, sa.func.count()).group_by(alert_outbox.c.status)
            )
            return {r[0]: r[1] for r in rows}
    finally:
        st.close()


@pytest.mark.slow
def test_kill_mid_delivery_then_restart_delivers_everything_once(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    pd_port, hook_port = _port(), _port()
    (data_dir / "mantissa.yaml").write_text(
        yaml.safe_dump(
            {
                "destinations": {
                    "oncall": {
                        "type": "pagerduty",
                        "routing_key": stubs.PD_ROUTING_KEY,
                        "url": f"http://127.0.0.1:{pd_port}/v2/enqueue",
                        "backoff_base_secs": 0.2,
                        "backoff_max_secs": 0.5,
                        "max_attempts": 50,
                    },
                    "soc": {
                        "type": "webhook",
                        "url": f"http://127.0.0.1:{hook_port}/hook",
                        "secret": stubs.WEBHOOK_SECRET,
                        "backoff_base_secs": 0.2,
                        "backoff_max_secs": 0.5,
                        "max_attempts": 50,
                    },
                    "audit": {"type": "file"},
                },
                "routes": [{"match": {}, "to": ["oncall", "soc", "audit"]}],
                "alerts": {
                    "delivery": {"lease_secs": 2, "workers": 2, "batch_size": 6},
                    "enrichment": {"user_context": {"enabled": False}},
                },
            }
        )
    )
    from mantissa.alerts.service import AlertService
    from mantissa.runtime import Runtime

    rt = Runtime(data_dir)
    svc = AlertService(rt)
    alerts = svc.raise_alerts(
        [candidate(dedup_key=f"k{i}", entities={"user": f"u{i}"}) for i in range(N_ALERTS)],
        flush=False,
    )
    ids = {a.id for a in alerts}
    rt.state.close()
    assert len(ids) == N_ALERTS

    # 1. both remote destinations are down: nothing lost, everything still queued
    p = _deliver(data_dir, timeout=2)
    out, err = p.communicate(timeout=120)
    assert p.returncode == 0, err.decode()
    first = json.loads(out)
    assert first["dead"] == 0 and first["delivered"] <= N_ALERTS, first  # only the local file
    down = _statuses(data_dir)
    assert set(down) <= {"pending", "delivered"} and down["pending"] >= 2 * N_ALERTS, down

    # 2. they come back, slow; the delivering process is killed mid-delivery
    pd = stubs.PagerDutyStub()
    recv = stubs.WebhookReceiver()
    pd_srv, hook_srv = StubServer.on_port(pd, pd_port), StubServer.on_port(recv, hook_port)
    pd_srv.delay_secs = hook_srv.delay_secs = 0.15
    try:
        p = _deliver(data_dir, timeout=120)
        deadline = time.time() + 60
        while len(pd_srv.journal) + len(hook_srv.journal) < 8 and time.time() < deadline:
            time.sleep(0.02)
        os.kill(p.pid, signal.SIGKILL)
        p.wait(timeout=30)
        assert p.returncode == -signal.SIGKILL
        mid = _statuses(data_dir)
        assert mid.get("in_flight", 0) > 0, mid  # really killed mid-delivery
        assert len(pd.incidents) + len(recv.accepted) < 2 * N_ALERTS

        # 3. restarted: waits out the dead process's leases, delivers the rest
        pd_srv.delay_secs = hook_srv.delay_secs = 0.0
        p = _deliver(data_dir, timeout=120)
        out, err = p.communicate(timeout=180)
        assert p.returncode == 0, err.decode()
    finally:
        pd_srv.close()
        hook_srv.close()

    assert _statuses(data_dir) == {"delivered": 3 * N_ALERTS}
    # PagerDuty: one incident per alert, each opened once, even if a trigger was re-sent
    assert set(pd.incidents) == ids
    assert all(i["opened"] == 1 for i in pd.incidents.values())
    # the webhook receiver got every alert; retried duplicates carried the same key
    assert {k.split(":")[0] for k in recv.accepted} == ids
    assert len(hook_srv.journal) == len(recv.accepted) + recv.duplicates
    # the file destination: exactly once per alert
    lines = (data_dir / "alerts" / "deliveries.jsonl").read_text().splitlines()
    assert sorted(json.loads(x)["alert"]["id"] for x in lines) == sorted(ids)
