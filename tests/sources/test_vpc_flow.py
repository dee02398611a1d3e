"""VPC flow specifics: custom formats by header, repeated headers, field-count checks."""

from __future__ import annotations

from tests.sources.harness import parse_text

HEADER = (
    "srcaddr dstaddr start end action version log-status dstport flow-direction pkt-dst-aws-service"
)


def test_custom_format_any_order_and_repeated_header(tmp_path):
    text = (
        f"{HEADER}\n"
        "10.0.0.1 52.94.0.1 1714665600 1714665660 ACCEPT 5 OK 443 egress S3\n"
        f"{HEADER}\n"
        "10.0.0.2 10.0.0.3 1714665600 1714665660 REJECT 5 OK 22 ingress -\n"
    )
    parsed = parse_text("vpc_flow", text, tmp_path)
    assert parsed.summary.rejected == 0 and parsed.summary.skipped == 0
    rows = sorted(parsed.rows, key=lambda r: r["src_ip"])
    assert [(r["src_ip"], r["dstport"], r["flow_direction"], r["outcome"]) for r in rows] == [
        ("10.0.0.1", 443, "egress", "success"),
        ("10.0.0.2", 22, "ingress", "failure"),
    ]
    assert rows[0]["pkt_dst_aws_service"] == "S3" and rows[1]["pkt_dst_aws_service"] is None
    assert rows[0]["event_time"] == "2024-05-02T16:01:00Z"


def test_wrong_field_count_is_rejected_with_the_format(tmp_path):
    parsed = parse_text("vpc_flow", "2 123 eni-1 10.0.0.1\n", tmp_path)
    assert parsed.summary.rejected == 1
    assert "has 4 fields, its format has 14" in parsed.rejections[0]["reason"]
