"""Okta / Entra ID / GCP specifics: outcomes, Graph resources, Panther-normalized events."""

from __future__ import annotations

import datetime as dt
import json

from tests.sources.harness import parse_text


def test_okta_outcomes_and_missing_time(tmp_path):
    base = {"eventType": "user.session.start", "actor": {"alternateId": "a@example.com"}}
    recs = [
        {**base, "uuid": "1", "published": "2024-05-02T09:00:00Z", "outcome": {"result": "ALLOW"}},
        {**base, "uuid": "2", "published": "2024-05-02T09:00:01Z", "outcome": {"result": "DENY"}},
        {
            **base,
            "uuid": "3",
            "published": "2024-05-02T09:00:02Z",
            "outcome": {"result": "CHALLENGE"},
        },
        {**base, "uuid": "4", "p_event_time": "2024-05-02 09:00:03.000"},
        {**base, "uuid": "5"},
    ]
    rows = {r["event_id"]: r for r in parse_text("okta", json.dumps(recs), tmp_path).rows}
    assert [rows[k]["outcome"] for k in "123"] == ["success", "failure", "unknown"]
    # the vendor's outcome object keeps its field names next to the common column
    assert [rows[k]["outcome.result"] for k in "123"] == ["ALLOW", "DENY", "CHALLENGE"]
    assert rows["4"]["event_time"] == "2024-05-02T09:00:03Z"
    received = dt.datetime.fromisoformat(rows["5"]["event_time"].replace("Z", "+00:00"))
    assert abs((received - dt.datetime.now(dt.UTC)).total_seconds()) < 600


def test_entra_graph_directory_audit(tmp_path):
    page = {
        "value": [
            {
                "id": "Directory_1",
                "category": "UserManagement",
                "activityDateTime": "2024-05-02T10:05:00Z",
                "activityDisplayName": "Add user",
                "result": "failure",
                "resultReason": "quota",
                "initiatedBy": {
                    "user": {"userPrincipalName": "admin@example.com", "ipAddress": "198.51.100.5"}
                },
                "targetResources": [{"userPrincipalName": "new@example.com"}],
            }
        ]
    }
    (row,) = parse_text("azure_ad", json.dumps(page), tmp_path).rows
    assert (row["event_type"], row["outcome"], row["user"], row["src_ip"]) == (
        "Add user",
        "failure",
        "admin@example.com",
        "198.51.100.5",
    )
    assert row["category"] == "AuditLogs" and row["properties"]["resultReason"] == "quota"


def test_gcp_audit_permission_denied(tmp_path):
    entry = {
        "logName": "projects/p/logs/cloudaudit.googleapis.com%2Fdata_access",
        "insertId": "i",
        "timestamp": "2024-05-02T12:00:00Z",
        "protoPayload": {
            "methodName": "storage.objects.get",
            "status": {"code": 7},
            "authenticationInfo": {"principalEmail": "x@example.com"},
            "requestMetadata": {"callerIp": "gce-internal-ip"},
        },
    }
    (row,) = parse_text("gcp_audit", json.dumps(entry) + "\n", tmp_path).rows
    assert row["outcome"] == "failure" and row["src_ip"] is None  # not an address
    assert row["protoPayload"]["status"]["code"] == 7
