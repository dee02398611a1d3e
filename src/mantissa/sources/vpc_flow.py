"""Amazon VPC Flow Logs delivered to S3 or CloudWatch Logs as space-separated text.

The default format is version 2 (``version account-id interface-id srcaddr dstaddr
srcport dstport protocol packets bytes start end action log-status``). Custom formats
(versions 3–8 add ``vpc-id``, ``pkt-srcaddr``, ``tcp-flags``, ``flow-direction``, ECS
fields ...) are named by the header line S3 delivery writes first in every file; the
header travels with each row as ``ctx`` and every field is looked up by name, in SQL,
so any field order works. ``-`` means no value (NODATA/SKIPDATA records). Field list:
https://docs.aws.amazon.com/vpc/latest/userguide/flow-log-records.html
Column names are the documented field names with ``_`` for ``-`` (as in the Athena DDL).
"""

from __future__ import annotations

from typing import ClassVar

from mantissa.sources.base import LineSource

DEFAULT_FORMAT = (
    "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes "
    "start end action log-status"
)

# field → DuckDB type (everything not listed is VARCHAR)
FIELDS: dict[str, str] = {
    "version": "INTEGER",
    "account-id": "VARCHAR",
    "interface-id": "VARCHAR",
    "srcaddr": "VARCHAR",
    "dstaddr": "VARCHAR",
    "srcport": "INTEGER",
    "dstport": "INTEGER",
    "protocol": "INTEGER",
    "packets": "BIGINT",
    "bytes": "BIGINT",
    "start": "BIGINT",
    "end": "BIGINT",
    "action": "VARCHAR",
    "log-status": "VARCHAR",
    "vpc-id": "VARCHAR",
    "subnet-id": "VARCHAR",
    "instance-id": "VARCHAR",
    "tcp-flags": "INTEGER",
    "type": "VARCHAR",
    "pkt-srcaddr": "VARCHAR",
    "pkt-dstaddr": "VARCHAR",
    "region": "VARCHAR",
    "az-id": "VARCHAR",
    "sublocation-type": "VARCHAR",
    "sublocation-id": "VARCHAR",
    "pkt-src-aws-service": "VARCHAR",
    "pkt-dst-aws-service": "VARCHAR",
    "flow-direction": "VARCHAR",
    "traffic-path": "INTEGER",
    "ecs-cluster-arn": "VARCHAR",
    "ecs-cluster-name": "VARCHAR",
    "ecs-container-instance-arn": "VARCHAR",
    "ecs-container-instance-id": "VARCHAR",
    "ecs-container-id": "VARCHAR",
    "ecs-second-container-id": "VARCHAR",
    "ecs-service-name": "VARCHAR",
    "ecs-task-definition-arn": "VARCHAR",
    "ecs-task-arn": "VARCHAR",
    "ecs-task-id": "VARCHAR",
    "reject-reason": "VARCHAR",
    # Transit Gateway flow logs
    "resource-type": "VARCHAR",
    "tgw-id": "VARCHAR",
    "tgw-attachment-id": "VARCHAR",
    "tgw-src-vpc-account-id": "VARCHAR",
    "tgw-dst-vpc-account-id": "VARCHAR",
    "tgw-src-vpc-id": "VARCHAR",
    "tgw-dst-vpc-id": "VARCHAR",
    "tgw-src-subnet-id": "VARCHAR",
    "tgw-dst-subnet-id": "VARCHAR",
    "tgw-src-eni": "VARCHAR",
    "tgw-dst-eni": "VARCHAR",
    "tgw-src-az-id": "VARCHAR",
    "tgw-dst-az-id": "VARCHAR",
    "tgw-pair-attachment-id": "VARCHAR",
    "packets-lost-no-route": "BIGINT",
    "packets-lost-blackhole": "BIGINT",
    "packets-lost-mtu-exceeded": "BIGINT",
    "packets-lost-ttl-expired": "BIGINT",
}


def is_header(line: str) -> bool:
    """A format line: every token a known field name (S3 writes one atop each file)."""
    toks = line.split()
    return bool(toks) and all(t in FIELDS for t in toks)


