"""The remaining actions: AWS (WAFv2 LockToken, Route 53, IAM) through moto in server mode,
Cloudflare and CrowdStrike Falcon stubs, run_query, update_asset, run_script, tickets."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import pytest

from mantissa.soar.executor import Executor
from mantissa.soar.store import PlaybookStore
from tests.alerts.stubs import StubServer
from tests.soar.conftest import playbook
from tests.soar.stubs import CF_TOKEN, FALCON_ID, FALCON_SECRET, CloudflareStub, FalconStub


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_KEY_ID", "AKIAMANTISSATEST0001")
    monkeypatch.setenv("AWS_SECRET", "aws-SECRET-access-key-value")


def _run(
    rt: Any, steps: list[dict[str, Any]], input: dict[str, Any] | None = None, dry_run: bool = False
) -> dict[str, Any]:
    pid = PlaybookStore(rt).import_text(playbook(steps)).id
    ex = Executor(rt)
    eid = ex.start(pid, input=input or {}, dry_run=dry_run)
    ex.run(eid)
    return ex.get(eid)


def _aws_conn(moto_url: str, type_: str, **kw: Any) -> dict[str, Any]:
    return {
        "type": type_,
        "base_url": moto_url,
        "access_key_id": "${env:AWS_KEY_ID}",
        "secret_access_key": "${env:AWS_SECRET}",
        "region": "us-east-1",
        **kw,
    }


def test_waf_block_unblock_locktoken(
    moto_url: str, aws_env: None, make_runtime: Any, state_url: str
) -> None:
    import boto3

    waf = boto3.client(
        "wafv2",
        endpoint_url=moto_url,
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="y",
    )
    s = waf.create_ip_set(
        Name="mantissa-block",
        Scope="REGIONAL",
        IPAddressVersion="IPV4",
        Addresses=["198.51.100.1/32"],
    )["Summary"]
    rt = make_runtime(
        {
            "connections": {
                "waf": _aws_conn(
                    moto_url, "aws_waf", ip_set_name="mantissa-block", ip_set_id=s["Id"]
                )
            }
        },
        state_url,
    )
    step = {
        "id": "b",
        "name": "b",
        "action_type": "block_ip",
        "parameters": {"ip_address": "{{ input.ip }}", "connection": "waf"},
    }
    doc = _run(rt, [step, {**step, "id": "again"}], {"ip": "203.0.113.9"})
    assert doc["status"] == "succeeded", doc["error"]
    assert doc["steps"][0]["output"]["changed"] is True
    assert doc["steps"][1]["output"]["changed"] is False  # verify-first: already there
    got = waf.get_ip_set(Name="mantissa-block", Scope="REGIONAL", Id=s["Id"])["IPSet"]
    assert sorted(got["Addresses"]) == ["198.51.100.1/32", "203.0.113.9/32"]
    doc = _run(
        rt,
        [
            {
                "id": "u",
                "name": "u",
                "action_type": "unblock_ip",
                "parameters": {"ip_address": "203.0.113.9", "connection": "waf"},
            }
        ],
    )
    assert doc["status"] == "succeeded"
    got = waf.get_ip_set(Name="mantissa-block", Scope="REGIONAL", Id=s["Id"])["IPSet"]
    assert got["Addresses"] == ["198.51.100.1/32"]
    assert "aws-SECRET" not in json.dumps(doc)


def test_route53_block_domain(
    moto_url: str, aws_env: None, make_runtime: Any, state_url: str
) -> None:
    import boto3

    r53 = boto3.client(
        "route53",
        endpoint_url=moto_url,
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="y",
    )
    zone = r53.create_hosted_zone(Name="rpz.internal", CallerReference="t1")["HostedZone"]["Id"]
    rt = make_runtime(
        {
            "connections": {
                "dns": _aws_conn(moto_url, "route53", zone_id=zone, zone_name="rpz.internal")
            }
        },
        state_url,
    )
    doc = _run(
        rt,
        [
            {
                "id": "d",
                "name": "d",
                "action_type": "block_domain",
                "parameters": {"domain": "evil.example.com", "connection": "dns"},
            }
        ],
    )
    assert doc["status"] == "succeeded", doc["error"]
    recs = r53.list_resource_record_sets(HostedZoneId=zone)["ResourceRecordSets"]
    names = {(r["Name"], r["Type"]) for r in recs}
    assert ("evil.example.com.rpz.internal.", "A") in names
    assert ("*.evil.example.com.rpz.internal.", "A") in names
    bad = _run(
        rt,
        [
            {
                "id": "d",
                "name": "d",
                "action_type": "block_domain",
                "parameters": {"domain": "evil.example.com; rm -rf /", "connection": "dns"},
            }
        ],
    )
    assert bad["status"] == "failed" and "not a domain name" in bad["error"]


def test_iam_revoke_api_keys(
    moto_url: str, aws_env: None, make_runtime: Any, state_url: str
) -> None:
    import boto3

    iam = boto3.client(
        "iam",
        endpoint_url=moto_url,
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="y",
    )
    user = f"mallory-{state_url.split(':', 1)[0]}"  # one moto server for both backends
    iam.create_user(UserName=user)
    key = iam.create_access_key(UserName=user)["AccessKey"]["AccessKeyId"]
    rt = make_runtime({"connections": {"iam": _aws_conn(moto_url, "aws_iam")}}, state_url)
    doc = _run(
        rt,
        [
            {
                "id": "k",
                "name": "k",
                "action_type": "revoke_api_keys",
                "parameters": {"user_id": user, "connection": "iam"},
            },
            {
                "id": "s",
                "name": "s",
                "action_type": "revoke_sessions",
                "parameters": {"user_id": user, "connection": "iam"},
            },
        ],
    )
    assert doc["status"] == "succeeded", doc["error"]
    assert doc["steps"][0]["output"]["keys_changed"] == [key]
    meta = iam.list_access_keys(UserName=user)["AccessKeyMetadata"]
    assert meta[0]["Status"] == "Inactive"
    pol = iam.get_user_policy(UserName=user, PolicyName="AWSRevokeOlderSessions")
    assert "aws:TokenIssueTime" in json.dumps(pol["PolicyDocument"])


def test_cloudflare_block_unblock(
    make_runtime: Any, monkeypatch: pytest.MonkeyPatch, state_url: str
) -> None:
    monkeypatch.setenv("CF_TOKEN", CF_TOKEN)
    cf = CloudflareStub()
    server = StubServer(cf)
    try:
        rt = make_runtime(
            {
                "connections": {
                    "cf": {
                        "type": "cloudflare",
                        "base_url": server.url,
                        "token": "${env:CF_TOKEN}",
                        "zone_id": "z1",
                    }
                }
            },
            state_url,
        )
        step = {
            "id": "b",
            "name": "b",
            "action_type": "block_ip",
            "parameters": {"ip_address": "203.0.113.7", "connection": "cf"},
        }
        doc = _run(
            rt,
            [
                step,
                {**step, "id": "b2"},
                {
                    "id": "u",
                    "name": "u",
                    "action_type": "unblock_ip",
                    "parameters": {"ip_address": "203.0.113.7", "connection": "cf"},
                },
            ],
        )
        assert doc["status"] == "succeeded", doc["error"]
        assert cf.effects == [("block", "203.0.113.7"), ("unblock", "203.0.113.7")]
        assert CF_TOKEN not in json.dumps(doc)
        server.queued_failures.append((500, {}, b"{}"))
        doc = _run(rt, [step])
        assert doc["status"] == "failed" and "answered 500" in doc["error"]
    finally:
        server.close()


def test_falcon_isolate_forensics(
    make_runtime: Any, monkeypatch: pytest.MonkeyPatch, state_url: str
) -> None:
    monkeypatch.setenv("FALCON_SECRET", FALCON_SECRET)
    falcon = FalconStub()
    server = StubServer(falcon)
    try:
        rt = make_runtime(
            {
                "connections": {
                    "cs": {
                        "type": "crowdstrike",
                        "base_url": server.url,
                        "client_id": FALCON_ID,
                        "client_secret": "${env:FALCON_SECRET}",
                    }
                }
            },
            state_url,
        )
        p = {"host_id": "hostabc", "connection": "cs"}
        doc = _run(
            rt,
            [
                {"id": "i", "name": "i", "action_type": "isolate_host", "parameters": p},
                {"id": "i2", "name": "i2", "action_type": "isolate_host", "parameters": p},
                {
                    "id": "f",
                    "name": "f",
                    "action_type": "collect_forensics",
                    "parameters": {**p, "collection_type": "network"},
                },
                {"id": "u", "name": "u", "action_type": "unisolate_host", "parameters": p},
            ],
        )
        assert doc["status"] == "succeeded", doc["error"]
        assert falcon.effects == [
            ("contain", "hostabc"),
            ("rtr_session", "hostabc"),
            ("rtr", "netstat"),
            ("rtr", "ipconfig"),
            ("lift_containment", "hostabc"),
        ]
        assert doc["steps"][2]["output"]["results"]["netstat"]["stdout"] == "netstat output"
        blob = json.dumps(doc)
        assert FALCON_SECRET not in blob and falcon.token not in blob
    finally:
        server.close()


def test_run_script_only_from_scripts_dir(
    make_runtime: Any, tmp_path: Path, state_url: str
) -> None:
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    sh = scripts / "hello.sh"
    sh.write_text('#!/bin/sh\necho hello "$1"\n')
    sh.chmod(sh.stat().st_mode | stat.S_IEXEC)
    (tmp_path / "outside.sh").write_text("#!/bin/sh\necho pwned\n")
    rt = make_runtime({"soar": {"scripts_dir": str(scripts)}}, state_url)
    doc = _run(
        rt,
        [
            {
                "id": "s",
                "name": "s",
                "action_type": "run_script",
                "parameters": {"script": "hello.sh", "args": ["{{ input.who }}; id"]},
            }
        ],
        {"who": "bob"},
    )
    assert doc["status"] == "succeeded", doc["error"]
    assert doc["steps"][0]["output"]["stdout"] == "hello bob; id\n"
    for bad in ("../outside.sh", "/bin/sh", ".hidden", "nope.sh"):
        doc = _run(
            rt,
            [{"id": "s", "name": "s", "action_type": "run_script", "parameters": {"script": bad}}],
        )
        assert doc["status"] == "failed", bad


def test_update_asset_and_run_query(make_runtime: Any, state_url: str) -> None:
    rt = make_runtime(state_url=state_url)
    doc = _run(
        rt,
        [
            {
                "id": "a",
                "name": "a",
                "action_type": "update_asset",
                "parameters": {"asset_id": "laptop-7", "status": "quarantined", "tags": ["ir"]},
            },
            {
                "id": "q",
                "name": "q",
                "action_type": "run_query",
                "parameters": {"query": "SELECT 1 AS one"},
            },
            {
                "id": "bad",
                "name": "bad",
                "action_type": "run_query",
                "parameters": {"query": "DROP TABLE x"},
            },
        ],
    )
    assert rt.state.get("assets", "laptop-7")["status"] == "quarantined"
    assert doc["steps"][1]["output"]["rows"] == [[1]]
    assert (
        doc["status"] == "failed" and "not allowed" in doc["error"].lower()
    ) or "read-only" in doc["error"]


def test_every_action_registered_with_schema_and_idempotency() -> None:
    from mantissa.soar.actions import action_types

    names = set(action_types())
    assert names >= {
        "http_request",
        "send_notification",
        "create_ticket",
        "update_ticket",
        "disable_user",
        "enable_user",
        "revoke_sessions",
        "reset_password",
        "revoke_api_keys",
        "block_ip",
        "unblock_ip",
        "block_domain",
        "isolate_host",
        "unisolate_host",
        "collect_forensics",
        "run_query",
        "update_asset",
        "run_script",
    }
    for spec in action_types().values():
        assert spec.idempotency in ("natural", "keyed", "verify-first", "unsafe")
        assert spec.schema()["type"] == "object"
