"""GitHub audit log input against a stub enforcing Bearer auth, `after` Link paging,
the search phrase and GitHub's rate-limit answers (403 with quota 0, 429 retry-after)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import pytest

from mantissa.inputs.base import Runner, configured_inputs
from mantissa.runtime import Runtime
from tests.inputs.stubs import GithubStub


@pytest.fixture
def stub():
    s = GithubStub()
    yield s
    s.close()


def ids(data_dir: Path) -> list[str]:
    files = [str(f) for f in (data_dir / "lake").rglob("*.parquet")]
    if not files:
        return []
    return [
        r[0]
        for r in duckdb.connect()
        .execute("SELECT event_id FROM read_parquet(?)", [files])
        .fetchall()
    ]


def run(data_dir: Path, stub: GithubStub, token: str = "ghp_test"):
    (data_dir / "mantissa.yaml").write_text(
        "inputs:\n  gh:\n    type: github\n    org: acme\n"
        f"    token: {token}\n    base_url: {stub.url}\n    start: 2d\n    per_page: 50\n    max_backoff: 2s\n    max_retries: 2\n"
    )
    rt = Runtime(data_dir)
    cls, cfg = configured_inputs(rt)["gh"]
    return Runner(rt).cycle("gh", cls, cfg)


def test_backfill_steady_state_rate_limits(data_dir: Path, stub: GithubStub) -> None:
    now = dt.datetime.now(dt.UTC)
    stub.add_events(20, now - dt.timedelta(days=5), dt.timedelta(minutes=1))  # before start
    first = stub.add_events(230, now - dt.timedelta(hours=20), dt.timedelta(minutes=2))
    stub.quota_exhausted_next = 1
    stub.throttle_next = 1
    res = run(data_dir, stub)
    assert res.ok, res.error
    assert sorted(ids(data_dir)) == sorted(first)
    phrases = [r["path"] for r in stub.requests]
    assert all("order=asc" in p and "created%3A%3E%3D" in p for p in phrases)
    assert any("after=MS4" in p for p in phrases)
    more = stub.add_events(40, now - dt.timedelta(minutes=10), dt.timedelta(seconds=5))
    res2 = run(data_dir, stub)
    assert res2.ok and res2.events == 40
    assert sorted(ids(data_dir)) == sorted(first + more)


def test_bad_credentials_and_outage(data_dir: Path, stub: GithubStub) -> None:
    stub.add_events(10, dt.datetime.now(dt.UTC) - dt.timedelta(hours=1), dt.timedelta(minutes=1))
    res = run(data_dir, stub, token="ghp_revoked")
    assert res.error_code == "input_auth_failed" and "Bad credentials" in res.error
    assert "ghp_revoked" not in res.error
    stub.fail_next = 100
    res = run(data_dir, stub)
    assert not res.ok and "HTTP 502" in res.error
    stub.fail_next = 0
    res = run(data_dir, stub)
    assert res.ok and res.events == 10
