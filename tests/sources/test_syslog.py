"""Syslog specifics: RFC 5424 structured data, RFC 3164 forms, no-year dates, multi-line."""

from __future__ import annotations

import datetime as dt

from tests.sources.harness import parse_text


def test_rfc5424_structured_data_lands_in_kv(tmp_path):
    line = (
        "<165>1 2024-05-02T18:00:01.5+02:00 fw01 RT_FLOW 77 RT_FLOW_SESSION_DENY "
        '[junos@2636 source-address="45.137.21.9" note="a \\"quoted\\" \\] bracket"]'
        '[meta sequenceId="7"] session denied\n'
    )
    (row,) = parse_text("syslog", line, tmp_path).rows
    assert row["event_time"] == "2024-05-02T16:00:01.500000Z"
    assert (row["facility"], row["severity"], row["version"]) == (20, 5, 1)
    assert (row["host"], row["appname"], row["procid"], row["msgid"]) == (
        "fw01",
        "RT_FLOW",
        "77",
        "RT_FLOW_SESSION_DENY",
    )
    assert row["kv"]["source-address"] == "45.137.21.9"
    assert row["kv"]["note"] == 'a "quoted" ] bracket'
    assert row["kv"]["sequenceId"] == "7"
    assert row["src_ip"] == "45.137.21.9" and row["outcome"] == "failure"
    assert row["message"] == "session denied"


def test_rfc3164_without_year_is_never_in_the_future(tmp_path):
    now = dt.datetime.now(dt.UTC)
    future = now + dt.timedelta(days=3)  # written late last year, read now
    past = now - dt.timedelta(days=3)
    text = (
        f"<13>{future:%b} {future.day:2d} 10:00:00 host1 app: later date\n"
        f"<13>{past:%b} {past.day:2d} 10:00:00 host1 app: earlier date\n"
    )
    rows = {r["message"]: r for r in parse_text("syslog", text, tmp_path).rows}
    assert rows["later date"]["event_time"].startswith(str(future.year - 1))
    assert rows["earlier date"]["event_time"].startswith(str(past.year))


def test_indented_lines_continue_the_record(tmp_path):
    text = "2024-05-02T10:00:00Z mac kernel[0]: first\n\tsecond\n  third\n2024-05-02T10:00:01Z mac x: y\n"
    rows = parse_text("syslog", text, tmp_path).rows
    assert [r["message"] for r in rows] == ["first\n\tsecond\n  third", "y"]


def test_no_timestamp_gets_receipt_time_and_bad_years_are_rejected(tmp_path):
    text = "Use the BFG!\n<165>Aug 24 05:34:00 CST 1987 mymachine myproc[10]: old\n"
    parsed = parse_text("syslog", text, tmp_path)
    (row,) = parsed.rows
    got = dt.datetime.fromisoformat(row["event_time"].replace("Z", "+00:00"))
    assert abs((got - dt.datetime.now(dt.UTC)).total_seconds()) < 600
    assert parsed.summary.rejected == 1
    assert "before 2000" in parsed.rejections[0]["reason"]


def test_auth_log_user_ip_action_outcome(tmp_path):
    text = (
        "2024-05-02T10:00:00Z h sshd[1]: Failed password for invalid user oracle from 203.0.113.5 port 22 ssh2\n"
        "2024-05-02T10:00:01Z h sshd[1]: Accepted publickey for alice from 2001:db8::7 port 22 ssh2\n"
        "2024-05-02T10:00:02Z h sudo:    bob : TTY=pts/0 ; PWD=/ ; USER=root ; COMMAND=/bin/sh\n"
    )
    rows = parse_text("syslog", text, tmp_path).rows
    got = [(r["event_type"], r["outcome"], r["user"], r["src_ip"]) for r in rows]
    assert got == [
        ("ssh_login", "failure", "oracle", "203.0.113.5"),
        ("ssh_login", "success", "alice", "2001:db8::7"),
        ("sudo_command", "unknown", "bob", None),
    ]


def test_fortinet_kv_body_time_zone(tmp_path):
    line = '<189>date=2024-05-02 time=12:00:00 devname="fw1" tz="-0500" srcip=10.0.0.1 user="carol" status="success" logdesc="Admin login successful"\n'
    (row,) = parse_text("syslog", line, tmp_path).rows
    assert row["event_time"] == "2024-05-02T17:00:00Z"
    assert (row["host"], row["user"], row["src_ip"], row["outcome"]) == (
        "fw1",
        "carol",
        "10.0.0.1",
        "success",
    )


def test_identical_lines_are_distinct_events_and_reingest_adds_none(tmp_path):
    from mantissa.lake.ingest import Pipeline
    from mantissa.lake.storage import LocalStorage
    from mantissa.sources.base import get_source

    line = "2024-05-02T10:00:00Z h sudo: pam_unix(sudo:session): session opened for user root\n"
    f = tmp_path / "auth.log"
    f.write_text(line * 3)
    storage = LocalStorage(tmp_path / "lake")
    first = Pipeline(storage, get_source("syslog")).ingest_paths([str(f)])
    again = Pipeline(storage, get_source("syslog")).ingest_paths([str(f)])
    assert (first.events, first.duplicates) == (3, 0)
    assert (again.events, again.duplicates) == (0, 3)
