"""Impossible travel edge cases, incremental baselines, risk and identity resolution on a
small Okta + CloudTrail lake written in the vendors' formats and ingested through the real
parsers — with the state store (baselines, known IPs, links, risk) on SQLite and on
PostgreSQL."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = pytest.mark.slow  # each run opens a lake session (seconds on a busy machine)

NYC = ("New York", "United States", 40.71, -74.01)
LON = ("London", "United Kingdom", 51.51, -0.13)
BOS = ("Boston", "United States", 42.36, -71.06)


def _ev(t: dt.datetime, user: str, ip: str, place: tuple[Any, ...] | None, etype: str = "user.session.start") -> dict[str, Any]:  # fmt: skip
    geo = {"city": place[0], "country": place[1], "geolocation": {"lat": place[2], "lon": place[3]}} if place else {}  # fmt: skip
    return {
        "uuid": str(uuid.uuid4()), "published": t.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        "eventType": etype, "version": "0", "severity": "INFO", "displayMessage": etype,
        "actor": {"id": "00u" + user[:5], "type": "User", "alternateId": user, "displayName": user},
        "client": {"userAgent": {"rawUserAgent": "Mozilla/5.0 Chrome/125.0"}, "ipAddress": ip,
                   "geographicalContext": geo},
        "authenticationContext": {"externalSessionId": "s-" + user[:5]},
        "outcome": {"result": "SUCCESS"}, "securityContext": {"asNumber": 7018},
    }  # fmt: skip


@pytest.fixture
def rt(tmp_path: Path, state_url: str) -> Any:
    from mantissa.runtime import Runtime

    cfg = tmp_path / "mantissa.yaml"
    cfg.write_text(yaml.safe_dump({
        "state": {"url": state_url},
        "alerts": {"enrichment": {"user_context": {"enabled": False}}},
        "identity": {"learning_days": 2, "impossible_travel": {"relay_cidrs": ["100.127.0.0/16"]},
                     "links": {"alice@corp.example": ["ops-alice"]}},
    }))  # fmt: skip
    r = Runtime(data_dir=tmp_path / "data", config_path=cfg)
    yield r
    r.state.close()


def _ingest(rt: Any, tmp: Path, events: list[dict[str, Any]]) -> None:
    from mantissa.lake.ingest import Pipeline
    from mantissa.sources.base import get_source

    f = tmp / f"okta-{uuid.uuid4().hex[:6]}.json"
    f.write_text(json.dumps(events))
    s = Pipeline(rt.storage, get_source("okta"), rt.config.ingest).ingest_paths([str(f)])
    assert s.rejected == 0


def test_impossible_travel_cases(rt: Any, tmp_path: Path) -> None:
    from mantissa.identity.run import IdentityRun

    t = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(hours=6)
    evs = [
        # thief: New York then London 50 min later -> alert
        _ev(t, "thief@corp.example", "100.80.0.1", NYC),
        _ev(t + dt.timedelta(minutes=50), "thief@corp.example", "100.81.0.1", LON),
        # traveller: New York then London 9 h later (a real flight) -> nothing
        _ev(t - dt.timedelta(hours=4), "flyer@corp.example", "100.80.0.2", NYC),
        _ev(t + dt.timedelta(hours=5), "flyer@corp.example", "100.81.0.2", LON),
        # VPN user: egress in London on the relay range -> nothing
        _ev(t, "vpn@corp.example", "100.80.0.3", NYC),
        _ev(t + dt.timedelta(minutes=20), "vpn@corp.example", "100.127.4.4", LON),
        # same IP, geo database disagreeing with itself -> nothing
        _ev(t, "same@corp.example", "100.80.0.5", NYC),
        _ev(t + dt.timedelta(minutes=5), "same@corp.example", "100.80.0.5", LON),
        # short hop Boston -> New York (300 km) in 20 min -> nothing (< 500 km)
        _ev(t, "hop@corp.example", "100.80.0.6", BOS),
        _ev(t + dt.timedelta(minutes=20), "hop@corp.example", "100.81.0.6", NYC),
        # no geo at all -> skipped, not an error
        _ev(t, "nogeo@corp.example", "100.80.0.7", None),
        _ev(t + dt.timedelta(minutes=5), "nogeo@corp.example", "100.81.0.7", LON),
    ]
    _ingest(rt, tmp_path, evs)
    end = dt.datetime.now(dt.UTC)
    res = IdentityRun(rt).run(
        end - dt.timedelta(hours=12), end, raise_alerts=False, only=["impossible_travel"]
    )
    hits = {c.entities["user"]: c for c in res.candidates}
    assert set(hits) == {"thief@corp.example"}, {u: c.description for u, c in hits.items()}
    d = hits["thief@corp.example"].description
    assert "New York" in d and "London" in d and "km/h" in d
    assert len(hits["thief@corp.example"].evidence_event_ids) == 2


def test_baselines_incremental_and_learning(rt: Any, tmp_path: Path) -> None:
    from mantissa.identity import baselines
    from mantissa.identity.run import IdentityRun

    day0 = (dt.datetime.now(dt.UTC) - dt.timedelta(days=4)).replace(
        hour=9, minute=0, second=0, microsecond=0
    )
    evs = [_ev(day0 + dt.timedelta(days=d, minutes=m), "ann@corp.example", "100.80.1.1", NYC)
           for d in range(3) for m in (0, 30)]  # fmt: skip
    _ingest(rt, tmp_path, evs)
    runner = IdentityRun(rt)
    start = day0.replace(hour=0)
    runner.run(start, start + dt.timedelta(days=1), raise_alerts=False)
    b1 = baselines.load(rt.state, ["ann@corp.example"])["ann@corp.example"]
    assert b1["logins"] == 2 and b1["data"]["countries"] == {"US": 2}
    runner.run(start + dt.timedelta(days=1), start + dt.timedelta(days=3), raise_alerts=False)
    b2 = baselines.load(rt.state, ["ann@corp.example"])["ann@corp.example"]
    assert (
        b2["logins"] == 6 and b2["data"]["hod"]["9"] == 6 and b2["data"]["ips"] == {"100.80.1.1": 6}
    )
    # re-running an already learned window detects but does not count twice
    runner.run(start, start + dt.timedelta(days=1), raise_alerts=False)
    assert baselines.load(rt.state, ["ann@corp.example"])["ann@corp.example"]["logins"] == 6
    # the detections' bl: learning for learning_days (2) after the first sign-in
    learning = {}
    for day in (1, 3):
        at = start + dt.timedelta(days=day)
        runner.keep_session = True
        con = runner.session(at - dt.timedelta(hours=1), at)
        learning[day] = con.execute("SELECT learning, logins FROM bl").fetchall()
        runner.keep_session = False
        runner.close()
    assert learning[1] == [(True, 6)] and learning[3] == [(False, 6)]


def _trail(t: dt.datetime, user: str, name: str, ip: str, req: dict[str, Any] | None = None) -> dict[str, Any]:  # fmt: skip
    ev: dict[str, Any] = {
        "eventVersion": "1.09", "eventTime": t.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "userIdentity": {"type": "IAMUser", "principalId": "AIDA" + user.upper()[:8],
                         "arn": f"arn:aws:iam::123456789012:user/{user}",
                         "accountId": "123456789012", "userName": user},
        "eventSource": "iam.amazonaws.com", "eventName": name, "awsRegion": "us-east-1",
        "sourceIPAddress": ip, "userAgent": "aws-cli/2.15", "requestParameters": req,
        "eventID": str(uuid.uuid4()), "readOnly": False, "eventType": "AwsApiCall",
        "managementEvent": True, "recipientAccountId": "123456789012",
    }  # fmt: skip
    return ev


def test_risk_links_and_baselines_in_state_store(rt: Any, tmp_path: Path) -> None:
    """One person's attack across Okta and AWS (IAM users linked inferred and explicitly):
    alerts, kill-chain incident, links, risk and baselines all live in the state store."""
    import gzip

    from mantissa.identity import baselines, correlation, risk
    from mantissa.identity.run import IdentityRun
    from mantissa.lake.ingest import Pipeline
    from mantissa.sources.base import get_source

    t = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(hours=3)
    ip = "100.90.0.9"
    okta = [_ev(t + dt.timedelta(seconds=20 * k), "alice@corp.example", ip, NYC) for k in range(12)]
    for e in okta:
        e["outcome"] = {"result": "FAILURE", "reason": "INVALID_CREDENTIALS"}
    okta.append(_ev(t + dt.timedelta(minutes=5), "alice@corp.example", ip, NYC))
    _ingest(rt, tmp_path, okta)
    trail = [
        # inferred: IAM user "alice" is alice@corp.example (e-mail local part)
        _trail(t + dt.timedelta(minutes=20), "alice", "CreateAccessKey", ip, {"userName": "alice"}),
        # explicit: "ops-alice" is alice@corp.example by configuration
        _trail(t + dt.timedelta(minutes=30), "ops-alice", "AttachUserPolicy", ip,
               {"userName": "ops-alice", "policyArn": "arn:aws:iam::aws:policy/AdministratorAccess"}),
    ]  # fmt: skip
    f = tmp_path / "123456789012_CloudTrail_us-east-1_test.json.gz"
    with gzip.open(f, "wt") as fh:
        json.dump({"Records": trail}, fh)
    s = Pipeline(rt.storage, get_source("cloudtrail"), rt.config.ingest).ingest_paths([str(f)])
    assert s.rejected == 0
    end = dt.datetime.now(dt.UTC)
    res = IdentityRun(rt).run(end - dt.timedelta(hours=6), end)
    rules = {a.rule_id for a in res.alerts}
    assert {"identity.brute_force", "identity.self_grant", "identity.new_api_token"} <= rules
    assert "identity.kill_chain" in rules, sorted(rules)
    kc = next(a for a in res.alerts if a.rule_id == "identity.kill_chain")
    assert kc.entities["user"] == "alice@corp.example"
    assert {"okta", "cloudtrail"} <= set(kc.entities["provider"].split(","))
    # response hooks: every provider account of the person, the attacker's IP
    assert {"okta:alice@corp.example", "cloudtrail:alice", "cloudtrail:ops-alice"} <= set(
        kc.entities["accounts"].split(",")
    )
    assert kc.entities["ip"] == ip
    links = {a["account"]: a["kind"] for a in correlation.accounts_of(rt, "alice@corp.example")}
    assert links == {"alice": "inferred", "ops-alice": "explicit"}, links
    score = risk.of(rt, "alice@corp.example")
    assert score and 0 < score["score"] <= 100 and score["reasons"], score
    assert risk.top(rt, 5)[0]["identity"] == "alice@corp.example"
    # the evidence of each alert: event ids, observed numbers, baseline values, risk
    bf = next(a for a in res.alerts if a.rule_id == "identity.brute_force")
    assert len(bf.evidence_event_ids) == 13 and bf.entities["ip"] == ip
    assert bf.evidence_rows[0]["risk"]["identity"] == "alice@corp.example"
    # the baselines round-trip through the store: a new runner loads them as written
    stored = baselines.load(rt.state, ["alice@corp.example"])["alice@corp.example"]
    assert stored["logins"] == 1 and stored["failures"] == 12
    assert stored["data"]["ips"] == {ip: 1} and stored["data"]["countries"] == {"US": 1}
    runner = IdentityRun(rt, keep_session=True)
    try:
        con = runner.session(end - dt.timedelta(minutes=5), end)
        row = con.execute(
            "SELECT logins, ips, countries, hod["
            + str((t + dt.timedelta(minutes=5)).hour + 1)
            + "] FROM bl "
            "WHERE \"user\" = 'alice@corp.example'"
        ).fetchone()
        assert row == (1, [ip], ["US"], 1), row
        assert con.execute("SELECT count(*) FROM known_ips WHERE ip = ?", [ip]).fetchone() == (1,)
        peers = con.execute("SELECT * FROM blpeer").fetchall()
        # the next short window of the day: baselines only for the accounts it needs (its
        # own, and those with failed sign-ins in the lookback); the day's peer table stays
        con = runner.session(end - dt.timedelta(minutes=3), end)
        assert con.execute('SELECT "user" FROM bl').fetchall() == [("alice@corp.example",)]
        assert con.execute("SELECT * FROM blpeer").fetchall() == peers
    finally:
        runner.close()
