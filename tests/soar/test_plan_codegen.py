"""from-plan (offline, deterministic, draft, unmapped → manual approval) and codegen
(the reference's handler, AST-checked, runnable)."""

from __future__ import annotations

import json
import runpy
from pathlib import Path
from typing import Any

import pytest
import yaml

from mantissa.soar.codegen import CodegenRejected, check, generate
from mantissa.soar.ir_parser import map_step, parse_plan
from mantissa.soar.store import PlaybookStore, parse
from tests.alerts.stubs import StubServer
from tests.soar.conftest import playbook
from tests.soar.stubs import HookStub

PLAN = (
    Path(__file__).resolve().parents[2] / "src/mantissa/rules/playbooks/plans/account-takeover.md"
)


@pytest.mark.parametrize(
    ("prose", "action"),
    [
        ("Disable the account", "disable_user"),
        ("Suspend the user in Okta", "disable_user"),
        ("Revoke all sessions of the user", "revoke_sessions"),
        ("Force a password reset", "reset_password"),
        ("Deactivate the user's AWS access keys", "revoke_api_keys"),
        ("Block the source IP at the WAF", "block_ip"),
        ("Isolate the host with CrowdStrike", "isolate_host"),
        ("Collect forensic evidence from the laptop", "collect_forensics"),
        ("Open a Jira ticket", "create_ticket"),
        ("Notify the on-call via PagerDuty", "send_notification"),
        ("Sinkhole the phishing domain", "block_domain"),
        ("Re-enable the account once verified", "enable_user"),
    ],
)
def test_phrases_map(prose: str, action: str) -> None:
    mapped = map_step(prose)
    assert mapped is not None and mapped[0] == action


def test_plan_converts_deterministically(tmp_path: Path) -> None:
    a, b = parse_plan(PLAN), parse_plan(PLAN)
    assert a == b
    doc = yaml.safe_load(a)
    assert doc["status"] == "draft"
    assert doc["trigger"] == {
        "type": "alert",
        "conditions": {"rule_id": "okta_*", "severity": ["high", "critical"]},
    }
    acts = [s["action_type"] for s in doc["steps"]]
    assert acts == [
        "send_notification",
        "revoke_sessions",
        "run_query",
        "disable_user",
        "manual_task",
        "create_ticket",
    ]
    manual = doc["steps"][4]
    assert manual["requires_approval"] is True and "manager" in manual["parameters"]["instructions"]
    parse(a)  # valid playbook


@pytest.mark.parametrize("suffix", [".txt", ".yaml"])
def test_txt_and_yaml_plans(tmp_path: Path, suffix: str) -> None:
    f = tmp_path / f"plan{suffix}"
    if suffix == ".txt":
        f.write_text(
            "Phishing response\n1. Block the sender domain - sinkhole it\n"
            "2. Pray - hope for the best\n"
        )
    else:
        f.write_text(
            yaml.safe_dump(
                {
                    "name": "Phishing response",
                    "trigger": "daily",
                    "steps": [
                        "Block the domain - sinkhole it",
                        {"name": "Pray", "description": "hope"},
                    ],
                }
            )
        )
    doc = yaml.safe_load(parse_plan(f))
    assert [s["action_type"] for s in doc["steps"]] == ["block_domain", "manual_task"]
    assert doc["name"] == "Phishing response"


def test_from_plan_cli_then_import_run(cli: Any, tmp_path: Path, data_dir: Path) -> None:
    out = tmp_path / "pb.yaml"
    r = cli("playbooks", "from-plan", str(PLAN), "-o", str(out))
    assert r.code == 0, r.err
    r = cli("playbooks", "import", str(out), "--format", "json")
    assert r.json() == {"id": "account-takeover-response", "version": "1.0.0", "status": "draft"}
    r = cli("playbooks", "activate", "account-takeover-response", "--format", "json")
    assert r.json()["status"] == "active"


def test_codegen_runs_and_is_checked(
    make_runtime: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hook = HookStub()
    server = StubServer(hook)
    try:
        text = playbook(
            [
                {
                    "id": "a",
                    "name": 'Post "it"\n# injected = 1',
                    "action_type": "http_request",
                    "parameters": {"url": server.url + "/hook", "body": {"u": "{{ alert.user }}"}},
                },
                {
                    "id": "b",
                    "name": "b",
                    "action_type": "http_request",
                    "depends_on": ["a"],
                    "parameters": {"url": "http://127.0.0.1:9/down"},
                    "on_failure": "continue",
                },
            ],
            id="gen",
        )
        code = generate(parse(text))
        assert code.startswith("# Auto-generated from playbook: Test playbook\n# Version: 1.0.0")
        # the name stays inside one comment line: no statement of its own
        assert not any(
            ln.strip().startswith(("injected", "# injected")) for ln in code.splitlines()
        )
        f = tmp_path / "gen.py"
        f.write_text(code)
        rt = make_runtime()
        monkeypatch.setenv("MANTISSA_HOME", str(rt.data_dir))
        import mantissa.soar.codegen as cg

        monkeypatch.setattr(cg, "_RUNTIME", None)
        mod = runpy.run_path(str(f))
        res = mod["lambda_handler"]({"alert": {"user": "bob"}, "execution_id": "e1"}, None)
        assert res["status"] == "completed"
        assert [r["status"] for r in res["results"]] == ["success", "error"]
        assert json.loads(server.journal[0].body) == {"u": "bob"}
    finally:
        server.close()
    for bad in (
        "import os\n",
        "from subprocess import run\n",
        "eval('1')\n",
        "x = ().__class__\n",
        "run_action(name, {})\n",
        "f = lambda: 1\n",
    ):
        with pytest.raises(CodegenRejected):
            check(bad)


def test_codegen_cli(cli: Any, tmp_path: Path) -> None:
    pb = tmp_path / "p.yaml"
    pb.write_text(
        playbook(
            [
                {
                    "id": "a",
                    "name": "a",
                    "action_type": "update_asset",
                    "parameters": {"asset_id": "x"},
                }
            ],
            id="cg",
        )
    )
    assert cli("playbooks", "import", str(pb)).code == 0
    out = tmp_path / "h.py"
    r = cli("playbooks", "codegen", "cg", "-o", str(out))
    assert r.code == 0 and "def lambda_handler" in out.read_text()


def test_store_unused_import_guard(make_runtime: Any) -> None:
    assert PlaybookStore(make_runtime()).list() == []
