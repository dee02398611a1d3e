"""Slack audit and 1Password Events inputs against stubs of their documented APIs."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import pytest

from mantissa.inputs.base import CURSOR_NS, Runner, configured_inputs
from mantissa.runtime import Runtime
from tests.inputs.killtest import collect_once, kill_at_checkpoint
from tests.inputs.stubs import OnePasswordStub, SlackAuditStub


def ids(data_dir: Path, source: str) -> list[str]:
    files = [str(f) for f in (data_dir / "lake").rglob("*.parquet") if f"logs/{source}/" in str(f)]
    return (
        [
            r[0]
            for r in duckdb.connect()
            .execute("SELECT event_id FROM read_parquet(?)", [files])
            .fetchall()
        ]
        if files
        else []
    )


def cycle(data_dir: Path, yaml: str, input_id: str):
    (data_dir / "mantissa.yaml").write_text(yaml)
    rt = Runtime(data_dir)
    cls, cfg = configured_inputs(rt)[input_id]
    return Runner(rt).cycle(input_id, cls, cfg)


def test_slack_audit_paging_and_auth(data_dir: Path) -> None:
    s = SlackAuditStub()
    try:
        now = dt.datetime.now(dt.UTC)
        first = s.add(250, now - dt.timedelta(hours=5), dt.timedelta(seconds=30))
        s.throttle_next = 2
        y = f"inputs:\n  slack:\n    type: slack_audit\n    token: xoxp-test\n    base_url: {s.url}\n    limit: 100\n    start: 1d\n"
        res = cycle(data_dir, y, "slack")
        assert res.ok, res.error
        assert sorted(ids(data_dir, "slack_audit")) == sorted(first)
        more = s.add(20, now - dt.timedelta(minutes=5), dt.timedelta(seconds=1))
        res = cycle(data_dir, y, "slack")
        assert res.ok and res.events == 20
        assert sorted(ids(data_dir, "slack_audit")) == sorted(first + more)
        n = len(s.requests)
        res = cycle(data_dir, y.replace("xoxp-test", "xoxp-revoked"), "slack")
        assert res.error_code == "input_auth_failed" and "invalid_auth" in res.error
        assert "xoxp-revoked" not in res.error
        assert len(s.requests) == n + 1  # a refused token is not retried in a loop
    finally:
        s.close()


def test_onepassword_reset_cursor_then_cursor(data_dir: Path) -> None:
    s = OnePasswordStub()
    try:
        now = dt.datetime.now(dt.UTC)
        s.add("signin", 5, now - dt.timedelta(days=3))  # before start
        a = s.add("signin", 120, now - dt.timedelta(hours=3))
        b = s.add("audit", 30, now - dt.timedelta(hours=2))
        y = f"inputs:\n  op:\n    type: onepassword\n    token: eyJ-test\n    base_url: {s.url}\n    limit: 50\n    start: 1d\n"
        res = cycle(data_dir, y, "op")
        assert res.ok, res.error
        assert sorted(ids(data_dir, "onepassword")) == sorted(a + b)
        c = s.add("item", 7, now - dt.timedelta(minutes=1))
        res = cycle(data_dir, y, "op")
        assert res.ok and res.events == 7
        bodies = [r["body"] for r in s.requests[-3:]]
        assert all(b'"cursor"' in x and b"start_time" not in x for x in bodies)
        assert len(ids(data_dir, "onepassword")) == len(a + b + c)
        n = len(s.requests)
        res = cycle(data_dir, y.replace("eyJ-test", "eyJ-bad"), "op")
        assert res.error_code == "input_auth_failed" and "(401): Unauthorized" in res.error
        assert "eyJ-bad" not in res.error
        assert len(s.requests) == n + 1  # a refused token is not retried in a loop
    finally:
        s.close()


@pytest.fixture
def slack():
    s = SlackAuditStub()
    yield s
    s.close()


@pytest.fixture
def onepw():
    s = OnePasswordStub()
    yield s
    s.close()


def slack_yaml(s: SlackAuditStub) -> str:
    return (
        f"inputs:\n  slack:\n    type: slack_audit\n    token: xoxp-test\n    base_url: {s.url}\n"
        "    limit: 100\n    start: 1d\n    max_retries: 2\n    max_backoff: 1s\n"
    )


def op_yaml(s: OnePasswordStub, **extra: str) -> str:
    return (
        f"inputs:\n  op:\n    type: onepassword\n    token: eyJ-test\n    base_url: {s.url}\n"
        "    limit: 100\n    start: 1d\n    max_retries: 2\n    max_backoff: 1s\n"
        + "".join(f"    {k}: {v}\n" for k, v in extra.items())
    )


def test_slack_audit_429_storm_and_5xx_outage(data_dir: Path, slack: SlackAuditStub) -> None:
    now = dt.datetime.now(dt.UTC)
    first = slack.add(150, now - dt.timedelta(hours=5), dt.timedelta(seconds=30))
    slack.throttle_next = 4  # more 429s than max_retries: Retry-After waits, not failures
    res = cycle(data_dir, slack_yaml(slack), "slack")
    assert res.ok, res.error
    assert sorted(ids(data_dir, "slack_audit")) == sorted(first)
    before = Runtime(data_dir).state.get(CURSOR_NS, "slack")
    more = slack.add(20, now - dt.timedelta(minutes=5), dt.timedelta(seconds=1))
    slack.fail_next = 100
    res = cycle(data_dir, slack_yaml(slack), "slack")
    assert not res.ok and "HTTP 503 after 3 attempts" in res.error
    assert "service_unavailable" in res.error
    assert Runtime(data_dir).state.get(CURSOR_NS, "slack") == before
    slack.fail_next = 0
    res = cycle(data_dir, slack_yaml(slack), "slack")
    assert res.ok, res.error
    assert sorted(ids(data_dir, "slack_audit")) == sorted(first + more)


@pytest.mark.slow
def test_slack_audit_kill_9_between_lake_write_and_checkpoint(
    data_dir: Path, slack: SlackAuditStub
) -> None:
    want = slack.add(250, dt.datetime.now(dt.UTC) - dt.timedelta(hours=6), dt.timedelta(minutes=1))
    (data_dir / "mantissa.yaml").write_text(slack_yaml(slack))
    proc = kill_at_checkpoint(data_dir, "slack", 2)
    assert proc.returncode == -9, proc.stderr.decode()[-2000:]
    assert len(ids(data_dir, "slack_audit")) == 200  # pages 1-2 durable, 2's checkpoint lost
    cur = Runtime(data_dir).state.get(CURSOR_NS, "slack")
    assert cur["page"] == "dXNl100" and cur["latest"]  # resumes inside the fixed range
    proc2 = collect_once(data_dir, "slack")
    assert proc2.returncode == 0, proc2.stderr.decode()[-2000:]
    final = ids(data_dir, "slack_audit")
    assert len(final) == 250 and sorted(final) == sorted(want)  # no gap, no duplicate


def test_onepassword_429_storm_and_5xx_outage(data_dir: Path, onepw: OnePasswordStub) -> None:
    now = dt.datetime.now(dt.UTC)
    first = onepw.add("signin", 150, now - dt.timedelta(hours=3))
    onepw.throttle_next = 4  # no rate-limit headers documented: backoff until the window resets
    res = cycle(data_dir, op_yaml(onepw, feeds="[signinattempts]"), "op")
    assert res.ok, res.error
    assert sorted(ids(data_dir, "onepassword")) == sorted(first)
    before = Runtime(data_dir).state.get(CURSOR_NS, "op")
    more = onepw.add("signin", 10, now - dt.timedelta(minutes=5))
    onepw.fail_next = 100
    res = cycle(data_dir, op_yaml(onepw, feeds="[signinattempts]"), "op")
    assert not res.ok and "HTTP 500 after 3 attempts: Internal Server Error" in res.error
    assert Runtime(data_dir).state.get(CURSOR_NS, "op") == before
    onepw.fail_next = 0
    res = cycle(data_dir, op_yaml(onepw, feeds="[signinattempts]"), "op")
    assert res.ok and res.events == 10
    assert sorted(ids(data_dir, "onepassword")) == sorted(first + more)


@pytest.mark.slow
def test_onepassword_kill_9_between_lake_write_and_checkpoint(
    data_dir: Path, onepw: OnePasswordStub
) -> None:
    now = dt.datetime.now(dt.UTC)
    want = onepw.add("signin", 250, now - dt.timedelta(hours=3))
    want += onepw.add("audit", 30, now - dt.timedelta(hours=2))
    (data_dir / "mantissa.yaml").write_text(op_yaml(onepw))
    proc = kill_at_checkpoint(data_dir, "op", 2)
    assert proc.returncode == -9, proc.stderr.decode()[-2000:]
    assert len(ids(data_dir, "onepassword")) == 200  # pages 1-2 durable, 2's checkpoint lost
    assert Runtime(data_dir).state.get(CURSOR_NS, "op") == {"signinattempts": "100:100"}
    proc2 = collect_once(data_dir, "op")
    assert proc2.returncode == 0, proc2.stderr.decode()[-2000:]
    final = ids(data_dir, "onepassword")
    assert len(final) == 280 and sorted(final) == sorted(want)  # no gap, no duplicate
