"""Slack audit and 1Password Events inputs against stubs of their documented APIs."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb

from mantissa.inputs.base import Runner, configured_inputs
from mantissa.runtime import Runtime
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
        res = cycle(data_dir, y.replace("xoxp-test", "xoxp-revoked"), "slack")
        assert res.error_code == "input_auth_failed" and "invalid_auth" in res.error
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
        res = cycle(data_dir, y.replace("eyJ-test", "eyJ-bad"), "op")
        assert res.error_code == "input_auth_failed"
    finally:
        s.close()
