"""Okta input over real HTTP against a stub enforcing SSWS auth, Link paging and rate limits."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import duckdb
import pytest

from mantissa.inputs.base import CURSOR_NS, Runner, configured_inputs
from mantissa.runtime import Runtime
from tests.inputs.stubs import OktaStub

TOKEN = "00okta-test-token"


@pytest.fixture
def stub():
    s = OktaStub(TOKEN)
    yield s
    s.close()


def write_config(data_dir: Path, stub: OktaStub, **extra: str) -> None:
    opts = "".join(f"    {k}: {v}\n" for k, v in extra.items())
    (data_dir / "mantissa.yaml").write_text(
        "inputs:\n"
        "  okta_prod:\n"
        "    type: okta\n"
        "    domain: example.okta.com\n"
        '    token: "${env:OKTA_TOKEN}"\n'
        "    interval: 60s\n"
        "    start: 7d\n"
        f'    base_url: "{stub.url}"\n'
        "    limit: 200\n"
        "    max_backoff: 3s\n" + opts
    )


def lake_ids(data_dir: Path) -> list[str]:
    files = list((data_dir / "lake").rglob("*.parquet"))
    if not files:
        return []
    con = duckdb.connect()
    rows = con.execute(
        "SELECT event_id FROM read_parquet(?, union_by_name=true) WHERE source='okta'",
        [[str(f) for f in files]],
    ).fetchall()
    return [r[0] for r in rows]


def cycle(data_dir: Path):
    rt = Runtime(data_dir)
    cls, cfg = configured_inputs(rt)["okta_prod"]
    return rt, Runner(rt).cycle("okta_prod", cls, cfg)


@pytest.fixture(autouse=True)
def token_env(monkeypatch):
    monkeypatch.setenv("OKTA_TOKEN", TOKEN)


def test_backfill_then_steady_state(data_dir: Path, stub: OktaStub) -> None:
    now = dt.datetime.now(dt.UTC)
    stub.add_events(50, now - dt.timedelta(days=9), dt.timedelta(minutes=1))  # before `start`
    ids = stub.add_events(950, now - dt.timedelta(days=3), dt.timedelta(minutes=2))
    write_config(data_dir, stub)
    rt, res = cycle(data_dir)
    assert res.ok, res.error
    assert res.events == 950
    assert sorted(lake_ids(data_dir)) == sorted(ids)
    # paging followed the Link header with limit=200: 5 full pages and an empty one
    assert res.batches == 5
    cursor = rt.state.get(CURSOR_NS, "okta_prod")
    assert cursor["after"] == "c1000"
    # steady state: only the new events, no re-reads
    more = stub.add_events(30, now - dt.timedelta(minutes=30), dt.timedelta(seconds=10))
    n_before = len(stub.requests)
    _, res2 = cycle(data_dir)
    assert res2.ok and res2.events == 30
    assert sorted(lake_ids(data_dir)) == sorted(ids + more)
    assert "after=c1000" in stub.requests[n_before]["path"]
    # nothing new: one request, no events, cursor unchanged
    _, res3 = cycle(data_dir)
    assert res3.ok and res3.events == 0


def test_rate_limit_storm_honours_reset(data_dir: Path, stub: OktaStub) -> None:
    ids = stub.add_events(
        400, dt.datetime.now(dt.UTC) - dt.timedelta(hours=5), dt.timedelta(seconds=30)
    )
    stub.throttle_next = 4
    write_config(data_dir, stub)
    _, res = cycle(data_dir)
    assert res.ok, res.error
    assert stub.throttled == 4
    assert sorted(lake_ids(data_dir)) == sorted(ids)


def test_quota_exhausted_waits_before_429(data_dir: Path, stub: OktaStub) -> None:
    stub.rate_limit = 2  # 2 requests per second: the client must pace itself by the headers
    ids = stub.add_events(
        1000, dt.datetime.now(dt.UTC) - dt.timedelta(hours=5), dt.timedelta(seconds=3)
    )
    write_config(data_dir, stub)
    _, res = cycle(data_dir)
    assert res.ok, res.error
    assert sorted(lake_ids(data_dir)) == sorted(ids)
    assert stub.throttled <= 1  # at most a race at a window edge


def test_expired_token_is_a_clear_auth_error(
    data_dir: Path, stub: OktaStub, cli, monkeypatch
) -> None:
    stub.add_events(10, dt.datetime.now(dt.UTC) - dt.timedelta(hours=1), dt.timedelta(minutes=1))
    monkeypatch.setenv("OKTA_TOKEN", "00expired-secret-value")
    write_config(data_dir, stub)
    rt, res = cycle(data_dir)
    assert not res.ok
    assert res.error_code == "input_auth_failed"
    assert "Invalid token provided" in res.error
    assert "00expired-secret-value" not in res.error
    assert len(stub.requests) == 1  # no retry loop against a refused token
    out = cli("inputs", "status", "--format", "json")
    assert out.code == 0, out.err
    (row,) = out.json()["inputs"]
    assert row["id"] == "okta_prod" and row["state"] == "auth_failed"
    assert row["errors_last_hour"] == 1
    assert "00expired-secret-value" not in out.out
    # the runner stops the loop for this input instead of polling again
    import threading

    stop = threading.Event()
    cls, cfg = configured_inputs(rt)["okta_prod"]
    t = threading.Thread(target=Runner(rt).run_input, args=("okta_prod", cls, cfg, stop))
    t.start()
    t.join(timeout=10)
    assert not t.is_alive()
    stop.set()


def test_5xx_outage_then_recovery_without_gap(data_dir: Path, stub: OktaStub) -> None:
    ids = stub.add_events(
        600, dt.datetime.now(dt.UTC) - dt.timedelta(hours=2), dt.timedelta(seconds=5)
    )
    write_config(data_dir, stub, max_retries="2")
    stub.fail_next = 2  # a blip: retried within the cycle
    rt, res = cycle(data_dir)
    assert res.ok, res.error
    assert sorted(lake_ids(data_dir)) == sorted(ids)
    more = stub.add_events(
        300, dt.datetime.now(dt.UTC) - dt.timedelta(minutes=20), dt.timedelta(seconds=1)
    )
    stub.fail_next = 50  # an outage: the cycle fails, the cursor stays put
    before = rt.state.get(CURSOR_NS, "okta_prod")
    _, res2 = cycle(data_dir)
    assert not res2.ok and "HTTP 500" in res2.error
    assert rt.state.get(CURSOR_NS, "okta_prod") == before
    stub.fail_next = 0
    _, res3 = cycle(data_dir)
    assert res3.ok and res3.events == 300
    assert sorted(lake_ids(data_dir)) == sorted(ids + more)


def test_malformed_page_does_not_advance(data_dir: Path, stub: OktaStub) -> None:
    ids = stub.add_events(
        300, dt.datetime.now(dt.UTC) - dt.timedelta(hours=2), dt.timedelta(seconds=5)
    )
    write_config(data_dir, stub)
    stub.malformed_next = 1
    rt, res = cycle(data_dir)
    assert not res.ok and "malformed JSON" in res.error
    assert rt.state.get(CURSOR_NS, "okta_prod") is None
    _, res2 = cycle(data_dir)
    assert res2.ok
    assert sorted(lake_ids(data_dir)) == sorted(ids)


@pytest.mark.slow
def test_kill_9_between_lake_write_and_checkpoint(data_dir: Path, stub: OktaStub) -> None:
    ids = stub.add_events(
        1000, dt.datetime.now(dt.UTC) - dt.timedelta(hours=6), dt.timedelta(seconds=7)
    )
    write_config(data_dir, stub)
    # SIGKILL the collector right after the 3rd page is in the lake, before its checkpoint
    script = textwrap.dedent(
        f"""
        import os, signal, sys
        from mantissa.state import store
        from mantissa.inputs.base import CURSOR_NS
        real_put, seen = store.StateStore.put, []
        def put(self, ns, key, value, conn=None):
            if ns == CURSOR_NS and conn is None:
                seen.append(1)
                if len(seen) == 3:
                    os.kill(os.getpid(), signal.SIGKILL)
            return real_put(self, ns, key, value, conn)
        store.StateStore.put = put
        from mantissa.cli.main import run
        sys.exit(run(["--data-dir", {str(data_dir)!r}, "collect", "--once", "okta_prod"]))
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", script],
        env={**os.environ, "OKTA_TOKEN": TOKEN},
        capture_output=True,
        timeout=120,
    )
    assert proc.returncode == -9, proc.stderr.decode()[-2000:]
    in_lake = lake_ids(data_dir)
    assert len(in_lake) == 600  # pages 1-3 durable; checkpoint of page 3 never written
    rt = Runtime(data_dir)
    assert rt.state.get(CURSOR_NS, "okta_prod")["after"] == "c400"
    proc2 = subprocess.run(
        [
            sys.executable,
            "-m",
            "mantissa.cli.main",
            "--data-dir",
            str(data_dir),
            "collect",
            "--once",
            "okta_prod",
            "--format",
            "json",
        ],
        env={**os.environ, "OKTA_TOKEN": TOKEN},
        capture_output=True,
        timeout=120,
    )
    assert proc2.returncode == 0, proc2.stderr.decode()[-2000:]
    final = lake_ids(data_dir)
    assert len(final) == 1000 and sorted(final) == sorted(ids)  # no gap, no duplicate
