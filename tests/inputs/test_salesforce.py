"""Salesforce input (EventLogFile CSVs + SetupAuditTrail) against a stub of the REST API."""

from __future__ import annotations

import datetime as dt
import threading
from pathlib import Path

import duckdb
import pytest

from mantissa.inputs.base import CURSOR_NS, Runner, configured_inputs
from mantissa.runtime import Runtime
from tests.inputs.killtest import collect_once, kill_at_checkpoint
from tests.inputs.stub_salesforce import SalesforceStub

SECRET = "sf-secret"
CMD = ["collect", "--once", "sfdc"]
DAY = dt.datetime.now(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)


@pytest.fixture
def stub():
    s = SalesforceStub()
    yield s
    s.close()


@pytest.fixture(autouse=True)
def secret_env(monkeypatch):
    monkeypatch.setenv("SF_SECRET", SECRET)


def write_config(data_dir: Path, stub: SalesforceStub, **extra: str) -> None:
    opts = {
        "client_id": "3MVG9-consumer-key",
        "client_secret": '"${env:SF_SECRET}"',
        "page_size": "200",
        "max_backoff": "2s",
        **extra,
    }
    (data_dir / "mantissa.yaml").write_text(
        "inputs:\n"
        "  sfdc:\n"
        "    type: salesforce\n"
        "    instance_url: https://acme.my.salesforce.com\n"
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
            "SELECT event_id FROM read_parquet(?, union_by_name=true) WHERE source='salesforce'",
            [[str(f) for f in files]],
        )
        .fetchall()
    )
    return [r[0] for r in rows]


def cycle(data_dir: Path):
    rt = Runtime(data_dir)
    cls, cfg = configured_inputs(rt)["sfdc"]
    return rt, Runner(rt).cycle("sfdc", cls, cfg)


def test_backfill_then_steady_state(data_dir: Path, stub: SalesforceStub) -> None:
    stub.add_file("Login", DAY - dt.timedelta(days=10), 5)  # before `start`
    stub.add_audit(20, DAY - dt.timedelta(days=9), dt.timedelta(minutes=1))
    ids = stub.add_file("Login", DAY - dt.timedelta(days=2), 40)
    ids += stub.add_file("API", DAY - dt.timedelta(days=1), 30)  # three files, one LogDate
    ids += stub.add_file("URI", DAY - dt.timedelta(days=1), 25)
    ids += stub.add_file("Logout", DAY - dt.timedelta(days=1), 10)
    # 450 audit records, 3 pages of 200; some share a second
    ids += stub.add_audit(450, DAY - dt.timedelta(days=3), dt.timedelta(milliseconds=400))
    write_config(data_dir, stub)
    rt, res = cycle(data_dir)
    assert res.ok, res.error
    assert sorted(lake_ids(data_dir)) == sorted(ids)
    assert res.batches == 3 + 4  # audit pages + files
    assert sum("/query/01g" in r["path"] for r in stub.requests) == 2  # nextRecordsUrl paging
    cur = rt.state.get(CURSOR_NS, "sfdc")
    assert cur["event_log_files"]["since"] == (DAY - dt.timedelta(days=1)).strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )
    assert len(cur["event_log_files"]["files"]) == 4  # the files inside the late window
    # steady state: late files, for the newest LogDate and for an earlier hour, and new
    # audit records; nothing already stored is downloaded again
    downloaded = len(stub.downloads)
    more = stub.add_file("ReportExport", DAY - dt.timedelta(days=1), 7)
    more += stub.add_file("Logout", DAY - dt.timedelta(days=1, hours=5), 4)
    more += stub.add_audit(5, DAY + dt.timedelta(hours=1), dt.timedelta(seconds=3))
    _, res2 = cycle(data_dir)
    assert res2.ok and res2.events == 16 and res2.duplicates == 0
    assert len(stub.downloads) == downloaded + 2
    assert sorted(lake_ids(data_dir)) == sorted(ids + more)
    # the CSV rows went through the salesforce parser
    files = [str(f) for f in (data_dir / "lake").rglob("*.parquet")]
    row = (
        duckdb.connect()
        .execute(
            "SELECT user, src_ip, outcome FROM read_parquet(?, union_by_name=true) "
            "WHERE event_type = 'Login' LIMIT 1",
            [files],
        )
        .fetchone()
    )
    assert row == ("user0@acme.example", "203.0.113.9", "success")


def test_jwt_bearer_flow(data_dir: Path, monkeypatch) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    stub = SalesforceStub(public_key=key.public_key())
    try:
        ids = stub.add_audit(30, DAY - dt.timedelta(days=1), dt.timedelta(minutes=1))

        def pem(k) -> str:
            return k.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ).decode()

        monkeypatch.setenv("SF_KEY", pem(key))
        write_config(
            data_dir,
            stub,
            auth="jwt_bearer",
            username="integration@acme.example",
            private_key='"${env:SF_KEY}"',
            client_secret="null",
            event_log_files="false",
        )
        _, res = cycle(data_dir)
        assert res.ok, res.error
        assert sorted(lake_ids(data_dir)) == sorted(ids)
        token_req = next(r for r in stub.requests if r["path"] == "/services/oauth2/token")
        assert b"jwt-bearer" in token_req["body"] and b"assertion=" in token_req["body"]
        monkeypatch.setenv("SF_KEY", pem(other))  # a key the connected app does not know
        _, bad = cycle(data_dir)
        assert bad.error_code == "input_auth_failed" and "invalid_grant" in bad.error
        assert "PRIVATE KEY" not in bad.error
    finally:
        stub.close()


