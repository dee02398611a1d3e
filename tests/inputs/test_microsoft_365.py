"""microsoft_365 input over real HTTP against a stub of the Entra token endpoint and the
Office 365 Management Activity API (subscriptions, ≤ 24 h content windows, NextPageUri,
content blobs)."""

from __future__ import annotations

import datetime as dt
import threading
import time
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest

from mantissa.inputs.base import CURSOR_NS, Runner, configured_inputs, parse_time
from mantissa.runtime import Runtime
from tests.inputs.killtest import collect_once, cycle, kill_at_checkpoint, lake_rows
from tests.inputs.stub_microsoft import CLIENT_ID, CLIENT_SECRET, TENANT, ManagementActivityStub

ID = "m365"
AAD, SPO = "Audit.AzureActiveDirectory", "Audit.SharePoint"


@pytest.fixture
def stub():
    s = ManagementActivityStub()
    yield s
    s.close()


@pytest.fixture(autouse=True)
def secret_env(monkeypatch):
    monkeypatch.setenv("M365_SECRET", CLIENT_SECRET)


def write_config(data_dir: Path, stub: ManagementActivityStub, **extra: str) -> None:
    opts = "".join(f"    {k}: {v}\n" for k, v in extra.items())
    (data_dir / "mantissa.yaml").write_text(
        "inputs:\n"
        f"  {ID}:\n"
        "    type: microsoft_365\n"
        f"    tenant_id: {TENANT}\n"
        f"    client_id: {CLIENT_ID}\n"
        '    client_secret: "${env:M365_SECRET}"\n'
        f'    base_url: "{stub.url}"\n'
        f'    login_url: "{stub.url}"\n'
        "    start: 2d\n"
        "    max_backoff: 2s\n" + opts
    )


def ids(data_dir: Path) -> list[str]:
    return lake_rows(data_dir, "microsoft_365")


def content_windows(stub: ManagementActivityStub) -> list[tuple[dt.datetime, dt.datetime]]:
    out = []
    for r in stub.requests:
        u = urlparse(r["path"])
        q = parse_qs(u.query)
        if u.path.endswith("/subscriptions/content") and "nextPage" not in q:
            a, b = (
                dt.datetime.strptime(q[k][0], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=dt.UTC)
                for k in ("startTime", "endTime")
            )
            out.append((a, b))
    return out


def test_backfill_windows_paging_and_steady_state(
    data_dir: Path, stub: ManagementActivityStub
) -> None:
    now = dt.datetime.now(dt.UTC)
    stub.add_blob(AAD, now - dt.timedelta(days=3), 4)  # made available before `start`
    want = []
    for hours in (40, 39, 30, 29, 28, 20, 5, 1):  # 8 blobs: pages of 3 via NextPageUri
        want += stub.add_blob(AAD, now - dt.timedelta(hours=hours), 5)
    want += stub.add_blob(SPO, now - dt.timedelta(hours=10), 7)
    pending = stub.add_blob(AAD, now - dt.timedelta(minutes=2), 3)  # inside `delay`
    write_config(data_dir, stub, content_types=f"[{AAD}, {SPO}]")
    rt, res = cycle(data_dir, ID)
    assert res.ok, res.error
    assert sorted(ids(data_dir)) == sorted(want)
    assert not set(pending) & set(ids(data_dir))
    assert stub.enabled == {AAD, SPO}
    wins = content_windows(stub)
    assert all(b - a <= dt.timedelta(hours=24) for a, b in wins)
    assert any("nextPage=" in r["path"] for r in stub.requests)  # followed NextPageUri
    assert stub.issued == 1
    cur = rt.state.get(CURSOR_NS, ID)
    assert set(cur) == {AAD, SPO} and "end" not in cur[AAD]

    # steady state (delay 1s): the subscription start is idempotent (AF20024 tolerated),
    # the window starts where the last ended, only the new blobs are fetched
    write_config(data_dir, stub, content_types=f"[{AAD}, {SPO}]", delay="1s")
    rt, res1 = cycle(data_dir, ID)
    assert res1.ok, res1.error
    assert sorted(ids(data_dir)) == sorted(want + pending)
    newer = stub.add_blob(SPO, dt.datetime.now(dt.UTC), 4)
    time.sleep(2.2)  # delay 1 s; the API's times have whole seconds
    gets = stub.blob_gets
    _, res2 = cycle(data_dir, ID)
    assert res2.ok and res2.events == 4, res2.error
    assert stub.blob_gets == gets + 1
    assert sorted(ids(data_dir)) == sorted(want + pending + newer)


