"""azure_ad input over real HTTP against a stub of the Entra token endpoint and Microsoft
Graph auditLogs (signIns, directoryAudits: $filter on the time property, $top,
@odata.nextLink, 429 + Retry-After)."""

from __future__ import annotations

import datetime as dt
import threading
import time
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import duckdb
import pytest

from mantissa.inputs.base import CURSOR_NS, Runner, configured_inputs, parse_time
from mantissa.runtime import Runtime
from tests.inputs.killtest import collect_once, cycle, kill_at_checkpoint, lake_rows
from tests.inputs.stub_microsoft import CLIENT_ID, CLIENT_SECRET, TENANT, GraphStub

ID = "entra"


@pytest.fixture
def stub():
    s = GraphStub()
    yield s
    s.close()


@pytest.fixture(autouse=True)
def secret_env(monkeypatch):
    monkeypatch.setenv("ENTRA_SECRET", CLIENT_SECRET)


def write_config(data_dir: Path, stub: GraphStub, **extra: str) -> None:
    opts = "".join(f"    {k}: {v}\n" for k, v in extra.items())
    (data_dir / "mantissa.yaml").write_text(
        "inputs:\n"
        f"  {ID}:\n"
        "    type: azure_ad\n"
        f"    tenant_id: {TENANT}\n"
        f"    client_id: {CLIENT_ID}\n"
        '    client_secret: "${env:ENTRA_SECRET}"\n'
        f'    base_url: "{stub.url}"\n'
        f'    login_url: "{stub.url}"\n'
        "    start: 2d\n"
        "    page_size: 100\n"
        "    max_backoff: 2s\n" + opts
    )


def ids(data_dir: Path) -> list[str]:
    """Graph ids of the rows in the lake (event_id is ``{category}:{id}``)."""
    return [e.split(":", 1)[1] for e in lake_rows(data_dir, "azure_ad")]


def test_backfill_both_logs_then_steady_state(data_dir: Path, stub: GraphStub) -> None:
    now = dt.datetime.now(dt.UTC)
    stub.add_signins(10, now - dt.timedelta(days=3), dt.timedelta(minutes=1))  # before start
    signins = stub.add_signins(230, now - dt.timedelta(hours=30), dt.timedelta(minutes=7))
    audits = stub.add_audits(60, now - dt.timedelta(hours=20), dt.timedelta(minutes=11))
    recent = stub.add_signins(4, now - dt.timedelta(minutes=2), dt.timedelta(seconds=5))  # < lag
    write_config(data_dir, stub)
    rt, res = cycle(data_dir, ID)
    assert res.ok, res.error
    assert sorted(ids(data_dir)) == sorted(signins + audits)
    assert not set(recent) & set(ids(data_dir))
    # each log filtered on its own time property, paged through @odata.nextLink
    first = [
        parse_qs(urlparse(r["path"]).query)
        for r in stub.requests
        if "$filter" in r["path"] or "%24filter" in r["path"]
    ]
    assert {f["$filter"][0].split()[0] for f in first} == {"createdDateTime", "activityDateTime"}
    assert sum("skiptoken" in r["path"] for r in stub.requests) == 2  # 230 sign-ins: 3 pages
    # the parser tells the two apart (SignInLogs / AuditLogs) from the Graph resources
    files = [str(f) for f in (data_dir / "lake").rglob("*.parquet")]
    cats = dict(
        duckdb.connect()
        .execute(
            "SELECT split_part(event_id, ':', 1), count(*) FROM read_parquet(?, union_by_name=true) "
            "GROUP BY 1",
            [files],
        )
        .fetchall()
    )
    assert cats == {"SignInLogs": 230, "AuditLogs": 60}
    cur = rt.state.get(CURSOR_NS, ID)
    end = parse_time(cur["signIns"]["start"])
    assert end is not None and 9 * 60 < (now - end).total_seconds() < 11 * 60  # lag 10 min

    write_config(data_dir, stub, lag="1s")
    _, res1 = cycle(data_dir, ID)
    assert res1.ok and res1.events == 4, res1.error
    more = stub.add_audits(3, dt.datetime.now(dt.UTC), dt.timedelta(milliseconds=100))
    time.sleep(1.5)
    _, res2 = cycle(data_dir, ID)
    assert res2.ok and res2.events == 3, res2.error
    _, res3 = cycle(data_dir, ID)
    assert res3.ok and res3.events == 0
    final = ids(data_dir)
    assert len(final) == 297 and sorted(final) == sorted(signins + audits + recent + more)


def test_throttling_retry_after(data_dir: Path, stub: GraphStub) -> None:
    want = stub.add_signins(
        150, dt.datetime.now(dt.UTC) - dt.timedelta(hours=4), dt.timedelta(minutes=1)
    )
    stub.throttle_next = 2
    write_config(data_dir, stub, logs="[signIns]")
    t0 = time.monotonic()
    _, res = cycle(data_dir, ID)
    assert res.ok, res.error
    assert stub.throttled == 2 and time.monotonic() - t0 >= 2.0
    assert sorted(ids(data_dir)) == sorted(want)


