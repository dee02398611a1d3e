"""Amazon S3 server access logs: one request per line, space-separated.

Format per "Amazon S3 server access log format"
(https://docs.aws.amazon.com/AmazonS3/latest/userguide/LogFormat.html): bucket owner,
bucket, ``[06/Feb/2019:00:00:38 +0000]``, remote IP, requester, request ID, operation,
key, ``"request URI"``, status, error code, bytes sent, object size, total time,
turn-around time, ``"referer"``, ``"user agent"``, version ID, host ID, then fields
added over the years (signature version, cipher suite, authentication type, host
header, TLS version, access point ARN, ACL required) which older lines lack. ``-``
means no value. Column names are those of AWS's Athena table for these logs.
"""

from __future__ import annotations

from typing import ClassVar

from mantissa.sources.base import LineSource

_Q = r'("(?:[^"\\]|\\.)*"|-)'
PATTERN = (
    r"^(\S+) (\S+) \[([^\]]*)\] (\S+) (\S+) (\S+) (\S+) (\S+) "
    + _Q
    + r" (\S+) (\S+) (\S+) (\S+) (\S+) (\S+) "
    + _Q
    + " "
    + _Q
    + r"(?: (\S+))?(?: (\S+))?(?: (\S+))?(?: (\S+))?(?: (\S+))?(?: (\S+))?(?: (\S+))?"
    + r"(?: (\S+))?(?: (\S+))?(?: (\S+))?(?: .*)?$"
)
GROUPS = (
    "bucketowner",
    "bucket_name",
    "requestdatetime",
    "remoteip",
    "requester",
    "requestid",
    "operation",
    "key",
    "request_uri",
    "httpstatus",
    "errorcode",
    "bytessent",
    "objectsize",
    "totaltime",
    "turnaroundtime",
    "referrer",
    "useragent",
    "versionid",
    "hostid",
    "sigv",
    "ciphersuite",
    "authtype",
    "endpoint",
    "tlsversion",
    "accesspointarn",
    "aclrequired",
)
_INTS = {"httpstatus", "bytessent", "objectsize", "totaltime", "turnaroundtime"}
_QUOTED = {"request_uri", "referrer", "useragent"}


class S3Access(LineSource):
    name = "s3_access"
    title = "Amazon S3 server access logs"
    category = "cloud"
    variants = (
        "legacy 18-field lines and current lines (signature, TLS, access point, ACL fields)",
        "quoted request URI / referer / user agent with escaped quotes",
    )
    pattern = PATTERN
    groups = GROUPS
    common: ClassVar[dict[str, str]] = {
        "event_time": "requestdatetime",
        "event_id": "NULL",
        "event_type": "operation",
        "outcome": (
            "CASE WHEN httpstatus BETWEEN 100 AND 399 THEN 'success' "
            "WHEN httpstatus >= 400 THEN 'failure' END"
        ),
        "user": (
            "CASE WHEN requester LIKE 'arn:%' THEN regexp_extract(requester, '[:/]([^:/]+)$', 1) "
            "ELSE requester END"
        ),
        "src_ip": "remoteip",
        "user_agent": "useragent",
        "host": "bucket_name",
        "message": "concat_ws(' ', operation, request_uri, httpstatus, errorcode)",
        "_error": (
            "CASE WHEN NOT _matched THEN 'not an S3 server access log line' "
            "WHEN requestdatetime IS NULL THEN 'S3 access log line without a request time' END"
        ),
    }

    def native_sql(self) -> str:
        pat = self.pattern.replace("'", "''")
        names = ", ".join(f"'{g}'" for g in self.groups)
        cols = []
        for g in self.groups:
            v = f"nullif(_m.{g}, '')"
            if g in _QUOTED:
                v = f"replace(regexp_replace({v}, '^\"(.*)\"$', '\\1'), '\\\"', '\"')"
            v = f"nullif({v}, '-')"
            if g in _INTS:
                v = f"TRY_CAST({v} AS BIGINT)"
            cols.append(f"{v} AS {g}")
        return (
            f"SELECT line, raw, file, ctx, {', '.join(cols)}, _matched FROM ("
            f"SELECT line, raw, file, ctx, regexp_extract(raw, '{pat}', [{names}]) AS _m, "
            f"regexp_matches(raw, '{pat}') AS _matched FROM input) AS _s"
        )

    def sniff(self, sample: list[str]) -> float:
        import re

        rx = re.compile(
            r"^\S+ \S+ \[\d{2}/\w{3}/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4}\] \S+ \S+ \S+ "
            r"(REST|WEBSITE|BATCH|S3)\.\S+ "
        )
        lines = [ln for ln in sample if ln.strip()]
        return sum(1 for ln in lines if rx.match(ln)) / len(lines) if lines else 0.0