def test_rate_limit_honours_retry_after(data_dir: Path, stub: ManagementActivityStub) -> None:
    want = stub.add_blob(AAD, dt.datetime.now(dt.UTC) - dt.timedelta(hours=3), 10)
    stub.throttle_next = 2
    write_config(data_dir, stub, content_types=f"[{AAD}]")
    t0 = time.monotonic()
    _, res = cycle(data_dir, ID)
    assert res.ok, res.error
    assert stub.throttled == 2 and time.monotonic() - t0 >= 2.0  # Retry-After: 1, twice
    assert sorted(ids(data_dir)) == sorted(want)


@pytest.mark.slow  # waits on the clock: tokens renewed 60 s early live 1 s
def test_token_renewed_before_expiry(data_dir: Path) -> None:
    stub = ManagementActivityStub(ttl=61)  # renewed 60 s early: every second here
    try:
        now = dt.datetime.now(dt.UTC)
        want = []
        for h in range(1, 7):
            want += stub.add_blob(AAD, now - dt.timedelta(hours=h), 3)
        stub.delay = 0.3
        write_config(data_dir, stub, content_types=f"[{AAD}]")
        _, res = cycle(data_dir, ID)
        assert res.ok, res.error
        assert stub.issued >= 2 and stub.expired_used == 0
        assert sorted(ids(data_dir)) == sorted(want)
    finally:
        stub.close()


def test_bad_secret_is_a_clear_auth_error(
    data_dir: Path, stub: ManagementActivityStub, cli, monkeypatch
) -> None:
    stub.add_blob(AAD, dt.datetime.now(dt.UTC) - dt.timedelta(hours=2), 2)
    monkeypatch.setenv("M365_SECRET", "wrong~secret-value")
    write_config(data_dir, stub, content_types=f"[{AAD}]")
    rt, res = cycle(data_dir, ID)
    assert not res.ok and res.error_code == "input_auth_failed"
    assert "invalid_client: AADSTS7000215: Invalid client secret provided" in res.error
    assert "wrong~secret-value" not in res.error
    assert stub.token_requests == 1 and stub.start_calls == 0  # no loop, no API call
    out = cli("inputs", "status", "--format", "json")
    assert "wrong~secret-value" not in out.out
    (row,) = out.json()["inputs"]
    assert row["state"] == "auth_failed"
    stop = threading.Event()
    cls, cfg = configured_inputs(rt)[ID]
    t = threading.Thread(target=Runner(rt).run_input, args=(ID, cls, cfg, stop))
    t.start()
    t.join(timeout=10)
    assert not t.is_alive()
    stop.set()


def test_5xx_outage_then_recovery(data_dir: Path, stub: ManagementActivityStub) -> None:
    now = dt.datetime.now(dt.UTC)
    want = stub.add_blob(AAD, now - dt.timedelta(hours=5), 6)
    write_config(data_dir, stub, content_types=f"[{AAD}]", max_retries="2", max_backoff="0.5s")
    stub.fail_next = 2
    rt, res = cycle(data_dir, ID)
    assert res.ok, res.error
    more = stub.add_blob(SPO, now - dt.timedelta(hours=4), 6)
    write_config(
        data_dir, stub, content_types=f"[{AAD}, {SPO}]", max_retries="2", max_backoff="0.5s"
    )
    before = rt.state.get(CURSOR_NS, ID)
    stub.fail_next = 50
    _, res2 = cycle(data_dir, ID)
    assert not res2.ok and "HTTP 503" in res2.error and "AF50000" in res2.error
    assert rt.state.get(CURSOR_NS, ID) == before
    stub.fail_next = 0
    _, res3 = cycle(data_dir, ID)
    assert res3.ok and res3.events == 6, res3.error
    assert sorted(ids(data_dir)) == sorted(want + more)


