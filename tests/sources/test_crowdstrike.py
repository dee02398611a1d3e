"""CrowdStrike: concatenated pretty-printed stream events, FDR, Panther-wrapped FDR."""

from __future__ import annotations

import json

from tests.sources.saas import parse_text

_EVENT = {
    "metadata": {
        "customerIDString": "c1",
        "offset": 1,
        "eventType": "AuthActivityAuditEvent",
        "eventCreationTime": 1709543100000,
        "version": "1.0",
    },
    "event": {
        "UserId": "a@example.com",
        "UserIp": "192.0.2.9",
        "OperationName": "userAuthenticate",
        "Success": True,
        "UTCTimestamp": 1709543100,
    },
}


def test_pretty_printed_events_one_after_another(tmp_path):
    second = json.loads(json.dumps(_EVENT))
    second["metadata"]["offset"] = 2
    second["event"]["Success"] = False
    body = json.dumps(_EVENT, indent=4) + "\n" + json.dumps(second, indent=2) + "\n"
    parsed = parse_text("crowdstrike", body, tmp_path)
    assert parsed.summary.events == 2 and parsed.summary.rejected == 0
    assert [r["outcome"] for r in parsed.rows] == ["success", "failure"]
    assert [r["event_id"] for r in parsed.rows] == ["c1:1", "c1:2"]


def test_garbage_after_the_documents_is_dead_lettered_and_the_rest_kept(tmp_path):
    body = json.dumps(_EVENT, indent=4) + '\n{ "metadata": {"offset": 3, \n'
    parsed = parse_text("crowdstrike", body, tmp_path)
    assert parsed.summary.events == 1
    assert parsed.summary.rejected == 1
    assert "after 1 documents" in parsed.rejections[0]["reason"]


def test_fdr_values_are_strings_and_epoch_ms(tmp_path):
    rec = {
        "event_simpleName": "NetworkConnectIP4",
        "aid": "a",
        "aip": "203.0.113.1",
        "cid": "c",
        "id": "i1",
        "timestamp": "1709543302000",
        "LocalAddressIP4": "10.0.0.5",
        "RemoteAddressIP4": "45.137.21.9",
        "RemotePort": "443",
        "UnknownNewField": "kept",
    }
    parsed = parse_text("crowdstrike", json.dumps(rec), tmp_path)
    row = parsed.rows[0]
    assert row["event_time"] == "2024-03-04T09:08:22Z"
    assert (row["src_ip"], row["dst_ip"], row["RemotePort"]) == ("10.0.0.5", "45.137.21.9", "443")
    assert json.loads(row["raw"])["UnknownNewField"] == "kept"


def test_panther_wrapped_lowercase_fdr(tmp_path):
    rec = {
        "aid": "a",
        "cid": "c",
        "event": {
            "event_simplename": "DnsRequest",
            "id": "w1",
            "timestamp": "2024-03-04 09:10:00.000Z",
            "domainname": "example.org",
        },
    }
    row = parse_text("crowdstrike", json.dumps(rec), tmp_path).rows[0]
    assert (row["event_type"], row["DomainName"], row["event_id"]) == (
        "DnsRequest",
        "example.org",
        "w1",
    )
