"""Snowflake input: snowflake-connector-python against a local stub of Snowflake's REST API."""

from __future__ import annotations

import datetime as dt
import threading
from pathlib import Path

import duckdb
import pytest

pytest.importorskip("snowflake.connector", reason="pip install -e '.[dev]' (snowflake extra)")

from mantissa.inputs.base import CURSOR_NS, Runner, configured_inputs
from mantissa.runtime import Runtime
from tests.inputs.killtest import collect_once, kill_at_checkpoint
from tests.inputs.stub_snowflake import SnowflakeStub

PASSWORD = "sf-pass"
NOW = dt.datetime.now(dt.UTC)
H = dt.timedelta(hours=1)


@pytest.fixture
def stub():
    s = SnowflakeStub()
    yield s
    s.close()


@pytest.fixture(autouse=True)
def secret_env(monkeypatch):
    monkeypatch.setenv("SF_PASSWORD", PASSWORD)


def write_config(data_dir: Path, stub: SnowflakeStub, **extra: str) -> None:
    opts = {
        "password": '"${env:SF_PASSWORD}"',
        "timeout": "3s",
        "query_timeout_secs": "3s",
        "start": "3d",
        **extra,
    }
    (data_dir / "mantissa.yaml").write_text(
        "inputs:\n"
        "  snow:\n"
        "    type: snowflake\n"
        "    account: acme-test\n"
        "    user: mantissa\n"
        "    role: SECURITY_AUDIT\n"
        "    warehouse: COMPUTE_WH\n"
        f'    base_url: "{stub.url}"\n' + "".join(f"    {k}: {v}\n" for k, v in opts.items())
    )


def lake(data_dir: Path, cols: str = "event_id") -> list[tuple]:
    files = list((data_dir / "lake").rglob("*.parquet"))
    if not files:
        return []
    return (
        duckdb.connect()
        .execute(
            f"SELECT {cols} FROM read_parquet(?, union_by_name=true) WHERE source='snowflake'",
            [[str(f) for f in files]],
        )
        .fetchall()
    )


def lake_ids(data_dir: Path) -> list[str]:
    return [r[0] for r in lake(data_dir)]


def cycle(data_dir: Path):
    rt = Runtime(data_dir)
    cls, cfg = configured_inputs(rt)["snow"]
    return rt, Runner(rt).cycle("snow", cls, cfg)


def test_backfill_respects_latency_then_continues(data_dir: Path, stub: SnowflakeStub) -> None:
    stub.add("LOGIN_HISTORY", 10, NOW - 100 * H, dt.timedelta(minutes=1))  # before `start`
    ids = stub.add("LOGIN_HISTORY", 60, NOW - 50 * H, dt.timedelta(minutes=30))  # to NOW-20.5h
    ids += stub.add("QUERY_HISTORY", 40, NOW - 30 * H, dt.timedelta(minutes=30))  # to NOW-10.5h
    ids += stub.add("ACCESS_HISTORY", 20, NOW - 20 * H, dt.timedelta(minutes=30))
    # not complete yet in the views: LOGIN_HISTORY 2 h, ACCESS_HISTORY 3 h of latency
    late = stub.add("LOGIN_HISTORY", 3, NOW - 1.5 * H, dt.timedelta(minutes=1))
    late += stub.add("ACCESS_HISTORY", 2, NOW - 2.5 * H, dt.timedelta(minutes=1))
    fresh = stub.add("QUERY_HISTORY", 2, NOW - 1.5 * H, dt.timedelta(minutes=1))  # 45 min
    write_config(data_dir, stub)
    rt, res = cycle(data_dir)
    assert res.ok, res.error
    assert sorted(lake_ids(data_dir)) == sorted(ids + fresh)
    latency = {"LOGIN_HISTORY": 2 * H, "QUERY_HISTORY": 0.75 * H, "ACCESS_HISTORY": 3 * H}
    for view, _lo, hi in stub.windows:
        assert hi <= dt.datetime.now(dt.UTC) - latency[view]
    cur = rt.state.get(CURSOR_NS, "snow")
    assert set(cur) == {"LOGIN_HISTORY", "QUERY_HISTORY", "ACCESS_HISTORY"}
    # steady state: the next window starts at the saved watermark, nothing is re-read
    stub.windows.clear()
    write_config(data_dir, stub, latency="{LOGIN_HISTORY: 1m, ACCESS_HISTORY: 1m}")
    _, res2 = cycle(data_dir)
    assert res2.ok and res2.events == 5 and res2.duplicates == 0
    assert {(v, lo.isoformat()) for v, lo, _ in stub.windows} >= {
        ("LOGIN_HISTORY", cur["LOGIN_HISTORY"]),
        ("ACCESS_HISTORY", cur["ACCESS_HISTORY"]),
    }
    assert sorted(lake_ids(data_dir)) == sorted(ids + fresh + late)
    # rows reach the snowflake parser: outcome, user, object arrays decoded
    rows = lake(data_dir, "event_type, outcome, user, src_ip")
    assert ("LOGIN", "failure", "USER0", "192.0.2.44") in rows
    assert any(r[0] == "ACCESS" for r in rows)


