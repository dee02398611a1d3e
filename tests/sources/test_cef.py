"""CEF specifics: header and extension escaping, syslog prefix, time fields."""

from __future__ import annotations

from tests.sources.harness import parse_text


def test_escapes_in_header_and_extension(tmp_path):
    line = (
        r"CEF:0|Ven\|dor|Prod\\uct|1.0|42|Name with = sign|7|"
        r"msg=a\=b c\\d\nnext cs1Label=Rule Name cs1=allow all src=10.0.0.1 "
        r"request=https://x.example/?q\=1 empty= rt=1714665600000" + "\n"
    )
    (row,) = parse_text("cef", line, tmp_path).rows
    assert row["device_vendor"] == "Ven|dor"
    assert row["device_product"] == "Prod\\uct"
    assert row["name"] == "Name with = sign"
    ext = row["extensions"]
    assert ext["msg"] == "a=b c\\d\nnext"
    assert ext["cs1Label"] == "Rule Name" and ext["cs1"] == "allow all"
    assert ext["request"] == "https://x.example/?q=1"
    assert ext["empty"] == ""
    assert row["event_time"] == "2024-05-02T16:00:00Z"
    assert row["src_ip"] == "10.0.0.1" and row["message"] == "a=b c\\d\nnext"


def test_syslog_prefixed_cef_takes_host_and_time_from_the_header(tmp_path):
    line = "<134>May  2 2024 18:05:00 gw01 CEF:0|V|P|1|1|Login|3|suser=alice outcome=failure\n"
    (row,) = parse_text("cef", line, tmp_path).rows
    assert row["event_time"] == "2024-05-02T18:05:00Z"
    assert (row["host"], row["user"], row["outcome"]) == ("gw01", "alice", "failure")


def test_non_cef_lines_are_dead_lettered(tmp_path):
    parsed = parse_text("cef", "hello world\n", tmp_path)
    assert parsed.summary.rejected == 1
    assert "no CEF: header" in parsed.rejections[0]["reason"]
