"""Jamf input: OAuth client-credentials tokens renewed before they expire."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest

from mantissa.inputs.base import Runner, configured_inputs
from mantissa.runtime import Runtime
from tests.inputs.stubs import JamfStub


def run(data_dir: Path, stub: JamfStub, secret: str = "csecret"):
    (data_dir / "mantissa.yaml").write_text(
        f"inputs:\n  jamf:\n    type: jamf\n    url: https://acme.jamfcloud.com\n    base_url: {stub.url}\n"
        f"    client_id: cid\n    client_secret: {secret}\n    history_paths: [/api/v1/history-test]\n"
        "    page_size: 10\n    start: 1d\n"
    )
    rt = Runtime(data_dir)
    cls, cfg = configured_inputs(rt)["jamf"]
    return Runner(rt).cycle("jamf", cls, cfg)


def test_token_renewed_before_expiry(data_dir: Path) -> None:
    # tokens live 61 s and are renewed 60 s early: a 12-page read spans several tokens
    stub = JamfStub(ttl=61)
    try:
        stub.add(120, dt.datetime.now(dt.UTC) - dt.timedelta(hours=3))
        stub.delay = 0.15
        res = run(data_dir, stub)
        assert res.ok, res.error
        assert res.events == 120
        assert stub.issued >= 2 and stub.expired_used == 0
        bad = run(data_dir, stub, secret="nope")
        assert bad.error_code == "input_auth_failed" and "nope" not in bad.error
    finally:
        stub.close()


# -- user-account bearer tokens, default history paths, failures, XML webhooks --------


def write_account_config(data_dir: Path, stub, password: str = "pw-jamf", **extra: str) -> None:
    opts = "".join(f"    {k}: {v}\n" for k, v in extra.items())
    (data_dir / "mantissa.yaml").write_text(
        f"inputs:\n  jamf:\n    type: jamf\n    url: https://acme.jamfcloud.com\n"
        f"    base_url: {stub.url}\n    username: auditor\n    password: {password}\n"
        "    page_size: 10\n    start: 1d\n    max_backoff: 2s\n" + opts
    )


def run_account(data_dir: Path, stub, password: str = "pw-jamf", **extra: str):
    from tests.inputs.stub_jamf import JamfAccountStub

    assert isinstance(stub, JamfAccountStub)
    write_account_config(data_dir, stub, password, **extra)
    rt = Runtime(data_dir)
    cls, cfg = configured_inputs(rt)["jamf"]
    return rt, Runner(rt).cycle("jamf", cls, cfg)


def jamf_ids(data_dir: Path) -> list[str]:
    import duckdb

    files = [str(f) for f in (data_dir / "lake").rglob("*.parquet")]
    if not files:
        return []
    rows = (
        duckdb.connect()
        .execute(
            "SELECT event_id FROM read_parquet(?, union_by_name=true) WHERE source='jamf'",
            [files],
        )
        .fetchall()
    )
    return [r[0] for r in rows]


def test_account_token_kept_alive_on_default_paths(data_dir: Path) -> None:
    from mantissa.inputs.base import CURSOR_NS
    from tests.inputs.stub_jamf import HISTORY, JamfAccountStub

    stub = JamfAccountStub(ttl=61)  # renewed 60 s early: keep-alive before every call
    try:
        stub.add(40, dt.datetime.now(dt.UTC) - dt.timedelta(hours=3))
        stub.add(5, dt.datetime.now(dt.UTC) - dt.timedelta(days=3))  # before `start`
        stub.delay = 0.3
        rt, res = run_account(data_dir, stub)
        assert res.ok, res.error
        assert res.events == 40
        assert set(stub.paths_seen) == set(HISTORY)  # the documented collections by default
        assert stub.logins == 1 and stub.keep_alives >= 2 and stub.expired_used == 0
        cur = rt.state.get(CURSOR_NS, "jamf")
        assert set(cur) == set(HISTORY)
        # steady state: only what is new since the saved date (ge: boundary re-read, dedup)
        stub.delay = 0.0
        stub.add(3, dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1))
        _, res2 = run_account(data_dir, stub)
        assert res2.ok and res2.events == 3
        _, bad = run_account(data_dir, stub, password="pw-wrong-99")
        assert bad.error_code == "input_auth_failed" and "pw-wrong-99" not in bad.error
    finally:
        stub.close()


def test_429_5xx_and_malformed_history(data_dir: Path) -> None:
    from mantissa.inputs.base import CURSOR_NS
    from tests.inputs.stub_jamf import JamfAccountStub

    stub = JamfAccountStub(ttl=600)
    try:
        stub.add(25, dt.datetime.now(dt.UTC) - dt.timedelta(hours=2))
        stub.throttle_next = 3
        rt, res = run_account(data_dir, stub, max_retries="2")
        assert res.ok, res.error
        assert len(jamf_ids(data_dir)) == 25
        before = rt.state.get(CURSOR_NS, "jamf")
        stub.add(5, dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5))
        stub.fail_next = 50
        _, res2 = run_account(data_dir, stub, max_retries="2")
        assert not res2.ok and "HTTP 503" in res2.error
        assert rt.state.get(CURSOR_NS, "jamf") == before
        stub.fail_next, stub.malformed_next = 0, 1
        _, res3 = run_account(data_dir, stub)
        assert not res3.ok and "malformed JSON" in res3.error
        assert rt.state.get(CURSOR_NS, "jamf") == before
        _, res4 = run_account(data_dir, stub)
        assert res4.ok and len(jamf_ids(data_dir)) == 30
    finally:
        stub.close()


def test_webhook_xml_form_is_parsed(data_dir: Path) -> None:
    import base64

    import httpx

    from mantissa.api.app import create_app
    from mantissa.api.auth import TokenStore
    from tests.api.conftest import start_server

    rt = Runtime(data_dir)
    ingest = TokenStore(rt.state).create("ingest", name="jamf")[1]
    srv = start_server(create_app(rt))
    try:
        xml = (
            b'<?xml version="1.0" encoding="UTF-8"?>'
            b"<JSSEvent><webhook><id>7</id><name>checkin</name>"
            b"<webhookEvent>ComputerCheckIn</webhookEvent>"
            b"<eventTimestamp>1764396000000</eventTimestamp></webhook>"
            b"<event><computer><udid>ABC-1</udid><deviceName>mac-17</deviceName>"
            b"<serialNumber>C02XYZ</serialNumber><username>alice</username>"
            b"<ipAddress>198.51.100.77</ipAddress><userDirectoryID>-1</userDirectoryID>"
            b"</computer><trigger>CLIENT_CHECKIN</trigger><username>alice</username>"
            b"</event></JSSEvent>"
        )
        basic = base64.b64encode(f"jamf:{ingest}".encode()).decode()
        headers = {"Authorization": f"Basic {basic}", "Content-Type": "text/xml"}
        r = httpx.post(f"{srv.url}/ingest/webhooks/jamf", content=xml, headers=headers)
        assert r.status_code == 200, r.text
        assert r.json()["events"] == 1 and r.json()["rejected"] == 0
        import duckdb

        files = [str(f) for f in (data_dir / "lake").rglob("*.parquet")]
        row = (
            duckdb.connect()
            .execute(
                "SELECT event_type, user, host, src_ip, event_time FROM "
                "read_parquet(?, union_by_name=true) WHERE source = 'jamf'",
                [files],
            )
            .fetchone()
        )
        assert row[:4] == ("ComputerCheckIn", "alice", "mac-17", "198.51.100.77")
        assert row[4].year == 2025
        bad = httpx.post(
            f"{srv.url}/ingest/webhooks/jamf", content=b"<JSSEvent><webhook>", headers=headers
        )
        assert bad.status_code == 400 and "well-formed" in bad.text
        bomb = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><JSSEvent/>'
        r2 = httpx.post(f"{srv.url}/ingest/webhooks/jamf", content=bomb, headers=headers)
        assert r2.status_code == 400 and "DOCTYPE" in r2.text
    finally:
        srv.stop()


def notes(data_dir: Path) -> list[str]:
    """The history note of every jamf row in the lake (duplicates kept)."""
    from tests.inputs.killtest import lake_rows

    return lake_rows(data_dir, "jamf", "message")


def test_token_revoked_mid_run_is_renewed_once(data_dir: Path) -> None:
    from tests.inputs.stub_jamf import JamfAccountStub

    stub = JamfAccountStub(ttl=600)
    try:
        stub.add(30, dt.datetime.now(dt.UTC) - dt.timedelta(hours=2))
        real = stub.handle
        revoked: list[int] = []

        def revoke_after_first_page(h, body):  # the server drops the live token once
            out = real(h, body)
            if out[0] == 200 and "history" in h.path and not revoked:
                revoked.append(1)
                stub.tokens.clear()
            return out

        stub.handle = revoke_after_first_page  # type: ignore[method-assign]
        _, res = run_account(data_dir, stub)
        assert res.ok, res.error
        assert sorted(notes(data_dir)) == sorted(f"changed setting {i}" for i in range(30))
        assert stub.expired_used == 1 and stub.logins == 2  # one 401, one new login
        # credentials refused on the new login: a clear auth error, no loop
        stub.tokens.clear()
        stub.password, revoked[:] = "pw-rotated", [1]
        n = len(stub.requests)
        _, bad = run_account(data_dir, stub)
        assert bad.error_code == "input_auth_failed" and "auditor" in bad.error
        assert len(stub.requests) == n + 1
    finally:
        stub.close()


@pytest.mark.slow
def test_kill_9_between_lake_write_and_checkpoint(data_dir: Path) -> None:
    from mantissa.inputs.base import CURSOR_NS
    from tests.inputs.killtest import collect_once, kill_at_checkpoint
    from tests.inputs.stub_jamf import HISTORY, JamfAccountStub

    stub = JamfAccountStub(ttl=600)
    try:
        stub.add(40, dt.datetime.now(dt.UTC) - dt.timedelta(hours=2))
        write_account_config(data_dir, stub)
        proc = kill_at_checkpoint(data_dir, "jamf", 3)
        assert proc.returncode == -9, proc.stderr.decode()[-2000:]
        assert len(jamf_ids(data_dir)) == 30  # pages 1-3 durable, page 3's checkpoint lost
        since = Runtime(data_dir).state.get(CURSOR_NS, "jamf")[HISTORY[0]]
        proc2 = collect_once(data_dir, "jamf")
        assert proc2.returncode == 0, proc2.stderr.decode()[-2000:]
        final = notes(data_dir)
        assert sorted(final) == sorted(f"changed setting {i}" for i in range(40))  # exact
        # the resumed cycle re-read the range from the saved `since` (mid-range pages keep it)
        filters = [
            parse_qs(urlparse(r["path"]).query).get("filter", [""])[0]
            for r in stub.requests
            if r["path"].startswith(HISTORY[0])
        ]
        assert filters[-5] == f'date=ge="{since}"'  # page 0 of the resumed cycle
    finally:
        stub.close()
