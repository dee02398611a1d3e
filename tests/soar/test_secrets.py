"""A seeded secret is found in no log, record, API response or database file, even when a
vendor echoes it back in an error."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from mantissa.api.app import create_app
from mantissa.api.auth import TokenStore
from mantissa.soar.approvals import decide, list_approvals
from mantissa.soar.executor import Executor
from mantissa.soar.store import PlaybookStore
from tests.alerts.stubs import Request, StubServer, reply_json
from tests.soar.conftest import playbook
from tests.soar.stubs import OKTA_TOKEN


def _echo(req: Request) -> Any:
    # a badly behaved vendor that echoes the credential in its error body
    return reply_json(500, {"error": "boom", "auth": req.headers.get("authorization")})


def _db_text(rt: Any) -> str:
    out = []
    with rt.state.engine.connect() as conn:
        md = sa.MetaData()
        md.reflect(conn)
        for t in md.sorted_tables:
            for row in conn.execute(sa.select(t)):
                out.append(json.dumps([str(v) for v in row]))
    return "\n".join(out)


def test_secret_never_leaks(
    okta_runtime: Any, okta: Any, caplog: pytest.LogCaptureFixture, cli: Any
) -> None:
    caplog.set_level(logging.DEBUG)
    rt = okta_runtime
    echo = StubServer(_echo)
    try:
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
                        "parameters": {"user_id": "bob@example.com", "connection": "okta_main"},
                    },
                    {
                        "id": "echo",
                        "name": "echo",
                        "action_type": "http_request",
                        "on_failure": "continue",
                        "parameters": {"url": echo.url + "/x", "connection": "okta_main"},
                    },
                ],
                id="leaky",
            )
        )
        ex = Executor(rt)
        eid = ex.start("leaky", input={})
        assert ex.run(eid) == "waiting_approval"
        [ap] = list_approvals(rt)
        decide(rt, ap["id"], "approve", "alice")
        dry = ex.start("leaky", input={}, dry_run=True)
        ex.run(dry)
        doc = ex.get(eid)
        assert doc["steps"][2]["status"] == "failed" and "***" in doc["steps"][2]["error"]
        outputs = [
            json.dumps(ex.get(eid)),
            json.dumps(ex.get(dry)),
            json.dumps(ex.audit_log(eid), default=str),
        ]
        for args in (
            ("executions", "show", eid, "--format", "json", "--audit"),
            ("executions", "list", "--format", "json"),
            ("approvals", "list", "--all", "--format", "json"),
        ):
            r = cli(*args, data=rt.data_dir)
            outputs += [r.out, r.err]
        store = TokenStore(rt.state)
        tok = store.create("admin", name="t")[1]
        with TestClient(create_app(rt), raise_server_exceptions=False) as c:
            for path in (
                f"/executions/{eid}",
                f"/executions/{dry}",
                "/executions",
                "/approvals?status=",
                "/playbooks/leaky",
            ):
                outputs.append(c.get(path, headers={"Authorization": f"Bearer {tok}"}).text)
        outputs.append(caplog.text)
        outputs.append(_db_text(rt))
        for text in outputs:
            assert OKTA_TOKEN not in text
        for f in Path(rt.data_dir).rglob("*"):
            if f.is_file():
                assert OKTA_TOKEN.encode() not in f.read_bytes(), f
        assert okta[0].effects == [("revoke_sessions", "00ub0b"), ("suspend", "00ub0b")]
    finally:
        echo.close()