@pytest.mark.slow  # waits on the clock: tokens renewed 60 s early live 1 s
def test_token_renewed_before_expiry_and_on_401(data_dir: Path) -> None:
    stub = GraphStub(ttl=61)
    try:
        want = stub.add_signins(
            500, dt.datetime.now(dt.UTC) - dt.timedelta(hours=9), dt.timedelta(minutes=1)
        )
        stub.delay = 0.3
        write_config(data_dir, stub, logs="[signIns]")
        _, res = cycle(data_dir, ID)
        assert res.ok, res.error
        assert stub.issued >= 2 and stub.expired_used == 0
        assert sorted(ids(data_dir)) == sorted(want)
        # a token revoked mid-cycle: one 401, one new token, no error
        stub.delay, stub.ttl = 0, 3600
        more = stub.add_audits(
            150, dt.datetime.now(dt.UTC) - dt.timedelta(hours=3), dt.timedelta(minutes=1)
        )
        write_config(data_dir, stub)
        real = stub.api
        calls = []

        def revoke_once(h, path, q):
            calls.append(path)
            if len(calls) == 2:
                stub.tokens.clear()
            return real(h, path, q)

        stub.api = revoke_once  # type: ignore[method-assign]
        issued = stub.issued
        _, res2 = cycle(data_dir, ID)
        assert res2.ok, res2.error
        assert stub.issued == issued + 2
        assert set(more) <= set(ids(data_dir))
    finally:
        stub.close()


def test_bad_secret_is_a_clear_auth_error(
    data_dir: Path, stub: GraphStub, cli, monkeypatch
) -> None:
    monkeypatch.setenv("ENTRA_SECRET", "nope~not-the-secret")
    write_config(data_dir, stub)
    rt, res = cycle(data_dir, ID)
    assert not res.ok and res.error_code == "input_auth_failed"
    assert "AADSTS7000215" in res.error and "nope~not-the-secret" not in res.error
    assert stub.token_requests == 1
    (row,) = cli("inputs", "status", "--format", "json").json()["inputs"]
    assert row["state"] == "auth_failed"
    stop = threading.Event()
    cls, cfg = configured_inputs(rt)[ID]
    t = threading.Thread(target=Runner(rt).run_input, args=(ID, cls, cfg, stop))
    t.start()
    t.join(timeout=10)
    assert not t.is_alive()
    stop.set()


def test_5xx_outage_then_recovery(data_dir: Path, stub: GraphStub) -> None:
    want = stub.add_signins(
        120, dt.datetime.now(dt.UTC) - dt.timedelta(hours=5), dt.timedelta(minutes=1)
    )
    write_config(data_dir, stub, logs="[signIns]", max_retries="2", max_backoff="0.5s")
    stub.fail_next = 2
    rt, res = cycle(data_dir, ID)
    assert res.ok, res.error
    more = stub.add_audits(
        30, dt.datetime.now(dt.UTC) - dt.timedelta(hours=2), dt.timedelta(minutes=1)
    )
    write_config(data_dir, stub, max_retries="2", max_backoff="0.5s")
    before = rt.state.get(CURSOR_NS, ID)
    stub.fail_next = 50
    _, res2 = cycle(data_dir, ID)
    assert not res2.ok and "HTTP 503" in res2.error and "ServiceUnavailable" in res2.error
    assert rt.state.get(CURSOR_NS, ID) == before
    stub.fail_next = 0
    _, res3 = cycle(data_dir, ID)
    assert res3.ok and res3.events == 30
    assert sorted(ids(data_dir)) == sorted(want + more)


def test_truncated_page_does_not_advance(data_dir: Path, stub: GraphStub, cli) -> None:
    want = stub.add_signins(
        250, dt.datetime.now(dt.UTC) - dt.timedelta(hours=6), dt.timedelta(minutes=1)
    )
    write_config(data_dir, stub, logs="[signIns]")
    stub.malformed_next = 1
    rt, res = cycle(data_dir, ID)
    assert not res.ok and "malformed JSON" in res.error
    assert rt.state.get(CURSOR_NS, ID) is None
    (row,) = cli("inputs", "status", "--format", "json").json()["inputs"]
    assert row["state"] == "error" and "malformed JSON" in row["last_error"]["message"]
    _, res2 = cycle(data_dir, ID)
    assert res2.ok
    assert sorted(ids(data_dir)) == sorted(want)


@pytest.mark.slow
def test_kill_9_between_lake_write_and_checkpoint(data_dir: Path, stub: GraphStub) -> None:
    want = stub.add_signins(
        500, dt.datetime.now(dt.UTC) - dt.timedelta(hours=12), dt.timedelta(minutes=1)
    )
    write_config(data_dir, stub, logs="[signIns]")
    env = {"ENTRA_SECRET": CLIENT_SECRET}
    proc = kill_at_checkpoint(data_dir, ID, 3, env)
    assert proc.returncode == -9, proc.stderr.decode()[-2000:]
    assert len(ids(data_dir)) == 300  # pages 1-3 durable, page 3's checkpoint lost
    cur = Runtime(data_dir).state.get(CURSOR_NS, ID)["signIns"]
    assert "skiptoken" in cur["next"]
    # the saved nextLink has expired meanwhile: the window is re-read (dedup absorbs it)
    stub.expired_skiptokens.add(parse_qs(urlparse(cur["next"]).query)["$skiptoken"][0])
    proc2 = collect_once(data_dir, ID, env)
    assert proc2.returncode == 0, proc2.stderr.decode()[-2000:]
    final = ids(data_dir)
    assert len(final) == 500 and sorted(final) == sorted(want)  # no gap, no duplicate


def test_missing_consent_is_an_auth_error(data_dir: Path, stub: GraphStub) -> None:
    stub.deny = True  # token issued, but the app has no AuditLog.Read.All consent
    write_config(data_dir, stub)
    _, res = cycle(data_dir, ID)
    assert res.error_code == "input_auth_failed"
    assert "Authorization_RequestDenied: Insufficient privileges" in res.error
    assert sum(r["path"].startswith("/v1.0/") for r in stub.requests) == 1  # no loop
