"""``mantissa tokens ...`` and ``mantissa serve`` as a user runs them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import httpx
import pytest

from tests.api.conftest import free_port


def test_tokens_create_prints_id_role_token_once(cli):
    r = cli("tokens", "create", "--role", "analyst", "--name", "soc-laptop", "--format", "json")
    assert r.code == 0, r.err
    out = json.loads(r.out)
    assert set(out) == {"id", "role", "token"}
    assert (
        out["role"] == "analyst"
        and out["id"].startswith("tok_")
        and out["token"].startswith("mnt_")
    )
    listed = cli("tokens", "list", "--format", "json")
    rows = json.loads(listed.out)
    assert [(t["id"], t["name"], t["role"], t["active"]) for t in rows] == [
        (out["id"], "soc-laptop", "analyst", True)
    ]
    assert out["token"] not in listed.out


def test_tokens_table_output_and_revoke(cli):
    created = json.loads(cli("tokens", "create", "--role", "ingest", "--format", "json").out)
    r = cli("tokens", "create", "--role", "viewer")
    assert r.code == 0 and "mnt_" in r.out and "not shown again" in r.err
    r = cli("tokens", "revoke", created["id"], "--format", "json")
    assert r.code == 0 and json.loads(r.out)["revoked_at"]
    active = json.loads(cli("tokens", "list", "--format", "json").out)
    assert created["id"] not in {t["id"] for t in active}
    everything = json.loads(cli("tokens", "list", "--all", "--format", "json").out)
    assert created["id"] in {t["id"] for t in everything}
    assert "tok_" in cli("tokens", "list").out


def test_tokens_errors(cli):
    r = cli("tokens", "create", "--role", "superuser")
    assert r.code == 2 and "unknown role" in r.err
    r = cli("tokens", "revoke", "tok_nope")
    assert r.code == 2 and "not found" in r.err


@pytest.mark.slow
def test_serve_runs_api_console_and_stops_cleanly(data_dir):
    port = free_port()
    env = {**os.environ, "MANTISSA_HOME": str(data_dir)}
    made = subprocess.run(
        [
            sys.executable,
            "-m",
            "mantissa.cli.main",
            "tokens",
            "create",
            "--role",
            "viewer",
            "-f",
            "json",
        ],
        capture_output=True,
        env=env,
        timeout=120,
        check=True,
    )
    token = json.loads(made.stdout)["token"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "mantissa.cli.main", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(base + "/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, proc.stderr.read1().decode() if proc.stderr else ""
            assert proc.poll() is None, "serve exited"
            time.sleep(0.2)
        assert httpx.get(base + "/config").status_code == 401
        cfg = httpx.get(base + "/config", headers={"Authorization": f"Bearer {token}"}).json()
        assert cfg["features"]["siem"] is True
        login = httpx.get(base + "/console/login")
        assert login.status_code == 200 and "Sign in" in login.text
        assert login.headers["x-frame-options"] == "DENY"
        metrics = httpx.get(base + "/metrics", headers={"Authorization": f"Bearer {token}"})
        assert "mantissa_background_service_up" in metrics.text
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    # uvicorn shuts down gracefully, then re-raises the signal it caught (exit -15)
    assert code in (0, -signal.SIGTERM)
    err = proc.stderr.read().decode() if proc.stderr else ""
    assert "Application shutdown complete" in err
    assert "Traceback" not in err


def test_demo_console_step_gives_one_working_token(runtime):
    from rich.console import Console

    from mantissa.api.auth import TokenStore
    from mantissa.api.demo import DEMO_TOKEN_NAME, console_step
    from mantissa.demo import DemoContext
    from mantissa.demo.scenario import Scenario

    out = Console(record=True, width=200)
    for _ in range(2):  # running the demo again replaces the token
        ctx = DemoContext(runtime=runtime, scenario=Scenario(), console=out, results={})
        console_step(ctx)
    active = [t for t in TokenStore(runtime.state).list() if t.name == DEMO_TOKEN_NAME]
    assert len(active) == 1 and active[0].role == "analyst"
    text = out.export_text()
    secret = text.rsplit("mnt_", 1)[1].split()[0]
    assert TokenStore(runtime.state).authenticate("mnt_" + secret).token_id == active[0].id
    assert "serve" in text and "/console" in text
