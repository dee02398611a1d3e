"""The ``mantissa rules`` and ``mantissa detect`` commands with their JSON contracts."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
import sqlglot
import yaml

from mantissa.cli.main import run
from mantissa.detect.dialects import DIALECTS, SQLGLOT_NAME
from tests.detect.conftest import ingest_events
from tests.detect.test_semantics import ct

RULE = {
    "title": "Trail stopped",
    "id": "7b0c7f1e-3a0d-4c8e-9f11-2b2d4e5f6a01",
    "level": "high",
    "tags": ["attack.defense-evasion", "attack.t1562.008"],
    "logsource": {"product": "aws", "service": "cloudtrail"},
    "detection": {"s": {"eventName": "StopLogging"}, "condition": "s"},
}


def _json(capsys: pytest.CaptureFixture[str], argv: list[str], code: int = 0):  # type: ignore[no-untyped-def]
    capsys.readouterr()
    assert run(argv) == code
    return json.loads(capsys.readouterr().out)


@pytest.fixture
def rules_dir(tmp_path: Path) -> Path:
    d = tmp_path / "in"
    d.mkdir()
    (d / "trail.yml").write_text(yaml.safe_dump(RULE))
    (d / "unmapped.yml").write_text(
        yaml.safe_dump(
            {**RULE, "id": "7b0c7f1e-3a0d-4c8e-9f11-2b2d4e5f6a02", "logsource": {"product": "acme"}}
        )
    )
    (d / "broken.yml").write_text(
        "title: x\ndetection:\n  s: {a: 1}\n  condition: s and nope\nlogsource: {product: aws}\n"
    )
    (d / "bad_yaml.yml").write_text("title: [unclosed\n")
    return d


def test_convert_json_contract(rt, rules_dir: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    for dialect in DIALECTS:
        out = _json(
            capsys,
            [
                "--data-dir",
                str(rt.data_dir),
                "rules",
                "convert",
                "--dialect",
                dialect,
                str(rules_dir / "trail.yml"),
                "--format",
                "json",
            ],
        )
        assert [set(o) for o in out] == [{"rule_id", "path", "dialect", "sql", "error"}]
        assert out[0]["error"] is None and out[0]["dialect"] == dialect
        sqlglot.parse_one(out[0]["sql"], read=SQLGLOT_NAME[dialect])
    out = _json(
        capsys,
        ["--data-dir", str(rt.data_dir), "rules", "convert", str(rules_dir), "--format", "json"],
    )
    errors = {Path(o["path"]).name: o["error"] for o in out}
    assert errors["trail.yml"] is None
    assert "maps to no table" in errors["unmapped.yml"]
    assert errors["bad_yaml.yml"].startswith("line 1") or "line 2" in errors["bad_yaml.yml"]


def test_validate_json_contract(rt, rules_dir: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    out = _json(
        capsys,
        ["--data-dir", str(rt.data_dir), "rules", "validate", str(rules_dir), "--format", "json"],
        code=1,
    )
    assert {"total", "valid", "unsupported", "invalid"} <= set(out)
    assert out["total"] == 4 and out["valid"] == 1
    assert [Path(u["path"]).name for u in out["unsupported"]] == ["unmapped.yml"]
    invalid = {Path(i["path"]).name: i for i in out["invalid"]}
    assert set(invalid) == {"broken.yml", "bad_yaml.yml"}
    assert invalid["bad_yaml.yml"]["line"] in (1, 2)
    assert all(i["line"] for i in invalid.values())


def test_import_list_run_tune_health(rt, rules_dir: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    dd = ["--data-dir", str(rt.data_dir)]
    out = _json(capsys, [*dd, "rules", "import", str(rules_dir / "trail.yml"), "--format", "json"])
    assert [i["rule_id"] for i in out["imported"]] == [RULE["id"]]
    assert (rt.data_dir / "rules" / "sigma" / "cloudtrail" / "trail.yml").exists()
    listed = _json(capsys, [*dd, "rules", "list", "--format", "json", "--tag", "attack.t1562.008"])
    assert [r["id"] for r in listed] == [RULE["id"]] and listed[0]["table"] == "cloudtrail"

    now = dt.datetime.now(dt.UTC)
    t = now - dt.timedelta(hours=1)
    evs = [
        ct("x1", "StopLogging", user="alice"),
        ct("x2", "StopLogging", user="svc-backup", ip="10.0.0.5"),
    ]
    for e in evs:
        e["eventTime"] = t.isoformat().replace("+00:00", "Z")
    ingest_events(rt, "cloudtrail", evs)
    alerts = _json(capsys, [*dd, "detect", "run", "--since", "24h", "--format", "json"])
    assert sorted(a["entities"]["user"] for a in alerts) == ["alice", "svc-backup"]
    assert all(a["rule_id"] == RULE["id"] and a["severity"] == "high" for a in alerts)
    assert {a["evidence_event_ids"][0] for a in alerts} == {"x1", "x2"}

    tuned = _json(
        capsys,
        [
            *dd,
            "rules",
            "tune",
            RULE["id"],
            "--exclude",
            "src_ip=10.0.0.0/8",
            "--reason",
            "backup host",
            "--format",
            "json",
        ],
    )
    assert tuned["added"][0]["kind"] == "cidr" and tuned["filters"][0]["reason"] == "backup host"
    t2 = (now - dt.timedelta(minutes=30)).isoformat().replace("+00:00", "Z")
    more = [
        ct("x3", "StopLogging", user="svc-backup", ip="10.0.0.5"),
        ct("x4", "StopLogging", user="carol"),
    ]
    for e in more:
        e["eventTime"] = t2
    ingest_events(rt, "cloudtrail", more, "more")
    alerts = _json(
        capsys,
        [
            *dd,
            "detect",
            "run",
            "--from",
            (now - dt.timedelta(minutes=45)).isoformat(),
            "--format",
            "json",
        ],
    )
    assert [a["entities"]["user"] for a in alerts] == [
        "carol"
    ]  # the filtered host is excluded in SQL

    health = _json(capsys, [*dd, "rules", "health", "--format", "json"])
    mine = next(h for h in health["rules"] if h["rule_id"] == RULE["id"])
    assert mine["status"] == "ok" and mine["runs"] == 2 and mine["filters"] == 1


def test_rules_test_builtin_samples(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    out = _json(
        capsys,
        [
            "--data-dir",
            str(tmp_path),
            "rules",
            "test",
            "5537bc5c-e159-590b-b62d-e33c8a4b62dd",
            "--format",
            "json",
        ],
    )
    assert out["passed"] == 1 and out["results"][0]["checks"][0]["matched"] == 2


@pytest.mark.slow
def test_rules_test_whole_library(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    out = _json(capsys, ["--data-dir", str(tmp_path), "rules", "test", "--format", "json"])
    assert out["total"] >= 20 and out["failed"] == 0, [r for r in out["results"] if not r["passed"]]


def test_unknown_rule_and_bad_window(rt, capsys) -> None:  # type: ignore[no-untyped-def]
    dd = ["--data-dir", str(rt.data_dir)]
    assert run([*dd, "detect", "run", "--rules", "nope"]) == 2
    assert run([*dd, "detect", "run", "--since", "24h", "--from", "2026-01-01"]) == 2
    assert run([*dd, "rules", "convert", "--dialect", "oracle"]) == 2


def test_validate_reports_pysigma_validator_warnings(rt, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    f = tmp_path / "lint.yml"
    f.write_text(
        yaml.safe_dump(
            {
                **RULE,
                "tags": ["attack.t1098", "attack.t1098"],
                "detection": {
                    "s": {"eventName": "*Stop*"},
                    "unused": {"eventName": "x"},
                    "condition": "s",
                },
            }
        )
    )
    out = _json(
        capsys, ["--data-dir", str(rt.data_dir), "rules", "validate", str(f), "--format", "json"]
    )
    assert out["valid"] == 1 and not out["invalid"]
    kinds = {w["error"].split(":")[0] for w in out["warnings"]}
    assert {"DuplicateTagIssue", "DanglingDetectionIssue"} <= kinds
