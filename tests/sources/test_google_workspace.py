"""Google Workspace: one row per event of an activity, parameters flattened, ids stable."""

from __future__ import annotations

import json

from tests.conftest import FIXTURES, shared_or_skip
from tests.sources.harness import parse_files
from tests.sources.saas import parse_text, reference_diffs


def _activity(events: list[dict]) -> dict:
    return {
        "kind": "admin#reports#activity",
        "id": {
            "time": "2024-03-04T10:00:00.000Z",
            "uniqueQualifier": "42",
            "applicationName": "drive",
            "customerId": "C1",
        },
        "actor": {"email": "carol@example.com", "profileId": "1"},
        "ipAddress": "198.51.100.5",
        "events": events,
    }


def test_one_row_per_event_and_parameter_types(tmp_path):
    act = _activity(
        [
            {
                "type": "access",
                "name": "download",
                "parameters": [
                    {"name": "doc_title", "value": "a.pdf"},
                    {"name": "size", "intValue": "2048"},
                    {"name": "primary_event", "boolValue": True},
                    {"name": "labels", "multiValue": ["x", "y"]},
                ],
            },
            {"type": "access", "name": "view", "parameters": []},
            {
                "type": "access",
                "name": "download",
                "parameters": [{"name": "doc_title", "value": "b.pdf"}],
            },
        ]
    )
    parsed = parse_text("google_workspace", json.dumps(act), tmp_path)
    rows = sorted(parsed.rows, key=lambda r: r["event_index"])
    assert [r["event_type"] for r in rows] == ["download", "view", "download"]
    assert [r["event_index"] for r in rows] == [1, 2, 3]
    assert len({r["event_id"] for r in rows}) == 3
    params = json.loads(rows[0]["parameters"])
    assert params == {
        "doc_title": "a.pdf",
        "size": "2048",
        "primary_event": True,
        "labels": ["x", "y"],
    }
    assert json.loads(rows[1]["parameters"]) == {}
    assert all(r["user"] == "carol@example.com" and r["src_ip"] == "198.51.100.5" for r in rows)


def test_reingest_adds_nothing_and_empty_events_keep_the_activity(tmp_path):
    body = json.dumps(_activity([{"type": "t", "name": "n"}])) + "\n" + json.dumps(_activity([]))
    first = parse_text("google_workspace", body, tmp_path, "a.ndjson")
    assert first.summary.events == 2
    again = parse_files("google_workspace", [tmp_path / "a.ndjson"], tmp_path / "lake")
    assert again.summary.events == 0 and len(again.rows) == 2


def test_events_of_wrong_type_do_not_break_the_batch(tmp_path):
    bad = [
        _activity("not a list"),  # type: ignore[arg-type]
        {**_activity([{"name": 5, "parameters": {"x": 1}}]), "id": "nope"},
        _activity([{"name": "ok", "parameters": [{"value": "no name"}, 7, None]}]),
    ]
    parsed = parse_text("google_workspace", "\n".join(json.dumps(b) for b in bad), tmp_path)
    assert parsed.summary.events + parsed.summary.rejected == 3
    ok = [r for r in parsed.rows if r["event_type"] == "ok"]
    assert len(ok) == 1
    # nameless parameters keep their values under "" (valid JSON, nothing raised)
    assert '"":"no name"' in ok[0]["parameters"]
    json.loads(ok[0]["parameters"])


def test_pretty_printed_list_response_is_unwrapped(tmp_path):
    path = FIXTURES / "google_workspace" / "activities-list.json"
    parsed = parse_files("google_workspace", [path], tmp_path / "lake")
    assert parsed.summary.events == 7  # 6 activities, one with two events
    assert {r["id"]["applicationName"] for r in parsed.rows} == {
        "login",
        "drive",
        "token",
        "admin",
        "saml",
    }


def test_login_reference_except_the_challenge_passed_records(tmp_path):
    path = shared_or_skip("corpus", "google_workspace", "elastic-beats__login-test.json.log")
    compared, diffs = reference_diffs(
        "google_workspace",
        path,
        tmp_path,
        {11, 12},
        ("timestamp", "user", "src_ip", "action", "outcome"),
    )
    assert compared > 40 and not diffs, diffs
    rows = parse_files("google_workspace", [path], tmp_path / "lake2").rows
    passed = [r for r in rows if "Challenge Passed." in r["raw"]]
    # Google documents "Challenge Passed." / "Challenge Failed." as the status values
    assert passed and all(r["outcome"] == "success" for r in passed)
