"""CrowdStrike Event Streams input over real HTTP against a stub enforcing the Falcon API."""

from __future__ import annotations

import datetime as dt
import threading
from pathlib import Path

import duckdb
import pytest

from mantissa.inputs.base import CURSOR_NS, Runner, configured_inputs
from mantissa.runtime import Runtime
from tests.inputs.killtest import collect_once, kill_at_checkpoint
from tests.inputs.stub_crowdstrike import CID, CrowdStrikeStub

SECRET = "cs-secret"
NOW = dt.datetime.now(dt.UTC)


@pytest.fixture
def stub():
    s = CrowdStrikeStub(partitions=2)
    yield s
    s.close()


@pytest.fixture(autouse=True)
def secret_env(monkeypatch):
    monkeypatch.setenv("CS_SECRET", SECRET)


def write_config(data_dir: Path, stub: CrowdStrikeStub, **extra: str) -> None:
    opts = {"batch_events": "200", "idle_secs": "1s", "max_backoff": "2s", **extra}
    (data_dir / "mantissa.yaml").write_text(
        "inputs:\n"
        "  falcon:\n"
        "    type: crowdstrike\n"
        "    client_id: cs-client\n"
        '    client_secret: "${env:CS_SECRET}"\n'
        "    app_id: mantissa01\n"
        "    start: 7d\n"
        f'    base_url: "{stub.url}"\n' + "".join(f"    {k}: {v}\n" for k, v in opts.items())
    )


def lake_ids(data_dir: Path) -> list[str]:
    files = list((data_dir / "lake").rglob("*.parquet"))
    if not files:
        return []
    rows = (
        duckdb.connect()
        .execute(
            "SELECT event_id FROM read_parquet(?, union_by_name=true) WHERE source='crowdstrike'",
            [[str(f) for f in files]],
        )
        .fetchall()
    )
    return [r[0] for r in rows]


def cycle(data_dir: Path):
    rt = Runtime(data_dir)
    cls, cfg = configured_inputs(rt)["falcon"]
    return rt, Runner(rt).cycle("falcon", cls, cfg)


def test_backfill_from_start_then_offsets(data_dir: Path, stub: CrowdStrikeStub) -> None:
    stub.add(40, NOW - dt.timedelta(days=10), dt.timedelta(minutes=1), partition=0)  # too old
    ids = stub.add(450, NOW - dt.timedelta(days=2), dt.timedelta(minutes=1), partition=0)
    ids += stub.add(120, NOW - dt.timedelta(days=1), dt.timedelta(minutes=1), partition=1)
    write_config(data_dir, stub)
    rt, res = cycle(data_dir)
    assert res.ok, res.error
    assert sorted(lake_ids(data_dir)) == sorted(ids)
    assert rt.state.get(CURSOR_NS, "falcon") == {"offsets": {"0": 1489, "1": 1119}}
    assert {o["offset"] for o in stub.opened} == {None}  # first run: from the stream's start
    # steady state: each partition resumes right after its last stored offset
    more = stub.add(30, NOW - dt.timedelta(minutes=5), dt.timedelta(seconds=5), partition=1)
    stub.opened.clear()
    _, res2 = cycle(data_dir)
    assert res2.ok and res2.events == 30
    assert sorted(o["offset"] for o in stub.opened) == [1119, 1489]  # resumed at the last
    assert sorted(lake_ids(data_dir)) == sorted(ids + more)
    # the events reach the crowdstrike parser with their metadata
    files = [str(f) for f in (data_dir / "lake").rglob("*.parquet")]
    row = (
        duckdb.connect()
        .execute(
            "SELECT event_type, user, src_ip FROM read_parquet(?, union_by_name=true) LIMIT 1",
            [files],
        )
        .fetchone()
    )
    assert row[0] == "AuthActivityAuditEvent" and row[1].endswith("@example.com")


