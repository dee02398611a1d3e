"""A fleet on one PostgreSQL: two real ``mantissa serve`` processes, one killed with -9.

Both processes run the detection scheduler (1-minute rule windows, 1-second polls) and
the SOAR worker over one lake and one state store (a private PostgreSQL schema). An
alert starts a three-step playbook; while its middle step is in flight, the process
running it is killed. The test then checks, from the state store's rows:

* every (rule, window) ran exactly once and the windows of each rule tile time without
  a gap or an overlap (``detect_runs``: the watermark of each run is the end of the
  previous one, ``runs`` is 1 everywhere), also across the kill;
* no alert was raised twice (one alert, one row per dedup key);
* the execution was resumed by exactly one worker: the in-flight step was re-sent once
  with its Idempotency-Key, the other steps reached the vendor exactly once, every step
  ``succeeded``.
"""

from __future__ import annotations

import datetime as dt
import itertools
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml

from tests.alerts.stubs import Reply, Request, StubServer
from tests.soar.stubs import HookStub

PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
RULE_HIT = "7f1c2d3e-0000-4a00-9000-00000000aa01"
RULES_QUIET = ["7f1c2d3e-0000-4a00-9000-00000000aa02", "7f1c2d3e-0000-4a00-9000-00000000aa03"]


def _pg_skip_reason() -> str | None:
    try:
        eng = sa.create_engine(
            PG_URL.replace("postgresql://", "postgresql+psycopg://"),
            connect_args={"connect_timeout": 3},
        )
        with eng.connect() as c:
            c.exec_driver_sql("SELECT 1")
        eng.dispose()
        return None
    except Exception as exc:
        return f"PostgreSQL at {PG_URL} is not reachable ({type(exc).__name__}); run scripts/test-deps.sh"


@pytest.fixture
def pg_state_url() -> Iterator[str]:
    """A state store URL on a private, fresh PostgreSQL schema (dropped afterwards)."""
    why = _pg_skip_reason()
    if why:
        pytest.skip(why)
    schema = "fleet_" + uuid.uuid4().hex[:10]
    eng = sa.create_engine(PG_URL.replace("postgresql://", "postgresql+psycopg://"))
    with eng.begin() as c:
        c.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    try:
        yield f"{PG_URL}?options=-csearch_path%3D{schema}"
    finally:
        with eng.begin() as c:
            c.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
        eng.dispose()


def _rule(rid: str, event_name: str) -> str:
    return yaml.safe_dump(
        {
            "title": f"fleet {event_name}",
            "id": rid,
            "level": "high",
            "interval": "1m",
            "logsource": {"product": "aws", "service": "cloudtrail"},
            "detection": {"s": {"eventName": event_name}, "condition": "s"},
        }
    )


def _event(i: int, name: str, at: dt.datetime) -> str:
    import json

    return json.dumps(
        {
            "eventVersion": "1.08",
            "eventTime": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "eventSource": "cloudtrail.amazonaws.com",
            "eventName": name,
            "eventID": f"fleet-{i}",
            "sourceIPAddress": "10.1.2.3",
            "userIdentity": {"type": "IAMUser", "userName": "mallory"},
        }
    )


class HoldFirst:
    """The vendor applies the call, then holds its answer (the caller dies meanwhile)."""

    def __init__(self, inner: Callable[[Request], Reply], path: str, secs: float) -> None:
        self.inner, self.path, self.secs = inner, path, secs
        self.arrived = threading.Event()

    def __call__(self, req: Request) -> Reply:
        out = self.inner(req)
        if req.path == self.path and not self.arrived.is_set():
            self.arrived.set()
            time.sleep(self.secs)
        return out


def _wait(cond: Callable[[], Any], timeout: float, what: str) -> Any:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = cond()
        if v:
            return v
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")


def _serve(data: Path, log: Path) -> subprocess.Popen[bytes]:
    with open(log, "wb") as fh:
        return subprocess.Popen(
            [
                *(sys.executable, "-m", "mantissa.cli.main", "--data-dir", str(data)),
                *("serve", "--port", "0", "--log-level", "warning"),
            ],
            stdout=fh,
            stderr=subprocess.STDOUT,
        )


