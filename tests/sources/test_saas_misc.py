"""GitHub, Slack, 1Password, Jamf: time fields, wrappers, unknown fields kept."""

from __future__ import annotations

import json

from tests.sources.saas import parse_text


def test_github_streamed_timestamp_wins_and_unknown_fields_are_kept(tmp_path):
    rec = {
        "@timestamp": 1709543000000,
        "created_at": 1609459200000,
        "action": "repo.create",
        "actor": "a",
        "_document_id": "d1",
        "brand_new_field": {"x": 1},
    }
    row = parse_text("github", json.dumps(rec), tmp_path).rows[0]
    assert row["event_time"] == "2024-03-04T09:03:20Z"
    assert json.loads(row["raw"])["brand_new_field"] == {"x": 1}


def test_github_enterprise_event_hub_batch(tmp_path):
    batch = {
        "records": [
            {
                "@timestamp": 1709543000000,
                "action": "business.set_actions_retention_limit",
                "actor": "e",
                "business": "ent",
            }
        ]
    }
    rows = parse_text("github", json.dumps(batch), tmp_path).rows
    assert [(r["event_type"], r["host"]) for r in rows] == [
        ("business.set_actions_retention_limit", "ent")
    ]


def test_slack_unparseable_date_is_dead_lettered(tmp_path):
    recs = [
        {"id": "1", "date_create": "soon", "action": "user_login"},
        {"id": "2", "date_create": 1709543000, "action": "user_login"},
    ]
    parsed = parse_text("slack_audit", "\n".join(json.dumps(r) for r in recs), tmp_path)
    assert [r["event_id"] for r in parsed.rows] == ["2"]
    assert "unparseable timestamp" in parsed.rejections[0]["reason"]


def test_onepassword_nanosecond_timestamps_and_cursor_pages(tmp_path):
    page = {
        "cursor": "c",
        "has_more": True,
        "items": [
            {
                "uuid": "u1",
                "timestamp": "2024-03-04T09:40:00.123456789Z",
                "category": "credentials_failed",
                "type": "password_secret_bad",
                "target_user": {"email": "a@example.com"},
                "client": {"ip_address": "192.0.2.4"},
            }
        ],
    }
    row = parse_text("onepassword", json.dumps(page), tmp_path).rows[0]
    assert (row["event_time"], row["outcome"], row["src_ip"]) == (
        "2024-03-04T09:40:00.123456Z",
        "failure",
        "192.0.2.4",
    )


def test_jamf_event_kept_as_json_per_webhook_type(tmp_path):
    rec = {
        "webhook": {"webhookEvent": "ComputerInventoryCompleted", "eventTimestamp": 1709543400000},
        "event": {"computer": {"deviceName": "mac-1", "username": "u", "ipAddress": "10.0.0.9"}},
    }
    row = parse_text("jamf", json.dumps(rec), tmp_path).rows[0]
    assert (row["host"], row["user"], row["src_ip"]) == ("mac-1", "u", "10.0.0.9")
    assert json.loads(row["event"])["computer"]["deviceName"] == "mac-1"