def _col(name: str) -> str:
    return name.replace("-", "_")


class VpcFlow(LineSource):
    name = "vpc_flow"
    title = "Amazon VPC Flow Logs"
    category = "network"
    variants = (
        "default format (version 2), with or without header line",
        "custom formats (versions 3-8, Transit Gateway) named by the header line",
        "NODATA / SKIPDATA records",
        "IPv6 addresses",
    )
    skip_sql: ClassVar[str | None] = (
        "regexp_full_match(trim(raw), '[a-z][a-z0-9-]*( [a-z][a-z0-9-]*)*') "
        "AND list_has_all(" + "[" + ", ".join(f"'{f}'" for f in FIELDS) + "], "
        "string_split(trim(raw), ' '))"
    )
    event_time_parsed = True  # the expression below parses each field itself
    common: ClassVar[dict[str, str]] = {
        # Elastic and Athena time a flow by its end; formats without start/end (NAT
        # gateway examples) carry no time at all: the receipt time stands in
        "event_time": (
            'coalesce(to_timestamp("end"), to_timestamp("start"), '
            "CASE WHEN _fmt_has_time THEN NULL ELSE now() END)"
        ),
        "event_type": "coalesce(lower(action), lower(log_status), 'flow')",
        "outcome": (
            "CASE WHEN action = 'ACCEPT' THEN 'success' WHEN action = 'REJECT' THEN 'failure' END"
        ),
        "user": "NULL",
        "src_ip": "srcaddr",
        "dst_ip": "dstaddr",
        "host": "coalesce(instance_id, interface_id)",
        "message": (
            "concat_ws(' ', coalesce(srcaddr || ':' || srcport, srcaddr), '->', "
            "coalesce(dstaddr || ':' || dstport, dstaddr), 'proto ' || protocol, action, "
            "log_status)"
        ),
        "_error": (
            "CASE WHEN len(_f) <> len(_h) THEN 'VPC flow record has ' || len(_f) || "
            "' fields, its format has ' || len(_h) || ' (' || _fmt || ')' "
            "WHEN srcaddr IS NULL AND dstaddr IS NULL AND log_status IS NULL "
            "AND interface_id IS NULL THEN 'no VPC flow fields in record' END"
        ),
    }

    def start_file(self, first_line: str) -> str | None:
        return " ".join(first_line.split()) if is_header(first_line) else None

    def native_sql(self) -> str:
        cols = []
        for f, typ in FIELDS.items():
            v = f"nullif(_f[list_position(_h, '{f}')], '-')"
            if typ != "VARCHAR":
                v = f"TRY_CAST({v} AS {typ})"
            cols.append(f'{v} AS "{_col(f)}"')
        return (
            f"SELECT line, raw, file, ctx, {', '.join(cols)}, _f, _h, _fmt, "
            "(list_has(_h, 'start') OR list_has(_h, 'end')) AS _fmt_has_time FROM ("
            "SELECT line, raw, file, ctx, string_split(regexp_replace(trim(raw), '\\s+', ' ', 'g'), ' ') AS _f, "
            f"string_split(coalesce(ctx, '{DEFAULT_FORMAT}'), ' ') AS _h, "
            f"coalesce(ctx, 'default format') AS _fmt FROM input) AS _s"
        )

    def sniff(self, sample: list[str]) -> float:
        recs = [ln for ln in sample if not is_header(ln)]
        if not recs:
            return 0.9 if sample and is_header(sample[0]) else 0.0
        header = sample[0].split() if sample and is_header(sample[0]) else DEFAULT_FORMAT.split()
        ok = 0
        for ln in recs:
            toks = ln.split()
            if len(toks) != len(header):
                continue
            rec = dict(zip(header, toks, strict=True))
            if rec.get("version", "2").isdigit() and (
                rec.get("action", "-") in ("ACCEPT", "REJECT", "-")
                and rec.get("log-status", "OK") in ("OK", "NODATA", "SKIPDATA", "-")
            ):
                ok += 1
        score = ok / len(recs)
        return min(1.0, score + (0.1 if sample and is_header(sample[0]) else 0.0))