def _floor_min(t: dt.datetime) -> dt.datetime:
    return t.replace(second=0, microsecond=0)


@pytest.mark.slow
@pytest.mark.postgres
def test_two_serve_processes_kill_one(pg_state_url: str, tmp_path: Path) -> None:
    from mantissa.cli.main import run
    from mantissa.detect.runs import detect_runs
    from mantissa.runtime import Runtime
    from mantissa.soar.executor import Executor
    from mantissa.soar.schema import audit, executions, steps
    from mantissa.soar.store import PlaybookStore
    from mantissa.state.store import leases

    hook = HookStub()
    stub = HoldFirst(hook, "/hook/b", 12)
    server = StubServer(stub)
    data = tmp_path / "data"
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "hit.yml").write_text(_rule(RULE_HIT, "DeleteTrail"))
    for rid, name in zip(RULES_QUIET, ("StopLogging", "PutBucketPolicy"), strict=True):
        (rules / f"{name}.yml").write_text(_rule(rid, name))
    data.mkdir()
    (data / "mantissa.yaml").write_text(
        yaml.safe_dump(
            {
                "state": {"url": pg_state_url},
                "detect": {
                    "builtin_rules": False,
                    "rule_paths": [str(rules)],
                    "ingest_delay": "3s",
                    "lookback": "2m",
                    "poll_secs": 1,
                },
                "alerts": {"enrichment": {"user_context": {"enabled": False}}},
            }
        )
    )
    rt = Runtime(data)
    PlaybookStore(rt).import_text(
        yaml.safe_dump(
            {
                "id": "fleet-response",
                "name": "fleet response",
                "version": "1.0.0",
                "status": "active",
                "trigger": {"type": "alert", "conditions": {"rule_id": RULE_HIT}},
                "steps": [
                    {
                        "id": s,
                        "name": s,
                        "action_type": "http_request",
                        "parameters": {"url": f"{server.url}/hook/{s}", "body": {"step": s}},
                        **({"depends_on": [prev]} if prev else {}),
                    }
                    for s, prev in (("a", None), ("b", "a"), ("c", "b"))
                ],
            },
            sort_keys=False,
        )
    )
    now = dt.datetime.now(dt.UTC)
    src = tmp_path / "ev.ndjson"
    lines = [_event(0, "DeleteTrail", now - dt.timedelta(seconds=90))]
    lines += [_event(i, "GetObject", now - dt.timedelta(seconds=i)) for i in range(1, 40)]
    src.write_text("\n".join(lines) + "\n")
    assert run(["--data-dir", str(data), "ingest", "-s", "cloudtrail", str(src), "-f", "json"]) == 0

    procs = [_serve(data, tmp_path / f"serve{i}.log") for i in range(2)]
    survivor: subprocess.Popen[bytes] | None = None
    try:
        # the alert's playbook reaches step b; the vendor holds the answer
        assert stub.arrived.wait(180), "the playbook never reached step b"
        with rt.state.engine.connect() as c:
            (eid,) = [r[0] for r in c.execute(sa.select(executions.c.id))]
            holder = c.execute(
                sa.select(leases.c.owner).where(leases.c.name == f"soar-exec:{eid}")
            ).scalar()
        pid = int(str(holder).split(":")[1])
        victim = next(p for p in procs if p.pid == pid)
        survivor = next(p for p in procs if p.pid != pid)
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait(10)
        killed_at = dt.datetime.now(dt.UTC)
        # the test process races the survivor's SOAR worker for the orphaned execution
        racer: list[Any] = []
        t = threading.Thread(target=lambda: racer.append(Executor(Runtime(data)).recover()))
        t.start()

        def status() -> str | None:
            with rt.state.engine.connect() as c:
                st = c.execute(sa.select(executions.c.status)).scalar()
            return st if st in ("succeeded", "failed") else None

        assert _wait(status, 120, "the execution to finish") == "succeeded"
        t.join(60)
        # two more windows after the kill, for every rule
        target = _floor_min(killed_at) + dt.timedelta(minutes=2)

        def caught_up() -> bool:
            with rt.state.engine.connect() as c:
                ends = dict(
                    c.execute(
                        sa.select(
                            detect_runs.c.rule_id, sa.func.max(detect_runs.c.window_end)
                        ).group_by(detect_runs.c.rule_id)
                    ).all()
                )
            return len(ends) == 3 and all(
                (v if v.tzinfo else v.replace(tzinfo=dt.UTC)) >= target for v in ends.values()
            )

        _wait(caught_up, 240, "two rule windows after the kill")
        assert survivor.poll() is None, "the survivor must still be running"
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        server.close()

    with rt.state.engine.connect() as c:
        runs = c.execute(
            sa.select(detect_runs).order_by(detect_runs.c.rule_id, detect_runs.c.window_end)
        ).all()
        alert_rows = c.exec_driver_sql("SELECT dedup_key, rule_id FROM alerts").all()
        step_rows = {r.step_id: r for r in c.execute(sa.select(steps)).all()}
        audit_rows = c.execute(sa.select(audit.c.kind, audit.c.detail)).all()
    # every window once, windows of a rule tile time (each starts where the last ended)
    by_rule: dict[str, list[Any]] = {}
    for r in runs:
        by_rule.setdefault(r.rule_id, []).append(r)
    assert set(by_rule) == {RULE_HIT, *RULES_QUIET}
    owners = set()
    for rid, rows in by_rule.items():
        assert all(r.runs == 1 for r in rows), f"{rid}: a window completed twice"
        for prev, cur in itertools.pairwise(rows):
            assert cur.watermark == prev.window_end, f"{rid}: gap or overlap at {cur.watermark}"
        assert len(rows) >= 3
        owners |= {r.owner for r in rows}
    assert len(owners) >= 2, "both processes ran windows"
    # one alert, one row per dedup key
    assert [a.rule_id for a in alert_rows] == [RULE_HIT]
    assert len({a.dedup_key for a in alert_rows}) == len(alert_rows)
    # the playbook: resumed once, nothing lost, nothing applied twice
    assert {k: r.status for k, r in step_rows.items()} == {
        "a": "succeeded",
        "b": "succeeded",
        "c": "succeeded",
    }
    resumed = [d for k, d in audit_rows if (d or {}).get("event") == "resumed_in_flight"]
    assert len(resumed) == 1 and resumed[0]["step"] == "b"
    sent = [(r.path, r.headers.get("idempotency-key")) for r in server.journal]
    assert [p for p, _ in sent].count("/hook/a") == 1
    assert [p for p, _ in sent].count("/hook/b") == 2  # the dead process's and the resume's
    assert [p for p, _ in sent].count("/hook/c") == 1
    assert len({k for p, k in sent if p == "/hook/b"}) == 1, "the re-send reuses the key"
    assert len(hook.effects) == 3, "the vendor applied each step once"


