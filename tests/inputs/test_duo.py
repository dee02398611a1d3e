"""Duo input against a stub verifying HMAC-SHA1 signatures, the 2-minute delay,
mintime/maxtime windows and next_offset paging."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import pytest

from mantissa.inputs.base import CURSOR_NS, Runner, configured_inputs
from mantissa.runtime import Runtime
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


def run(data_dir: Path, stub: DuoStub, skey: str = "duo-secret-key"):
    (data_dir / "mantissa.yaml").write_text(
        f"inputs:\n  duo:\n    type: duo\n    host: api-test.duosecurity.com\n    base_url: {stub.url}\n"
        f"    ikey: {stub.ikey}\n    skey: {skey}\n    start: 1d\n    limit: 100\n    max_backoff: 2s\n    max_retries: 2\n"
    )
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
