"""Duo input against a stub verifying HMAC-SHA1 signatures, the 2-minute delay,
mintime/maxtime windows and next_offset paging."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import pytest

from mantissa.inputs.base import CURSOR_NS, Runner, configured_inputs
from mantissa.runtime import Runtime
from tests.inputs.killtest import collect_once, kill_at_checkpoint, lake_rows
from tests.inputs.stubs import DuoStub


@pytest.fixture
def stub():
    s = DuoStub()
    yield s
    s.close()


def rows(data_dir: Path) -> list[tuple]:
    files = [str(f) for f in (data_dir / "lake").rglob("*.parquet")]
    if not files:
        return []
    return (
        duckdb.connect()
        .execute("SELECT event_id, event_type FROM read_parquet(?, union_by_name=true)", [files])
        .fetchall()
    )


def write_config(data_dir: Path, stub: DuoStub, skey: str = "duo-secret-key", **extra: str) -> None:
    opts = {"max_backoff": "2s", **extra}
    (data_dir / "mantissa.yaml").write_text(
        f"inputs:\n  duo:\n    type: duo\n    host: api-test.duosecurity.com\n    base_url: {stub.url}\n"
        f"    ikey: {stub.ikey}\n    skey: {skey}\n    start: 1d\n    limit: 100\n    max_retries: 2\n"
        + "".join(f"    {k}: {v}\n" for k, v in opts.items())
    )


def run(data_dir: Path, stub: DuoStub, skey: str = "duo-secret-key", **extra: str):
    write_config(data_dir, stub, skey, **extra)
    rt = Runtime(data_dir)
    cls, cfg = configured_inputs(rt)["duo"]
    return rt, Runner(rt).cycle("duo", cls, cfg)


def test_signed_paging_and_two_minute_delay(data_dir: Path, stub: DuoStub) -> None:
    now = dt.datetime.now(dt.UTC)
    old = stub.add_auth(250, now - dt.timedelta(hours=10), dt.timedelta(minutes=2))
    recent = stub.add_auth(
        5, now - dt.timedelta(seconds=30), dt.timedelta(seconds=1)
    )  # inside Duo's delay
    stub.add_admin(3, now - dt.timedelta(hours=2))
    stub.throttle_next = 1
    rt, res = run(data_dir, stub)
    assert res.ok, res.error
    got = rows(data_dir)
    assert sorted(r[0] for r in got if r[1] != "user_update" and r[0] in set(old)) == sorted(old)
    assert not set(recent) & {r[0] for r in got}  # not yet: the 2-minute delay
    assert res.events == 253
    assert any("next_offset" in r["path"] for r in stub.requests)
    # the next cycle picks up what was too recent, once it is older than 2 minutes
    cur = rt.state.get(CURSOR_NS, "duo")
    assert cur["auth_mintime"] <= int((now - dt.timedelta(seconds=30)).timestamp() * 1000)


def test_bad_signature_is_auth_failure(data_dir: Path, stub: DuoStub) -> None:
    stub.add_auth(3, dt.datetime.now(dt.UTC) - dt.timedelta(hours=1), dt.timedelta(minutes=1))
    _, res = run(data_dir, stub, skey="wrong-secret")
    assert res.error_code == "input_auth_failed" and "Invalid signature" in res.error
    assert "wrong-secret" not in res.error
    assert len(stub.requests) == 1  # a refused signature is not retried in a loop


def test_429_storm_waits_and_completes(data_dir: Path, stub: DuoStub) -> None:
    want = stub.add_auth(
        150, dt.datetime.now(dt.UTC) - dt.timedelta(hours=3), dt.timedelta(minutes=1)
    )
    stub.throttle_next = 5  # more 429s in a row than max_retries: waits, not failures
    _, res = run(data_dir, stub, logs="[authentication]", max_backoff="1s")
    assert res.ok, res.error
    assert sorted(lake_rows(data_dir, "duo")) == sorted(want)
    assert sum(r["path"].startswith("/admin/v2/logs/authentication") for r in stub.requests) == 7


def test_5xx_outage_keeps_the_checkpoint(data_dir: Path, stub: DuoStub) -> None:
    want = stub.add_auth(
        250, dt.datetime.now(dt.UTC) - dt.timedelta(hours=8), dt.timedelta(minutes=1)
    )
    real = stub.handle

    def outage_after_first_page(h, body):  # page 1 answers, then Duo goes down
        out = real(h, body)
        if out[0] == 200:
            stub.fail_next = 100
        return out

    stub.handle = outage_after_first_page  # type: ignore[method-assign]
    rt, res = run(data_dir, stub, logs="[authentication]", max_backoff="1s")
    assert not res.ok and "HTTP 503" in res.error and "Service unavailable" in res.error
    assert len(lake_rows(data_dir, "duo")) == 100
    cur = rt.state.get(CURSOR_NS, "duo")
    page1_end = stub.auth[99]
    assert cur["auth_window"]["next_offset"] == f"{page1_end['_ms']},{page1_end['txid']}"
    assert "auth_mintime" not in cur  # not advanced past the pages it did not store
    stub.handle, stub.fail_next = real, 0  # type: ignore[method-assign]
    _, res2 = run(data_dir, stub, logs="[authentication]")
    assert res2.ok, res2.error
    final = lake_rows(data_dir, "duo")
    assert len(final) == 250 and sorted(final) == sorted(want)


@pytest.mark.slow
def test_kill_9_between_lake_write_and_checkpoint(data_dir: Path, stub: DuoStub) -> None:
    want = stub.add_auth(
        250, dt.datetime.now(dt.UTC) - dt.timedelta(hours=8), dt.timedelta(minutes=1)
    )
    write_config(data_dir, stub, logs="[authentication]")
    proc = kill_at_checkpoint(data_dir, "duo", 2)
    assert proc.returncode == -9, proc.stderr.decode()[-2000:]
    assert len(lake_rows(data_dir, "duo")) == 200  # pages 1-2 durable, page 2's checkpoint lost
    cur = Runtime(data_dir).state.get(CURSOR_NS, "duo")
    assert cur["auth_window"]["next_offset"]  # resumes inside the fixed window after page 1
    proc2 = collect_once(data_dir, "duo")
    assert proc2.returncode == 0, proc2.stderr.decode()[-2000:]
    final = lake_rows(data_dir, "duo")
    assert len(final) == 250 and sorted(final) == sorted(want)  # no gap, no duplicate