def test_lease_of_a_dead_local_process_is_taken_over(tmp_path: Path) -> None:
    """kill -9 leaves a detect lease behind: on the same host it is taken over at once,
    a live holder (or one on another host) keeps it until it expires."""
    import socket

    from mantissa.detect.runs import detect_runs
    from mantissa.detect.scheduler import Scheduler
    from mantissa.runtime import Runtime

    data = tmp_path / "data"
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "hit.yml").write_text(_rule(RULE_HIT, "DeleteTrail"))
    data.mkdir()
    (data / "mantissa.yaml").write_text(
        yaml.safe_dump({"detect": {"builtin_rules": False, "rule_paths": [str(rules)]}})
    )
    rt = Runtime(data)
    gone = subprocess.Popen(["true"])
    gone.wait()
    at = dt.datetime(2026, 11, 1, 10, 0, 30, tzinfo=dt.UTC)
    lease = f"detect:{RULE_HIT}"
    host = socket.gethostname()
    for holder, taken in (
        (f"other-host:{gone.pid}:x", False),
        (f"{host}:{os.getpid()}:alive", False),
        (f"{host}:{gone.pid}:dead", True),
    ):
        rt.state.acquire_lease(lease, holder, 300)
        rep = Scheduler(rt, owner=f"{host}:{os.getpid()}:me", now=lambda: at).tick()
        assert (rep["skipped_leased"] == []) is taken, holder
        if not taken:
            rt.state.release_lease(lease, holder)
    with rt.state.engine.connect() as c:
        (row,) = c.execute(sa.select(detect_runs)).all()
    assert row.rule_id == RULE_HIT and row.runs == 1 and row.owner.endswith(":me")


