"""GitHub audit log input against a stub enforcing Bearer auth, `after` Link paging,
the search phrase and GitHub's rate-limit answers (403 with quota 0, 429 retry-after)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import pytest

from mantissa.inputs.base import CURSOR_NS, Runner, configured_inputs
from mantissa.runtime import Runtime
from tests.inputs.killtest import collect_once, kill_at_checkpoint, lake_rows
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


def write_config(data_dir: Path, stub: GithubStub, token: str = "ghp_test") -> None:
    (data_dir / "mantissa.yaml").write_text(
        "inputs:\n  gh:\n    type: github\n    org: acme\n"
        f"    token: {token}\n    base_url: {stub.url}\n    start: 2d\n    per_page: 50\n    max_backoff: 2s\n    max_retries: 2\n"
    )


def run(data_dir: Path, stub: GithubStub, token: str = "ghp_test"):
    write_config(data_dir, stub, token)
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
    assert len(stub.requests) == 1  # bad credentials are not retried in a loop
    stub.fail_next = 100
    res = run(data_dir, stub)
    assert not res.ok and "HTTP 502" in res.error
    stub.fail_next = 0
    res = run(data_dir, stub)
    assert res.ok and res.events == 10


def test_rate_limit_storm_with_github_headers(data_dir: Path, stub: GithubStub) -> None:
    want = stub.add_events(
        120, dt.datetime.now(dt.UTC) - dt.timedelta(hours=5), dt.timedelta(minutes=1)
    )
    # more refusals in a row than max_retries (2): primary quota (403, remaining 0, reset)
    # then secondary limits (429, retry-after) — waits, not failures
    stub.quota_exhausted_next, stub.throttle_next = 2, 2
    res = run(data_dir, stub)
    assert res.ok, res.error
    assert sorted(ids(data_dir)) == sorted(want)
    assert stub.quota_exhausted_next == 0 and stub.throttle_next == 0
    assert len(stub.requests) == 4 + 3  # 4 refused, then 3 pages


def test_5xx_outage_keeps_the_checkpoint(data_dir: Path, stub: GithubStub) -> None:
    now = dt.datetime.now(dt.UTC)
    first = stub.add_events(60, now - dt.timedelta(hours=6), dt.timedelta(minutes=1))
    write_config(data_dir, stub)
    rt = Runtime(data_dir)
    assert run(data_dir, stub).ok
    before = rt.state.get(CURSOR_NS, "gh")
    more = stub.add_events(30, now - dt.timedelta(minutes=30), dt.timedelta(seconds=10))
    stub.fail_next = 100
    res = run(data_dir, stub)
    assert not res.ok and "HTTP 502 after 3 attempts" in res.error
    assert rt.state.get(CURSOR_NS, "gh") == before
    assert len(ids(data_dir)) == 60
    stub.fail_next = 0
    res = run(data_dir, stub)
    assert res.ok, res.error
    assert sorted(ids(data_dir)) == sorted(first + more)  # no gap, no duplicate


@pytest.mark.slow
def test_kill_9_between_lake_write_and_checkpoint(data_dir: Path, stub: GithubStub) -> None:
    want = stub.add_events(
        250, dt.datetime.now(dt.UTC) - dt.timedelta(hours=20), dt.timedelta(minutes=2)
    )
    write_config(data_dir, stub)
    proc = kill_at_checkpoint(data_dir, "gh", 3)
    assert proc.returncode == -9, proc.stderr.decode()[-2000:]
    assert len(lake_rows(data_dir, "github")) == 150  # pages 1-3 durable, 3's checkpoint lost
    assert Runtime(data_dir).state.get(CURSOR_NS, "gh")["after"] == "MS4100"
    proc2 = collect_once(data_dir, "gh")
    assert proc2.returncode == 0, proc2.stderr.decode()[-2000:]
    final = lake_rows(data_dir, "github")
    assert len(final) == 250 and sorted(final) == sorted(want)  # no gap, no duplicate
