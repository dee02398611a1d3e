"""Salesforce: EventLogFile CSV bodies, SOQL responses, sObject and EventLogFile names."""

from __future__ import annotations

import json

from tests.conftest import FIXTURES
from tests.sources.harness import parse_files
from tests.sources.saas import parse_text


def test_eventlogfile_timestamp_without_derived_column(tmp_path):
    body = (
        '"EVENT_TYPE","TIMESTAMP","REQUEST_ID","USER_ID","URI","REQUEST_STATUS","CLIENT_IP"\n'
        '"URI","20240304093000.250","r1","005A","/lightning/r/Account/001/view","S","198.51.100.2"\n'
        '"URI","20240304093001","r2","005A","/x","F","198.51.100.2"\n'
    )
    rows = parse_text("salesforce", body, tmp_path, "uri.csv").rows
    assert [r["event_time"] for r in rows] == [
        "2024-03-04T09:30:00.250000Z",
        "2024-03-04T09:30:01Z",
    ]
    assert [r["outcome"] for r in rows] == ["success", "failure"]
    assert [r["event_id"] for r in rows] == ["URI:r1:20240304093000.250", "URI:r2:20240304093001"]


def test_multiline_csv_value_keeps_the_next_rows(tmp_path):
    path = FIXTURES / "salesforce" / "eventlogfile-api.csv"
    parsed = parse_files("salesforce", [path], tmp_path / "lake")
    assert [r["event_type"] for r in parsed.rows] == ["API", "ReportExport"]
    assert "\nWHERE" in parsed.rows[0]["QUERY"]


def test_panther_upper_case_username_and_status(tmp_path):
    rec = {
        "EVENT_TYPE": "OAuthTokenRefreshFailed",
        "TIMESTAMP": "2024-01-31 11:20:15.789",
        "USERNAME": "api@example.com",
        "STATUS": "Failed",
        "SOURCE_IP": "203.0.113.4",
    }
    row = parse_text("salesforce", json.dumps(rec), tmp_path).rows[0]
    assert (row["user"], row["Status"], row["outcome"]) == ("api@example.com", "Failed", "failure")