def test_key_pair_login(data_dir: Path, stub: SnowflakeStub, monkeypatch) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    stub.public_key = key.public_key()
    ids = stub.add("LOGIN_HISTORY", 5, NOW - 5 * H, dt.timedelta(minutes=1))
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    monkeypatch.setenv("SF_KEY", pem)
    write_config(data_dir, stub, password="null", private_key='"${env:SF_KEY}"')
    _, res = cycle(data_dir)
    assert res.ok, res.error
    assert sorted(lake_ids(data_dir)) == sorted(ids)
    login = next(r for r in stub.requests if r["path"].startswith("/session/v1/login-request"))
    assert b'"AUTHENTICATOR":"SNOWFLAKE_JWT"' in login["body"] and b"PASSWORD" not in login["body"]
    stub.public_key = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    _, bad = cycle(data_dir)  # the user's RSA_PUBLIC_KEY no longer matches
    assert bad.error_code == "input_auth_failed" and "390144" in bad.error


def test_expired_session_renewed_by_the_connector(data_dir: Path, stub: SnowflakeStub) -> None:
    ids = stub.add("QUERY_HISTORY", 30, NOW - 30 * H, dt.timedelta(minutes=30))
    stub.expire_at_query = 2  # the session token lapses after the first window
    write_config(data_dir, stub, views="[QUERY_HISTORY]", window_secs="6h")
    _, res = cycle(data_dir)
    assert res.ok, res.error
    assert stub.expired_used == 1 and stub.renewals == 1 and stub.logins == 1
    assert sorted(lake_ids(data_dir)) == sorted(ids)


def test_bad_password_is_reported_not_retried(
    data_dir: Path, stub: SnowflakeStub, cli, monkeypatch
) -> None:
    monkeypatch.setenv("SF_PASSWORD", "wrong-pass-4711")
    write_config(data_dir, stub)
    rt, res = cycle(data_dir)
    assert not res.ok and res.error_code == "input_auth_failed"
    assert "Incorrect username or password" in res.error and "wrong-pass-4711" not in res.error
    assert sum("login-request" in r["path"] for r in stub.requests) == 1
    out = cli("inputs", "status", "--format", "json")
    (row,) = out.json()["inputs"]
    assert row["state"] == "auth_failed" and "wrong-pass-4711" not in out.out
    stop = threading.Event()
    cls, cfg = configured_inputs(rt)["snow"]
    t = threading.Thread(target=Runner(rt).run_input, args=("snow", cls, cfg, stop))
    t.start()
    t.join(timeout=15)
    assert not t.is_alive()
    stop.set()


@pytest.mark.slow  # waits on purpose (vendor timing)
def test_429_storm_is_retried(data_dir: Path, stub: SnowflakeStub) -> None:
    ids = stub.add("LOGIN_HISTORY", 20, NOW - 10 * H, dt.timedelta(minutes=5))
    stub.throttle_next = 3
    write_config(data_dir, stub, views="[LOGIN_HISTORY]", query_timeout_secs="20s")
    _, res = cycle(data_dir)
    assert res.ok, res.error
    assert stub.throttled == 3
    assert sorted(lake_ids(data_dir)) == sorted(ids)


@pytest.mark.slow  # waits on purpose (vendor timing)
def test_outage_and_malformed_result_keep_the_watermark(
    data_dir: Path, stub: SnowflakeStub, cli
) -> None:
    ids = stub.add("LOGIN_HISTORY", 20, NOW - 10 * H, dt.timedelta(minutes=5))
    write_config(data_dir, stub, views="[LOGIN_HISTORY]")
    stub.fail_next = 10_000  # 503 until the connector's timeout
    rt, res = cycle(data_dir)
    assert not res.ok and ("503" in res.error or "timed out" in res.error), res.error
    assert rt.state.get(CURSOR_NS, "snow") is None
    stub.fail_next = 0
    stub.malformed_next = 1
    _, res2 = cycle(data_dir)
    assert not res2.ok and "Invalid Snowflake response" in res2.error
    assert rt.state.get(CURSOR_NS, "snow") is None
    out = cli("inputs", "status", "--format", "json")
    (row,) = out.json()["inputs"]
    assert row["state"] == "error" and row["errors_last_hour"] == 2
    _, res3 = cycle(data_dir)
    assert res3.ok, res3.error
    assert sorted(lake_ids(data_dir)) == sorted(ids)


@pytest.mark.slow
def test_kill_9_between_lake_write_and_checkpoint(data_dir: Path, stub: SnowflakeStub) -> None:
    ids: list[str] = []
    for day in (3, 2, 1):  # one day-window each, all complete
        ids += stub.add("LOGIN_HISTORY", 50, NOW - day * 24 * H + H, dt.timedelta(minutes=10))
    write_config(data_dir, stub, views="[LOGIN_HISTORY]", window_secs="1d", start="3d")
    env = {"SF_PASSWORD": PASSWORD}
    proc = kill_at_checkpoint(data_dir, "snow", 3, env)
    assert proc.returncode == -9, proc.stderr.decode()[-2000:]
    assert sorted(lake_ids(data_dir)) == sorted(ids)  # 3 windows durable
    saved = Runtime(data_dir).state.get(CURSOR_NS, "snow")["LOGIN_HISTORY"]
    assert saved == stub.windows[1][2].isoformat()  # ... but only 2 checkpointed
    stub.windows.clear()
    proc2 = collect_once(data_dir, "snow", env)
    assert proc2.returncode == 0, proc2.stderr.decode()[-2000:]
    assert stub.windows[0][1].isoformat() == saved  # the 3rd window read again
    final = lake_ids(data_dir)
    assert len(final) == 150 and sorted(final) == sorted(ids)  # dedup: no duplicate