@pytest.mark.slow  # waits on purpose (vendor timing)
def test_quiet_stream_ends_the_cycle_after_idle_secs(data_dir: Path) -> None:
    stub = CrowdStrikeStub()
    try:
        ids = stub.add(50, NOW - dt.timedelta(hours=1), dt.timedelta(seconds=10))
        stub.hold_secs = 3.0  # a live stream stays open; the client stops reading when quiet
        write_config(data_dir, stub, idle_secs="0.4s")
        _, res = cycle(data_dir)
        assert res.ok, res.error
        assert sorted(lake_ids(data_dir)) == sorted(ids)
        assert res.seconds < 2.5
    finally:
        stub.close()


@pytest.mark.slow  # waits on purpose (vendor timing)
def test_session_refreshed_before_it_expires(data_dir: Path) -> None:
    # sessions live 1.5 s unless refreshed; reading the backlog takes ~2.5 s
    stub = CrowdStrikeStub(session_ttl=1.5, refresh_interval=1)
    try:
        ids = stub.add(500, NOW - dt.timedelta(hours=3), dt.timedelta(seconds=5))
        stub.chunk_events, stub.chunk_delay = 50, 0.25
        write_config(data_dir, stub, refresh_margin_secs="0.5s")
        _, res = cycle(data_dir)
        assert res.ok, res.error
        assert stub.refreshes >= 2 and stub.dead_session_cuts == 0
        assert stub.discoveries == 1
        assert sorted(lake_ids(data_dir)) == sorted(ids)
        refresh = next(r for r in stub.requests if "datafeed-actions" in r["path"])
        assert "action_name=refresh_active_stream_session" in refresh["path"]
        assert refresh["headers"]["Authorization"].startswith("Bearer ")
    finally:
        stub.close()


def test_lost_session_is_rediscovered(data_dir: Path, stub: CrowdStrikeStub) -> None:
    ids = stub.add(80, NOW - dt.timedelta(hours=1), dt.timedelta(seconds=10))
    stub.revoke_sessions = True  # the first stream open finds its session gone
    write_config(data_dir, stub)
    _, res = cycle(data_dir)
    assert res.ok, res.error
    # the first discovery, then one more per partition whose session was gone
    assert stub.discoveries == 1 + stub.partitions
    assert sorted(lake_ids(data_dir)) == sorted(ids)


def test_rate_limit_storm_honours_retry_after(data_dir: Path, stub: CrowdStrikeStub) -> None:
    ids = stub.add(300, NOW - dt.timedelta(hours=1), dt.timedelta(seconds=10))
    stub.throttle_next = 3  # discovery and stream opens get 429 + X-RateLimit-RetryAfter
    write_config(data_dir, stub)
    _, res = cycle(data_dir)
    assert res.ok, res.error
    assert sorted(lake_ids(data_dir)) == sorted(ids)
    assert res.seconds >= 1.0  # waited for the RetryAfter epoch, not a hot loop


def test_bad_credentials_stop_the_input(data_dir: Path, stub: CrowdStrikeStub, cli, monkeypatch):
    stub.add(10, NOW - dt.timedelta(hours=1), dt.timedelta(seconds=10))
    monkeypatch.setenv("CS_SECRET", "wrong-secret-value")
    write_config(data_dir, stub)
    rt, res = cycle(data_dir)
    assert not res.ok and res.error_code == "input_auth_failed"
    assert "invalid credentials" in res.error and "wrong-secret-value" not in res.error
    assert len(stub.requests) == 1
    out = cli("inputs", "status", "--format", "json")
    (row,) = out.json()["inputs"]
    assert row["state"] == "auth_failed" and "wrong-secret-value" not in out.out
    stop = threading.Event()
    cls, cfg = configured_inputs(rt)["falcon"]
    t = threading.Thread(target=Runner(rt).run_input, args=("falcon", cls, cfg, stop))
    t.start()
    t.join(timeout=10)
    assert not t.is_alive()  # no polling loop against refused credentials
    stop.set()