def test_truncated_blob_does_not_advance(data_dir: Path, stub: ManagementActivityStub, cli) -> None:
    now = dt.datetime.now(dt.UTC)
    first = stub.add_blob(AAD, now - dt.timedelta(hours=6), 4)
    second = stub.add_blob(AAD, now - dt.timedelta(hours=5), 4)
    write_config(data_dir, stub, content_types=f"[{AAD}]")
    stub.malformed_next = 1  # the first blob arrives cut in half
    rt, res = cycle(data_dir, ID)
    assert not res.ok and "malformed JSON" in res.error
    # the (empty) first day was checkpointed; nothing past the blob that failed
    cur = rt.state.get(CURSOR_NS, ID)[AAD]
    assert parse_time(cur["start"]) <= now - dt.timedelta(hours=6) and not cur.get("done")
    assert ids(data_dir) == []
    (row,) = cli("inputs", "status", "--format", "json").json()["inputs"]
    assert row["state"] == "error" and "malformed JSON" in row["last_error"]["message"]
    _, res2 = cycle(data_dir, ID)
    assert res2.ok
    assert sorted(ids(data_dir)) == sorted(first + second)


@pytest.mark.slow
def test_kill_9_between_lake_write_and_checkpoint(
    data_dir: Path, stub: ManagementActivityStub
) -> None:
    now = dt.datetime.now(dt.UTC)
    want = []
    for h in range(6, 0, -1):
        want += stub.add_blob(AAD, now - dt.timedelta(hours=h), 50)
    write_config(data_dir, stub, content_types=f"[{AAD}]")
    env = {"M365_SECRET": CLIENT_SECRET}
    # checkpoint 1 closes the empty first day of the 2-day backfill, 2-4 are blobs 1-3
    proc = kill_at_checkpoint(data_dir, ID, 4, env)
    assert proc.returncode == -9, proc.stderr.decode()[-2000:]
    assert len(ids(data_dir)) == 150  # blobs 1-3 durable, blob 3's checkpoint lost
    cur = Runtime(data_dir).state.get(CURSOR_NS, ID)[AAD]
    assert len(cur["done"]) == 2
    proc2 = collect_once(data_dir, ID, env)
    assert proc2.returncode == 0, proc2.stderr.decode()[-2000:]
    final = ids(data_dir)
    assert len(final) == 300 and sorted(final) == sorted(want)  # no gap, no duplicate


def test_expired_blob_is_reported_not_retried_forever(
    data_dir: Path, stub: ManagementActivityStub
) -> None:
    now = dt.datetime.now(dt.UTC)
    first = stub.add_blob(AAD, now - dt.timedelta(hours=3), 3)
    stub.add_blob(AAD, now - dt.timedelta(hours=2), 3)
    gone = stub.blobs[AAD][-1]["contentId"]
    last = stub.add_blob(AAD, now - dt.timedelta(hours=1), 3)
    stub.expired.add(gone)
    write_config(data_dir, stub, content_types=f"[{AAD}]")
    _, res = cycle(data_dir, ID)
    # the cycle says so (inputs status), the other blobs are in, the next cycle is clean
    assert not res.ok and "no longer available" in res.error and gone in res.error
    assert sorted(ids(data_dir)) == sorted(first + last)
    _, res2 = cycle(data_dir, ID)
    assert res2.ok and res2.events == 0