def test_expired_session_is_renewed_once(data_dir: Path, stub: SalesforceStub) -> None:
    ids = stub.add_audit(600, DAY - dt.timedelta(days=1), dt.timedelta(seconds=30))
    stub.expire_at_request = 2  # the org's session timeout hits mid-read
    write_config(data_dir, stub, event_log_files="false")
    _, res = cycle(data_dir)
    assert res.ok, res.error
    assert stub.issued == 2 and stub.expired_used == 1
    assert sorted(lake_ids(data_dir)) == sorted(ids)


def test_bad_client_secret_is_reported_not_retried(
    data_dir: Path, stub: SalesforceStub, cli, monkeypatch
) -> None:
    stub.add_audit(3, DAY - dt.timedelta(days=1), dt.timedelta(minutes=1))
    monkeypatch.setenv("SF_SECRET", "not-the-secret-123")
    write_config(data_dir, stub)
    rt, res = cycle(data_dir)
    assert not res.ok and res.error_code == "input_auth_failed"
    assert "invalid client credentials" in res.error and "not-the-secret-123" not in res.error
    assert len(stub.requests) == 1
    out = cli("inputs", "status", "--format", "json")
    (row,) = out.json()["inputs"]
    assert row["state"] == "auth_failed" and "not-the-secret-123" not in out.out
    stop = threading.Event()
    cls, cfg = configured_inputs(rt)["sfdc"]
    t = threading.Thread(target=Runner(rt).run_input, args=("sfdc", cls, cfg, stop))
    t.start()
    t.join(timeout=10)
    assert not t.is_alive()
    stop.set()


def test_request_limit_storm_and_exhausted_allowance(data_dir: Path, stub: SalesforceStub):
    ids = stub.add_file("Login", DAY - dt.timedelta(days=1), 20)
    ids += stub.add_audit(10, DAY - dt.timedelta(days=1), dt.timedelta(minutes=1))
    stub.throttle_next = 4  # 403 REQUEST_LIMIT_EXCEEDED (concurrency): back off, retry
    write_config(data_dir, stub)
    rt, res = cycle(data_dir)
    assert res.ok, res.error
    assert sorted(lake_ids(data_dir)) == sorted(ids)
    # the 24-hour allowance used up: a clear error at once, the cursor untouched
    stub.add_audit(5, DAY + dt.timedelta(hours=2), dt.timedelta(minutes=1))
    before = rt.state.get(CURSOR_NS, "sfdc")
    stub.limit_info, stub.throttle_next = "api-usage=15000/15000", 1
    _, res2 = cycle(data_dir)
    assert not res2.ok and "allowance is used up" in res2.error
    assert rt.state.get(CURSOR_NS, "sfdc") == before


def test_5xx_outage_keeps_the_checkpoint(data_dir: Path, stub: SalesforceStub) -> None:
    ids = stub.add_file("Login", DAY - dt.timedelta(days=1), 20)
    write_config(data_dir, stub, max_retries="2", setup_audit_trail="false")
    stub.fail_next = 2
    rt, res = cycle(data_dir)
    assert res.ok, res.error
    more = stub.add_file("API", DAY, 15)
    before = rt.state.get(CURSOR_NS, "sfdc")
    stub.fail_next = 50
    _, res2 = cycle(data_dir)
    assert not res2.ok and "HTTP 503" in res2.error
    assert rt.state.get(CURSOR_NS, "sfdc") == before
    stub.fail_next = 0
    _, res3 = cycle(data_dir)
    assert res3.ok and res3.events == 15
    assert sorted(lake_ids(data_dir)) == sorted(ids + more)


def test_malformed_page_and_truncated_file(data_dir: Path, stub: SalesforceStub, cli) -> None:
    ids = stub.add_file("Login", DAY - dt.timedelta(days=2), 30)
    ids += stub.add_file("API", DAY - dt.timedelta(days=1), 30)
    write_config(data_dir, stub, setup_audit_trail="false")
    stub.malformed_next = 1
    rt, res = cycle(data_dir)
    assert not res.ok and "malformed JSON" in res.error
    assert rt.state.get(CURSOR_NS, "sfdc") is None
    stub.truncate_next = 1  # the first file's body stops halfway
    _, res2 = cycle(data_dir)
    assert not res2.ok and "truncated download" in res2.error
    assert rt.state.get(CURSOR_NS, "sfdc") is None
    out = cli("inputs", "status", "--format", "json")
    (row,) = out.json()["inputs"]
    assert row["state"] == "error" and "truncated" in row["last_error"]["message"]
    _, res3 = cycle(data_dir)
    assert res3.ok, res3.error
    assert sorted(lake_ids(data_dir)) == sorted(ids)


@pytest.mark.slow
def test_kill_9_between_lake_write_and_checkpoint(data_dir: Path, stub: SalesforceStub) -> None:
    ids: list[str] = []
    for i, et in enumerate(["Login", "API", "URI", "RestApi", "Logout"]):
        ids += stub.add_file(et, DAY - dt.timedelta(days=5 - i), 40)
    write_config(data_dir, stub, setup_audit_trail="false")
    env = {"SF_SECRET": SECRET}
    proc = kill_at_checkpoint(data_dir, "sfdc", 3, env)
    assert proc.returncode == -9, proc.stderr.decode()[-2000:]
    assert len(lake_ids(data_dir)) == 120  # 3 files durable, the 3rd not checkpointed
    cur = Runtime(data_dir).state.get(CURSOR_NS, "sfdc")
    assert set(cur["event_log_files"]["files"]) == {stub.files[0]["Id"], stub.files[1]["Id"]}
    proc2 = collect_once(data_dir, "sfdc", env)
    assert proc2.returncode == 0, proc2.stderr.decode()[-2000:]
    final = lake_ids(data_dir)
    assert len(final) == 200 and sorted(final) == sorted(ids)
