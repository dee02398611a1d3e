"""kill -9 at the worst moments; each side effect is found exactly once in the stubs.

* before a step (during a retry backoff, a timer row): the step runs once after resume;
* between sending and recording a request: a keyed action is re-sent with the same
  Idempotency-Key (the vendor deduplicates), a verify-first action checks first and does
  nothing twice, an unsafe one is marked ``in_doubt`` and the execution stops ``failed``;
* during an approval wait: the approval, given later by another process, continues it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mantissa.soar.approvals import decide, list_approvals
from mantissa.soar.executor import Executor
from mantissa.soar.store import PlaybookStore
from tests.alerts.stubs import Reply, Request, StubServer
from tests.soar.conftest import playbook
from tests.soar.stubs import OKTA_TOKEN, HookStub

pytestmark = pytest.mark.slow


def _child(data_dir: Path, *args: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "OKTA_TOKEN": OKTA_TOKEN}
    return subprocess.Popen(
        [sys.executable, "-m", "mantissa.cli.main", "--data-dir", str(data_dir), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )


def _wait(cond: Callable[[], bool], timeout: float = 20.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return
        time.sleep(0.02)
    raise AssertionError("condition not reached")


def _kill(p: subprocess.Popen[bytes]) -> None:
    os.kill(p.pid, signal.SIGKILL)
    p.wait(10)
    assert p.returncode == -signal.SIGKILL


class SlowAfter:
    """Apply the vendor effect, then hold the answer (the process dies before recording)."""

    def __init__(self, inner: Callable[[Request], Reply], match: str, secs: float) -> None:
        self.inner, self.match, self.secs, self.held = inner, match, secs, 0

    def __call__(self, req: Request) -> Reply:
        out = self.inner(req)
        if self.match in f"{req.method} {req.path}" and self.held == 0:
            self.held += 1
            time.sleep(self.secs)
        return out


def _exec_id(rt: Any) -> str:
    rows, _ = Executor(rt).list()
    return rows[0]["id"]


def test_kill_between_send_and_record_keyed(make_runtime: Any, state_url: str) -> None:
    hook = HookStub()
    server = StubServer(SlowAfter(hook, "POST /hook", 30))
    try:
        rt = make_runtime(state_url=state_url)
        PlaybookStore(rt).import_text(
            playbook(
                [
                    {
                        "id": "post",
                        "name": "post",
                        "action_type": "http_request",
                        "parameters": {"url": server.url + "/hook", "body": {"a": 1}},
                    },
                ],
                id="keyed",
            )
        )
        p = _child(rt.data_dir, "playbooks", "run", "keyed", "--input", "{}")
        _wait(lambda: len(hook.effects) == 1)
        _kill(p)
        eid = _exec_id(rt)
        assert Executor(rt).get(eid)["steps"][0]["status"] == "running"
        assert Executor(rt).resume(eid) == "succeeded"
        assert len(hook.effects) == 1  # the re-send carried the same key: deduplicated
        keys = {r.headers["idempotency-key"] for r in server.journal}
        assert len(keys) == 1 and len(server.journal) == 2
        assert Executor(rt).get(eid)["steps"][0]["output"]["body"]["replayed"] is True
    finally:
        server.close()


def test_kill_between_send_and_record_verify_first_and_unsafe(
    make_runtime: Any, okta: Any, state_url: str
) -> None:
    handler, plain = okta
    plain.close()
    slow = SlowAfter(handler, "/lifecycle/", 30)
    server = StubServer(slow)
    try:
        rt = make_runtime(
            {
                "connections": {
                    "okta_main": {
                        "type": "okta",
                        "base_url": server.url,
                        "token": "${env:OKTA_TOKEN}",
                    }
                }
            },
            state_url,
        )
        PlaybookStore(rt).import_text(
            playbook(
                [
                    {
                        "id": "d",
                        "name": "d",
                        "action_type": "disable_user",
                        "parameters": {"user_id": "bob@example.com", "connection": "okta_main"},
                    },
                ],
                id="vf",
            )
        )
        p = _child(rt.data_dir, "playbooks", "run", "vf", "--input", "{}")
        _wait(lambda: handler.effects == [("suspend", "00ub0b")])
        _kill(p)
        eid = _exec_id(rt)
        assert Executor(rt).resume(eid) == "succeeded"
        assert handler.effects == [("suspend", "00ub0b")]  # verified: already suspended
        assert Executor(rt).get(eid)["steps"][0]["output"]["changed"] is False

        # unsafe: reset_password sends an email each time; never re-run blindly
        slow.held = 0
        PlaybookStore(rt).import_text(
            playbook(
                [
                    {
                        "id": "r",
                        "name": "r",
                        "action_type": "reset_password",
                        "parameters": {"user_id": "bob@example.com", "connection": "okta_main"},
                    },
                    {
                        "id": "after",
                        "name": "after",
                        "action_type": "revoke_sessions",
                        "parameters": {"user_id": "bob@example.com", "connection": "okta_main"},
                    },
                ],
                id="unsafe",
            )
        )
        p = _child(rt.data_dir, "playbooks", "run", "unsafe", "--input", "{}")
        _wait(lambda: ("reset_password", "00ub0b") in handler.effects)
        _kill(p)
        eid = _exec_id(rt)
        assert Executor(rt).resume(eid) == "failed"
        doc = Executor(rt).get(eid)
        assert [s["status"] for s in doc["steps"]] == ["in_doubt", "skipped"]
        assert "not idempotent" in doc["error"] and "--retry r" in doc["error"]
        assert handler.effects.count(("reset_password", "00ub0b")) == 1
        assert ("revoke_sessions", "00ub0b") not in handler.effects
    finally:
        server.close()


def test_kill_before_a_step(make_runtime: Any, state_url: str) -> None:
    first, second = HookStub(), HookStub()
    s1, s2 = StubServer(first), StubServer(second)
    s2.queued_failures.append((500, {}, b"{}"))
    try:
        rt = make_runtime(state_url=state_url)
        PlaybookStore(rt).import_text(
            playbook(
                [
                    {
                        "id": "one",
                        "name": "one",
                        "action_type": "http_request",
                        "parameters": {"url": s1.url + "/hook"},
                    },
                    {
                        "id": "two",
                        "name": "two",
                        "action_type": "http_request",
                        "depends_on": ["one"],
                        "parameters": {"url": s2.url + "/hook"},
                        "retries": {"max_attempts": 2, "backoff_seconds": 2},
                    },
                ],
                id="before",
            )
        )
        p = _child(rt.data_dir, "playbooks", "run", "before", "--input", "{}")
        # step two failed once (500): its retry is a timer row; kill during the backoff
        eid_box: list[str] = []

        def waiting() -> bool:
            rows, _ = Executor(rt).list()
            if not rows:
                return False
            eid_box[:] = [rows[0]["id"]]
            st = Executor(rt).get(rows[0]["id"])["steps"]
            return st[0]["status"] == "succeeded" and st[1]["status"] == "retry_wait"

        _wait(waiting)
        _kill(p)
        eid = eid_box[0]
        assert Executor(rt).get(eid)["status"] == "running"
        assert Executor(rt).resume(eid) == "succeeded"
        assert len(first.effects) == 1 and len(second.effects) == 1
        assert len(s1.journal) == 1 and len(s2.journal) == 2  # the failed try, then one
    finally:
        s1.close()
        s2.close()


def test_kill_during_approval_wait(make_runtime: Any, okta: Any, state_url: str) -> None:
    handler, server = okta
    rt = make_runtime(
        {
            "connections": {
                "okta_main": {"type": "okta", "base_url": server.url, "token": "${env:OKTA_TOKEN}"}
            }
        },
        state_url,
    )
    PlaybookStore(rt).import_text(
        playbook(
            [
                {
                    "id": "rev",
                    "name": "rev",
                    "action_type": "revoke_sessions",
                    "parameters": {"user_id": "bob@example.com", "connection": "okta_main"},
                },
                {
                    "id": "d",
                    "name": "d",
                    "action_type": "disable_user",
                    "requires_approval": True,
                    "depends_on": ["rev"],
                    "parameters": {"user_id": "bob@example.com", "connection": "okta_main"},
                },
            ],
            id="gate",
        )
    )
    code = (
        "import sys, time\nfrom mantissa.runtime import Runtime\n"
        "from mantissa.soar.executor import Executor\n"
        f"rt = Runtime({str(rt.data_dir)!r})\nex = Executor(rt)\n"
        "eid = ex.start('gate', input={})\nprint(ex.run(eid), flush=True)\ntime.sleep(600)\n"
    )
    p = subprocess.Popen(
        [sys.executable, "-c", code],
        stdout=subprocess.PIPE,
        env={**os.environ, "OKTA_TOKEN": OKTA_TOKEN},
    )
    assert p.stdout is not None
    assert p.stdout.readline().decode().strip() == "waiting_approval"
    _kill(p)
    [ap] = list_approvals(rt)
    out = decide(rt, ap["id"], "approve", "alice")
    assert out["execution_status"] == "succeeded"
    assert handler.effects == [("revoke_sessions", "00ub0b"), ("suspend", "00ub0b")]
    assert json.dumps(Executor(rt).get(out["execution_id"])).count('"succeeded"') >= 3
