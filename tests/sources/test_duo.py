"""Duo: nested API responses, epoch-first timestamps, records without any time."""

from __future__ import annotations

import datetime as dt
import json

from tests.conftest import shared_or_skip
from tests.sources.harness import parse_files
from tests.sources.saas import parse_text


def test_mangled_isotimestamp_falls_back_to_epoch(tmp_path):
    rec = {
        "action": "activation_begin",
        "isotimestamp": "2021-07-20T11: 41: 31+00: 00",
        "timestamp": 1626781291,
        "username": "narroway",
        "object": None,
        "description": None,
    }
    row = parse_text("duo", json.dumps(rec), tmp_path).rows[0]
    assert row["event_time"] == "2021-07-20T11:41:31Z"


def test_single_line_api_response_is_unwrapped(tmp_path):
    resp = {
        "stat": "OK",
        "response": {
            "authlogs": [
                {
                    "txid": "t1",
                    "timestamp": 1709539231,
                    "result": "fraud",
                    "factor": "duo_push",
                    "reason": "user_marked_fraud",
                    "user": {"name": "alice"},
                    "access_device": {"ip": "192.0.2.1"},
                },
                {
                    "txid": "t2",
                    "timestamp": 1709539232,
                    "result": "success",
                    "factor": "passcode",
                    "user": {"name": "bob"},
                },
            ],
            "metadata": {},
        },
    }
    rows = parse_text("duo", json.dumps(resp), tmp_path).rows
    assert [(r["event_id"], r["outcome"]) for r in rows] == [("t1", "failure"), ("t2", "success")]


def test_record_without_any_time_is_indexed_at_ingest_time(tmp_path):
    rec = {
        "event_type": "authentication",
        "factor": "duo_push",
        "result": "denied",
        "reason": "anomalous_push",
        "user": {"name": "x@example.com"},
    }
    before = dt.datetime.now(dt.UTC)
    row = parse_text("duo", json.dumps(rec), tmp_path).rows[0]
    t = dt.datetime.fromisoformat(row["event_time"].replace("Z", "+00:00"))
    assert (
        before - dt.timedelta(seconds=5) <= t <= dt.datetime.now(dt.UTC) + dt.timedelta(seconds=5)
    )


def test_panther_authentication_stubs_parse(tmp_path):
    path = shared_or_skip("corpus", "duo", "panther__Duo.Authentication.ndjson")
    parsed = parse_files("duo", [path], tmp_path / "lake")
    assert parsed.summary.rejected == 0
    fraud = [r for r in parsed.rows if r["result"] == "fraud"]
    assert fraud and all(r["outcome"] == "failure" for r in fraud)