def test_rule_index_is_cached_until_a_rule_changes(tmp_path: Path) -> None:
    from mantissa.detect.rules import ENABLED_NS
    from mantissa.detect.scheduler import Scheduler
    from mantissa.runtime import Runtime

    data, rules = tmp_path / "data", tmp_path / "rules"
    data.mkdir()
    rules.mkdir()
    (rules / "hit.yml").write_text(_rule(RULE_HIT, "DeleteTrail"))
    (data / "mantissa.yaml").write_text(
        yaml.safe_dump({"detect": {"builtin_rules": False, "rule_paths": [str(rules)]}})
    )
    sched = Scheduler(Runtime(data))
    first = sched.rule_index()
    assert sched.rule_index() is first, "nothing changed: no re-load"
    (rules / "quiet.yml").write_text(_rule(RULES_QUIET[0], "StopLogging"))
    second = sched.rule_index()
    assert second is not first and {r.id for r in second.rules} == {RULE_HIT, RULES_QUIET[0]}
    sched.runtime.state.put(ENABLED_NS, RULE_HIT, False)  # `rules disable` in another process
    third = sched.rule_index()
    assert third is not second and not third.get(RULE_HIT).enabled


def test_playbook_lease_covers_the_step_and_a_lost_lease_stops_the_run(tmp_path: Path) -> None:
    """The execution lease is renewed for a step's whole timeout (not the first 60 s), and
    a worker whose lease was taken over stops instead of running the next step twice."""
    from mantissa.runtime import Runtime
    from mantissa.soar.executor import Executor
    from mantissa.soar.store import PlaybookStore
    from mantissa.state.store import leases

    hook = HookStub()
    stub = HoldFirst(hook, "/hook/a", 2)
    server = StubServer(stub)
    try:
        data = tmp_path / "data"
        data.mkdir()
        (data / "mantissa.yaml").write_text("{}\n")
        rt = Runtime(data)
        PlaybookStore(rt).import_text(
            yaml.safe_dump(
                {
                    "id": "long-step",
                    "name": "long step",
                    "version": "1.0.0",
                    "status": "active",
                    "trigger": {"type": "manual"},
                    "steps": [
                        {
                            "id": s,
                            "name": s,
                            "action_type": "http_request",
                            "timeout_seconds": 900,
                            "parameters": {"url": f"{server.url}/hook/{s}", "body": {}},
                            **({"depends_on": ["a"]} if s == "b" else {}),
                        }
                        for s in ("a", "b")
                    ],
                }
            )
        )
        ex = Executor(rt)
        eid = ex.start("long-step", input={})
        assert eid
        out: list[str] = []
        t = threading.Thread(target=lambda: out.append(ex.run(eid)))
        t.start()
        assert stub.arrived.wait(30)
        with rt.state.begin() as c:
            exp = c.execute(
                sa.select(leases.c.expires_at).where(leases.c.name == f"soar-exec:{eid}")
            ).scalar()
            exp = exp if exp.tzinfo else exp.replace(tzinfo=dt.UTC)
            assert exp > dt.datetime.now(dt.UTC) + dt.timedelta(seconds=800), exp
            # another worker takes the execution over while step a is in flight
            c.execute(
                leases.update()
                .where(leases.c.name == f"soar-exec:{eid}")
                .values(owner="elsewhere:1:w", expires_at=exp)
            )
        t.join(60)
        assert out == ["running"]
        st = {s["id"]: s["status"] for s in Executor(rt).get(eid)["steps"]}
        assert st == {"a": "succeeded", "b": "pending"}, "b is left to the new holder"
        assert [r.path for r in server.journal] == ["/hook/a"]
    finally:
        server.close()
