"""Snowflake: CSV exports with a header, JSON rows, ACCESS_HISTORY arrays as strings."""

from __future__ import annotations

import json

from tests.sources.saas import parse_text

HEADER = (
    "QUERY_ID,QUERY_TEXT,QUERY_TYPE,USER_NAME,ROLE_NAME,EXECUTION_STATUS,START_TIME,ROWS_UNLOADED\n"
)


def test_csv_quoted_commas_quotes_and_newlines(tmp_path):
    body = HEADER + (
        '01a,"COPY INTO @s FROM (SELECT a, ""b"" FROM t)\nFILE_FORMAT = (TYPE = CSV)",UNLOAD,'
        "SVC,SYSADMIN,SUCCESS,2024-03-04 17:10:00.000 +0000,2500\n"
        "01b,SELECT 1,SELECT,BOB,,FAIL,2024-03-04T17:20:00Z,\n"
    )
    parsed = parse_text("snowflake", body, tmp_path, "query_history.csv")
    rows = {r["QUERY_ID"]: r for r in parsed.rows}
    assert parsed.summary.events == 2 and parsed.summary.rejected == 0
    assert rows["01a"]["QUERY_TEXT"].startswith('COPY INTO @s FROM (SELECT a, "b" FROM t)\nFILE')
    assert rows["01a"]["ROWS_UNLOADED"] == 2500 and rows["01a"]["outcome"] == "success"
    assert rows["01b"]["ROLE_NAME"] is None and rows["01b"]["outcome"] == "failure"
    assert rows["01a"]["event_time"] == "2024-03-04T17:10:00Z"


def test_csv_with_bom_and_crlf(tmp_path):
    body = (
        "\ufeff" + HEADER + "01c,SELECT 2,SELECT,ALICE,R,SUCCESS,2024-03-04T17:30:00Z,\n"
    ).replace("\n", "\r\n")
    parsed = parse_text("snowflake", body.encode(), tmp_path, "q.csv")
    assert [r["USER_NAME"] for r in parsed.rows] == ["ALICE"]


def test_csv_row_with_too_many_fields_is_dead_lettered_alone(tmp_path):
    body = HEADER + (
        "01d,SELECT 3,SELECT,A,R,SUCCESS,2024-03-04T17:30:00Z,,extra,fields\n"
        "01e,SELECT 4,SELECT,B,R,SUCCESS,2024-03-04T17:31:00Z,\n"
    )
    parsed = parse_text("snowflake", body, tmp_path, "bad.csv")
    assert [r["QUERY_ID"] for r in parsed.rows] == ["01e"]
    assert parsed.summary.rejected == 1
    rej = parsed.rejections[0]
    assert "malformed CSV row: 10 fields, header has 8" in rej["reason"]
    assert "extra,fields" in rej["record"]


def test_csv_with_unterminated_quote_is_dead_lettered_whole(tmp_path):
    body = HEADER + '01f,"SELECT 5,SELECT,A,R,SUCCESS,2024-03-04T17:30:00Z,\n'
    parsed = parse_text("snowflake", body, tmp_path, "open-quote.csv")
    assert parsed.summary.events == 0 and parsed.summary.rejected >= 1
    assert all("CSV" in r["reason"] for r in parsed.rejections)


def test_access_history_json_strings_are_decoded_and_ids_do_not_collide(tmp_path):
    query = {
        "QUERY_ID": "q1",
        "QUERY_TEXT": "SELECT * FROM T",
        "QUERY_TYPE": "SELECT",
        "USER_NAME": "A",
        "EXECUTION_STATUS": "SUCCESS",
        "START_TIME": "2024-03-04T17:00:00Z",
    }
    access = {
        "QUERY_ID": "q1",
        "QUERY_START_TIME": "2024-03-04T17:00:00Z",
        "USER_NAME": "A",
        "DIRECT_OBJECTS_ACCESSED": json.dumps([{"objectName": "DB.S.T", "objectDomain": "Table"}]),
        "LOGIN_DETAILS": "not json",
    }
    parsed = parse_text("snowflake", json.dumps(query) + "\n" + json.dumps(access), tmp_path)
    assert parsed.summary.events == 2 and parsed.summary.duplicates == 0
    acc = next(r for r in parsed.rows if r["event_type"] == "ACCESS")
    assert json.loads(acc["DIRECT_OBJECTS_ACCESSED"])[0]["objectName"] == "DB.S.T"
    assert json.loads(acc["LOGIN_DETAILS"]) == "not json"