def test_5xx_outage_keeps_the_offset(data_dir: Path, stub: CrowdStrikeStub) -> None:
    ids = stub.add(250, NOW - dt.timedelta(hours=1), dt.timedelta(seconds=10))
    write_config(data_dir, stub, max_retries="2")
    stub.fail_next = 2
    rt, res = cycle(data_dir)
    assert res.ok, res.error
    more = stub.add(50, NOW - dt.timedelta(minutes=3), dt.timedelta(seconds=1))
    before = rt.state.get(CURSOR_NS, "falcon")
    stub.fail_next = 50
    _, res2 = cycle(data_dir)
    assert not res2.ok and "HTTP 500" in res2.error
    assert rt.state.get(CURSOR_NS, "falcon") == before
    stub.fail_next = 0
    _, res3 = cycle(data_dir)
    assert res3.ok and res3.events == 50
    assert sorted(lake_ids(data_dir)) == sorted(ids + more)


def test_truncated_stream_and_malformed_discovery(data_dir: Path, stub: CrowdStrikeStub, cli):
    ids = stub.add(150, NOW - dt.timedelta(hours=1), dt.timedelta(seconds=10))
    write_config(data_dir, stub, batch_events="1000")
    stub.truncate_next = 1
    rt, res = cycle(data_dir)
    assert not res.ok and "ended inside an event" in res.error
    assert rt.state.get(CURSOR_NS, "falcon") is None
    out = cli("inputs", "status", "--format", "json")
    (row,) = out.json()["inputs"]
    assert row["state"] == "error" and "ended inside an event" in row["last_error"]["message"]
    stub.malformed_next = 1
    _, res2 = cycle(data_dir)
    assert not res2.ok and "malformed JSON" in res2.error
    _, res3 = cycle(data_dir)
    assert res3.ok, res3.error
    assert sorted(lake_ids(data_dir)) == sorted(ids)


def test_line_that_is_not_json_is_dead_lettered(data_dir: Path, stub: CrowdStrikeStub) -> None:
    ids = stub.add(20, NOW - dt.timedelta(hours=1), dt.timedelta(seconds=10))
    stub.add_raw(b"<html>proxy error</html>")
    ids += stub.add(20, NOW - dt.timedelta(minutes=30), dt.timedelta(seconds=10))
    write_config(data_dir, stub)
    rt, res = cycle(data_dir)
    assert res.ok, res.error
    assert res.events == 40 and res.rejected == 1
    assert sorted(lake_ids(data_dir)) == sorted(ids)
    assert rt.state.get(CURSOR_NS, "falcon")["offsets"]["0"] == 1040  # the raw line used a slot
    st = Runtime(data_dir).state.get("inputs.status", "falcon")
    assert st["last_error"]["code"] == "rejected_rows"


@pytest.mark.slow
def test_kill_9_between_lake_write_and_checkpoint(data_dir: Path) -> None:
    stub = CrowdStrikeStub()
    try:
        ids = stub.add(1000, NOW - dt.timedelta(hours=6), dt.timedelta(seconds=7))
        write_config(data_dir, stub)
        env = {"CS_SECRET": SECRET}
        proc = kill_at_checkpoint(data_dir, "falcon", 3, env)
        assert proc.returncode == -9, proc.stderr.decode()[-2000:]
        assert len(lake_ids(data_dir)) == 600  # 3 batches durable, the 3rd not checkpointed
        assert Runtime(data_dir).state.get(CURSOR_NS, "falcon") == {"offsets": {"0": 1399}}
        proc2 = collect_once(data_dir, "falcon", env)
        assert proc2.returncode == 0, proc2.stderr.decode()[-2000:]
        final = lake_ids(data_dir)
        assert len(final) == 1000 and sorted(final) == sorted(ids)
        assert stub.opened[-1]["offset"] == 1399
        assert all(i.startswith(CID) for i in final)
    finally:
        stub.close()
