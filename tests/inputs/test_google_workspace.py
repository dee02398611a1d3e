"""google_workspace input over real HTTP against a stub that verifies the service
account's RS256 JWT (domain-wide delegation) and enforces activities.list's shape."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("google.auth", reason="google-auth is not installed: pip install -e '.[dev]'")
pytest.importorskip("cryptography", reason="cryptography is not installed")

from mantissa.inputs.base import CURSOR_NS, Runner, configured_inputs, parse_time
from mantissa.runtime import Runtime
from tests.inputs.killtest import (
    collect_once,
    cycle,
    kill_at_checkpoint,
    lake_rows,
)
from tests.inputs.stub_google import GoogleStub, service_account

ID = "gws"


@pytest.fixture
def stub():
    s = GoogleStub()
    yield s
    s.close()


def write_config(data_dir: Path, stub: GoogleStub, key: dict | None = None, **extra: str) -> None:
    (data_dir / "sa.json").write_text(json.dumps(key or stub.key_info))
    opts = "".join(f"    {k}: {v}\n" for k, v in extra.items())
    (data_dir / "mantissa.yaml").write_text(
        "inputs:\n"
        f"  {ID}:\n"
        "    type: google_workspace\n"
        f"    credentials_file: {data_dir / 'sa.json'}\n"
        "    subject: admin@acme.example\n"
        f'    base_url: "{stub.url}"\n'
        "    start: 2d\n"
        "    max_results: 100\n"
        "    max_backoff: 1s\n" + opts
    )


def uqs(data_dir: Path) -> list[str]:
    """uniqueQualifier of every row in the lake (one row per activity event here)."""
    return [e.split(":")[1] for e in lake_rows(data_dir, "google_workspace")]


def test_backfill_pages_and_respects_reporting_lag(data_dir: Path, stub: GoogleStub) -> None:
    now = dt.datetime.now(dt.UTC)
    stub.add("login", 20, now - dt.timedelta(days=4), dt.timedelta(minutes=1))  # before start
    logins = stub.add("login", 250, now - dt.timedelta(hours=30), dt.timedelta(minutes=5))
    admins = stub.add("admin", 40, now - dt.timedelta(hours=20), dt.timedelta(minutes=7))
    # inside the documented lag ("a couple of minutes"; the default window ends 10 min back)
    late = stub.add("login", 5, now - dt.timedelta(minutes=3), dt.timedelta(seconds=10))
    write_config(data_dir, stub, applications="[login, admin]")
    rt, res = cycle(data_dir, ID)
    assert res.ok, res.error
    assert res.events == 290
    assert sorted(uqs(data_dir)) == sorted(logins + admins)
    assert not set(late) & set(uqs(data_dir))
    # login: 3 pages of ≤100 via pageToken; admin: 1 page
    paths = [r["path"] for r in stub.requests if "/applications/" in r["path"]]
    assert sum("pageToken=" in p for p in paths) == 2
    assert all("startTime=" in p and "endTime=" in p and "maxResults=100" in p for p in paths)
    cur = rt.state.get(CURSOR_NS, ID)
    end = parse_time(cur["login"]["start"])
    assert end is not None and 9 * 60 < (now - end).total_seconds() < 11 * 60
    # one token for the whole cycle: the JWT was verified, the access token reused
    assert stub.issued == 1
    sent = [r for r in stub.requests if r["path"] == "/token"]
    assert b"grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer" in sent[0]["body"]


def test_steady_state_continues_from_cursor(data_dir: Path, stub: GoogleStub) -> None:
    now = dt.datetime.now(dt.UTC)
    first = stub.add("login", 30, now - dt.timedelta(hours=2), dt.timedelta(minutes=1))
    write_config(data_dir, stub, applications="[login]", lag="1s")
    rt, res = cycle(data_dir, ID)
    assert res.ok and res.events == 30
    before = rt.state.get(CURSOR_NS, ID)["login"]["start"]
    more = stub.add("login", 12, dt.datetime.now(dt.UTC), dt.timedelta(milliseconds=20))
    time.sleep(1.5)
    n = len(stub.requests)
    _, res2 = cycle(data_dir, ID)
    assert res2.ok and res2.events == 12, res2.error
    assert sorted(uqs(data_dir)) == sorted(first + more)
    # the new window starts exactly where the last one ended
    first_api = next(r for r in stub.requests[n:] if r["path"] != "/token")
    assert f"startTime={before.replace(':', '%3A')}" in first_api["path"]
    _, res3 = cycle(data_dir, ID)
    assert res3.ok and res3.events == 0
    assert len(uqs(data_dir)) == 42  # no duplicates


def test_rate_limit_storm(data_dir: Path, stub: GoogleStub) -> None:
    ids = stub.add(
        "login", 150, dt.datetime.now(dt.UTC) - dt.timedelta(hours=5), dt.timedelta(minutes=1)
    )
    stub.throttle_next = 3  # 429 RESOURCE_EXHAUSTED
    stub.quota403_next = 2  # the older 403 userRateLimitExceeded shape
    write_config(data_dir, stub, applications="[login]", max_backoff="0.3s")
    _, res = cycle(data_dir, ID)
    assert res.ok, res.error
    assert stub.throttled == 5
    assert sorted(uqs(data_dir)) == sorted(ids)


@pytest.mark.slow  # waits on the clock: tokens renewed 60 s early live 1 s
def test_token_renewed_before_expiry_and_after_revocation(data_dir: Path) -> None:
    # tokens live 61 s and are renewed 60 s early: a slow 6-page read spans several
    stub = GoogleStub(ttl=61)
    try:
        ids = stub.add(
            "login", 550, dt.datetime.now(dt.UTC) - dt.timedelta(hours=9), dt.timedelta(seconds=50)
        )
        stub.delay = 0.3
        write_config(data_dir, stub, applications="[login]")
        _, res = cycle(data_dir, ID)
        assert res.ok, res.error
        assert stub.issued >= 2 and stub.expired_used == 0
        assert sorted(uqs(data_dir)) == sorted(ids)
        # a token revoked server-side: one 401, one new JWT exchange, then on
        stub.ttl = 3600
        stub.delay = 0
        more = stub.add(
            "admin", 5, dt.datetime.now(dt.UTC) - dt.timedelta(hours=1), dt.timedelta(minutes=1)
        )
        write_config(data_dir, stub, applications="[login, admin]")
        issued = stub.issued
        _, res2 = cycle(data_dir, ID)
        stub.tokens.clear()
        _, res3 = cycle(data_dir, ID)
        assert res2.ok and res3.ok, (res2.error, res3.error)
        assert stub.issued == issued + 2
        assert set(more) <= set(uqs(data_dir))
    finally:
        stub.close()


def test_bad_key_is_a_clear_auth_error_without_loop(data_dir: Path, stub: GoogleStub, cli) -> None:
    stub.add("login", 5, dt.datetime.now(dt.UTC) - dt.timedelta(hours=1), dt.timedelta(minutes=1))
    forged, _ = service_account(stub.token_uri)
    forged["private_key_id"] = stub.key_info["private_key_id"]  # same kid, other key
    write_config(data_dir, stub, key=forged, applications="[login]")
    rt, res = cycle(data_dir, ID)
    assert not res.ok and res.error_code == "input_auth_failed"
    assert "invalid_grant: Invalid JWT Signature." in res.error
    assert "PRIVATE KEY" not in res.error
    assert stub.token_requests == 1 and stub.issued == 0  # no retry loop
    out = cli("inputs", "status", "--format", "json")
    (row,) = out.json()["inputs"]
    assert row["state"] == "auth_failed" and row["errors_last_hour"] == 1
    # the runner stops polling this input
    stop = threading.Event()
    cls, cfg = configured_inputs(rt)[ID]
    t = threading.Thread(target=Runner(rt).run_input, args=(ID, cls, cfg, stop))
    t.start()
    t.join(timeout=10)
    assert not t.is_alive()
    stop.set()
    # a subject without domain-wide delegation: Google's own words, still no loop
    write_config(data_dir, stub, applications="[login]", subject="nobody@acme.example")
    _, res2 = cycle(data_dir, ID)
    assert res2.error_code == "input_auth_failed" and "Not a valid email or user ID" in res2.error


def test_5xx_outage_then_recovery(data_dir: Path, stub: GoogleStub) -> None:
    ids = stub.add(
        "login", 300, dt.datetime.now(dt.UTC) - dt.timedelta(hours=6), dt.timedelta(minutes=1)
    )
    write_config(data_dir, stub, applications="[login]", max_retries="2")
    stub.fail_next = 2  # a blip: retried inside the cycle
    rt, res = cycle(data_dir, ID)
    assert res.ok, res.error
    assert sorted(uqs(data_dir)) == sorted(ids)
    # a newly configured application backfills during an outage
    more = stub.add(
        "admin", 10, dt.datetime.now(dt.UTC) - dt.timedelta(minutes=50), dt.timedelta(minutes=1)
    )
    write_config(data_dir, stub, applications="[login, admin]", max_retries="2")
    before = rt.state.get(CURSOR_NS, ID)
    stub.fail_next = 50  # an outage: the cycle fails, the cursor stays where the data stopped
    _, res2 = cycle(data_dir, ID)
    assert not res2.ok and "HTTP 503" in res2.error and "UNAVAILABLE" in res2.error
    assert rt.state.get(CURSOR_NS, ID) == before
    stub.fail_next = 0
    _, res3 = cycle(data_dir, ID)
    assert res3.ok and res3.events == 10
    assert sorted(uqs(data_dir)) == sorted(ids + more)


def test_truncated_page_does_not_advance(data_dir: Path, stub: GoogleStub, cli) -> None:
    ids = stub.add(
        "login", 120, dt.datetime.now(dt.UTC) - dt.timedelta(hours=3), dt.timedelta(minutes=1)
    )
    write_config(data_dir, stub, applications="[login]")
    stub.malformed_next = 1
    rt, res = cycle(data_dir, ID)
    assert not res.ok and "malformed JSON" in res.error
    assert rt.state.get(CURSOR_NS, ID) is None
    (row,) = cli("inputs", "status", "--format", "json").json()["inputs"]
    assert row["state"] == "error" and "malformed JSON" in row["last_error"]["message"]
    _, res2 = cycle(data_dir, ID)
    assert res2.ok
    assert sorted(uqs(data_dir)) == sorted(ids)


def test_collect_once_cli(data_dir: Path, stub: GoogleStub, cli) -> None:
    ids = stub.add(
        "token", 7, dt.datetime.now(dt.UTC) - dt.timedelta(hours=2), dt.timedelta(minutes=3)
    )
    write_config(data_dir, stub, applications="[token]")
    out = cli("collect", "--once", ID, "--format", "json")
    assert out.code == 0, out.err
    assert out.json()["events"] == 7 and out.json()["ok"]
    assert sorted(uqs(data_dir)) == sorted(ids)


@pytest.mark.slow
def test_kill_9_between_lake_write_and_checkpoint(data_dir: Path, stub: GoogleStub) -> None:
    ids = stub.add(
        "login", 500, dt.datetime.now(dt.UTC) - dt.timedelta(hours=12), dt.timedelta(minutes=1)
    )
    write_config(data_dir, stub, applications="[login]")
    proc = kill_at_checkpoint(data_dir, ID, 3)
    assert proc.returncode == -9, proc.stderr.decode()[-2000:]
    assert len(uqs(data_dir)) == 300  # pages 1-3 durable, checkpoint of page 3 lost
    cur = Runtime(data_dir).state.get(CURSOR_NS, ID)["login"]
    assert cur.get("page")  # mid-window: resumes from page 3's token
    proc2 = collect_once(data_dir, ID)
    assert proc2.returncode == 0, proc2.stderr.decode()[-2000:]
    final = uqs(data_dir)
    assert len(final) == 500 and sorted(final) == sorted(ids)  # no gap, no duplicate


def test_lag_per_application(data_dir: Path, stub: GoogleStub) -> None:
    write_config(data_dir, stub, lag="{calendar: 4h, default: 15m}")
    rt = Runtime(data_dir)
    cls, cfg = configured_inputs(rt)[ID]
    inp = cls(ID, cfg)
    assert inp.lag_for("calendar") == 4 * 3600 and inp.lag_for("login") == 900  # type: ignore[attr-defined]
    inp.http.close()
    write_config(data_dir, stub)
    cls, cfg = configured_inputs(Runtime(data_dir))[ID]
    inp = cls(ID, cfg)
    # the documented defaults: minutes for most, an hour for saml, hours for calendar
    assert inp.lag_for("admin") == 600 and inp.lag_for("saml") == 3600  # type: ignore[attr-defined]
    assert inp.lag_for("calendar") == 3 * 3600  # type: ignore[attr-defined]
    inp.http.close()
