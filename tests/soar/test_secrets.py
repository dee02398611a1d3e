"""A seeded secret is found in no log, record, API response or database file, even when a
vendor echoes it back in an error: for ``${env:VAR}`` and for ``${secret:NAME}`` from each
backend (AWS Secrets Manager through moto in server mode, the environment, a folder of
files), on SQLite and PostgreSQL. Plus the backends' own contracts (errors name the secret,
never its value; a file name cannot leave its folder; values are cached briefly)."""

from __future__ import annotations

import json
import logging
import uuid
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


SOURCES = ["env_ref", "aws_secrets_manager", "env_backend", "file_backend"]


@pytest.fixture(params=SOURCES)
def secret_runtime(
    request: pytest.FixtureRequest,
    make_runtime: Any,
    okta: Any,
    state_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Any:
    """A runtime whose Okta connection's token is OKTA_TOKEN, seeded in one of SOURCES."""
    from mantissa.secrets import clear_cache

    clear_cache()
    source = request.param
    secrets_cfg: dict[str, Any] | None = None
    token = "${env:OKTA_TOKEN}"
    if source == "aws_secrets_manager":
        import boto3

        url = request.getfixturevalue("moto_url")
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        name = f"prod/okta-{uuid.uuid4().hex[:8]}"
        boto3.client("secretsmanager", region_name="us-east-1", endpoint_url=url).create_secret(
            Name=name, SecretString=json.dumps({"token": OKTA_TOKEN, "org": "acme"})
        )
        monkeypatch.delenv("OKTA_TOKEN")  # only the backend knows it
        secrets_cfg = {"backend": "aws_secrets_manager", "region": "us-east-1", "endpoint_url": url}
        token = "${secret:" + name + "#token}"
    elif source == "env_backend":
        monkeypatch.delenv("OKTA_TOKEN")
        monkeypatch.setenv("MANTISSA_SECRET_OKTA_MAIN_TOKEN", OKTA_TOKEN)
        token = "${secret:okta-main-token}"
    elif source == "file_backend":
        monkeypatch.delenv("OKTA_TOKEN")
        folder = tmp_path / "run-secrets"  # outside the data dir, like /run/secrets
        folder.mkdir()
        (folder / "okta_token").write_text(OKTA_TOKEN + "\n")
        secrets_cfg = {"backend": "file", "path": str(folder)}
        token = "${secret:okta_token}"
    cfg: dict[str, Any] = {
        "connections": {"okta_main": {"type": "okta", "base_url": okta[1].url, "token": token}}
    }
    if secrets_cfg:
        cfg["secrets"] = secrets_cfg
    return make_runtime(cfg, state_url)


def test_secret_never_leaks(
    secret_runtime: Any, okta: Any, caplog: pytest.LogCaptureFixture, cli: Any
) -> None:
    caplog.set_level(logging.DEBUG)
    rt = secret_runtime
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


def test_backend_contracts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, moto_url: str) -> None:
    import boto3

    from mantissa.errors import ConfigError
    from mantissa.secrets import SecretsConfig, clear_cache, resolve

    clear_cache()
    # file: a plain file name only; a missing one names the secret, not a value
    (tmp_path / "tok").write_text("s3cr3t-file-value\n")
    fcfg = SecretsConfig(backend="file", path=str(tmp_path))
    assert resolve("Bearer ${secret:tok}", fcfg) == "Bearer s3cr3t-file-value"
    for bad in ("../etc/passwd", "a/b", ".hidden"):
        with pytest.raises(ConfigError):
            resolve("${secret:" + bad + "}", fcfg)
    with pytest.raises(ConfigError, match="no file nope"):
        resolve("${secret:nope}", fcfg)
    # env: prefix + NAME upper-cased; ${env:} still works beside it
    monkeypatch.setenv("MANTISSA_SECRET_CF_API", "cf-value-123")
    monkeypatch.setenv("PLAIN", "plain-value")
    assert resolve("${secret:cf.api}:${env:PLAIN}", SecretsConfig()) == "cf-value-123:plain-value"
    with pytest.raises(ConfigError, match="MANTISSA_SECRET_MISSING is not set"):
        resolve("${secret:missing}", SecretsConfig())
    with pytest.raises(ConfigError, match="unknown backend"):
        resolve("${secret:x}", SecretsConfig(backend="vault9"))
    # AWS Secrets Manager (moto server): plain and JSON secrets, errors without values,
    # a short cache, and rotation seen once the cache has expired
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    sm = boto3.client("secretsmanager", region_name="us-east-1", endpoint_url=moto_url)
    name = f"ci/{uuid.uuid4().hex[:8]}"
    sm.create_secret(Name=name, SecretString="first-value-abc")
    sm.create_secret(Name=name + "-json", SecretString='{"k": "json-value-xyz"}')
    acfg = SecretsConfig(
        backend="aws_secrets_manager", region="us-east-1", endpoint_url=moto_url, cache_secs=0.5
    )
    assert resolve("${secret:" + name + "}", acfg) == "first-value-abc"
    assert resolve("${secret:" + name + "-json#k}", acfg) == "json-value-xyz"
    with pytest.raises(ConfigError) as err:
        resolve("${secret:" + name + "-json#nokey}", acfg)
    assert "json-value-xyz" not in str(err.value) and "nokey" in str(err.value)
    with pytest.raises(ConfigError, match="ResourceNotFoundException"):
        resolve("${secret:ci/absent}", acfg)
    sm.put_secret_value(SecretId=name, SecretString="second-value-def")
    assert resolve("${secret:" + name + "}", acfg) == "first-value-abc"  # cached
    import time

    time.sleep(0.6)
    assert resolve("${secret:" + name + "}", acfg) == "second-value-def"  # rotation seen
    down = SecretsConfig(
        backend="aws_secrets_manager", region="us-east-1", endpoint_url="http://127.0.0.1:9"
    )
    with pytest.raises(ConfigError, match="unreachable"):
        resolve("${secret:" + name + "}", down)
