"""ArcSight Common Event Format (CEF), bare or after a syslog header.

``CEF:Version|Device Vendor|Device Product|Device Version|Signature ID|Name|Severity|
Extension`` per the "ArcSight Common Event Format (CEF) Implementation Standard": header
fields escape ``\\|`` and ``\\\\``; the extension is ``key=value`` pairs separated by
spaces, where values may contain spaces and escape ``\\=``, ``\\\\``, ``\\n``, ``\\r``. Parsed
in SQL: escaped ``=`` are masked, each `` key=`` boundary is marked, the extension splits
on the marks into a ``extensions`` MAP (keys as sent, values unescaped); the common keys
also get columns of their own under their CEF names (``src``, ``suser``, ``act``, ...).
Without ``rt``/``end``/``start`` or a syslog timestamp the receipt time is used (what
ArcSight records as ``art``).
"""

from __future__ import annotations

import re
from typing import ClassVar

from mantissa.sources._jsonsql import ip_sql
from mantissa.sources.base import LineSource

_H = r"((?:[^|\\]|\\.)*)"
HEADER = r"CEF: ?([0-9]+)\|" + r"\|".join([_H] * 6) + r"\|(?s:(.*))$"
HEADER_NAMES = (
    "cef_version",
    "device_vendor",
    "device_product",
    "device_version",
    "signature_id",
    "name",
    "severity",
    "_ext",
)
# extension keys promoted to columns (CEF dictionary names)
KEYS = (
    "act",
    "app",
    "cat",
    "cnt",
    "cs1",
    "cs1Label",
    "cs2",
    "cs2Label",
    "cs3",
    "cs3Label",
    "cs4",
    "cs4Label",
    "cs5",
    "cs5Label",
    "cs6",
    "cs6Label",
    "deviceDirection",
    "deviceExternalId",
    "deviceFacility",
    "dhost",
    "dpt",
    "dst",
    "duser",
    "dvc",
    "dvchost",
    "end",
    "externalId",
    "fname",
    "msg",
    "proto",
    "reason",
    "request",
    "requestClientApplication",
    "requestMethod",
    "rt",
    "shost",
    "spt",
    "src",
    "start",
    "suser",
)
_INT_KEYS = {"dpt", "spt", "cnt"}


def _unescape_header(v: str) -> str:
    """A header field with its masked escapes (chr(1) = ``\\\\``, chr(2) = ``\\|``) restored."""
    return f"replace(replace({v}, chr(2), '|'), chr(1), '\\')"


class Cef(LineSource):
    name = "cef"
    #: no vendor id: event_id is a content hash (push receivers salt it per delivery)
    content_ids = True
    title = "ArcSight Common Event Format (CEF)"
    category = "network"
    variants = (
        "bare CEF lines",
        "CEF after a syslog header (RFC 3164 / 5424)",
        "header escaping (\\| \\\\) and extension escaping (\\= \\\\ \\n \\r)",
    )
    event_time_parsed = True  # the expression below parses each field itself
    common: ClassVar[dict[str, str]] = {
        "event_time": (
            'coalesce(mantissa_ts(rt), mantissa_ts("end"), mantissa_ts(start), '
            "mantissa_ts(nullif(_prefix_ts, '')), now())"
        ),
        # no vendor id: the content hash, numbered among identical lines of the same file
        # (repeated identical lines are distinct events; re-ingesting a file adds none)
        "event_id": (
            "md5(raw || '#' || CAST(row_number() OVER (PARTITION BY file, raw ORDER BY line) "
            "AS VARCHAR))"
        ),
        "event_type": "coalesce(act, name)",
        "outcome": (
            "CASE WHEN lower(extensions['outcome']) IN ('success', 'succeeded', 'allow', "
            "'allowed', 'accept') OR lower(act) IN ('accept', 'allow', 'allowed', 'permit') "
            "THEN 'success' "
            "WHEN lower(extensions['outcome']) IN ('failure', 'failed', 'fail', 'deny', "
            "'denied', 'blocked') OR lower(act) IN ('deny', 'denied', 'drop', 'dropped', "
            "'block', 'blocked', 'reject') THEN 'failure' END"
        ),
        "user": "coalesce(suser, duser)",
        # c6a2/c6a3: the dictionary's "Device Custom IPv6 Address" 2 (source) and 3 (destination)
        "src_ip": ip_sql("coalesce(src, extensions['c6a2'])"),
        "dst_ip": ip_sql("coalesce(dst, extensions['c6a3'])"),
        "user_agent": "requestClientApplication",
        "host": "coalesce(dvchost, dvc, nullif(_prefix_host, ''))",
        "message": "coalesce(msg, name)",
        "_error": "CASE WHEN NOT _matched THEN 'not a CEF record: no CEF: header' END",
    }

    def native_sql(self) -> str:
        hdr = HEADER.replace("'", "''")
        head_cols = [f"{_unescape_header(f'_h.{g}')} AS {g}" for g in HEADER_NAMES if g != "_ext"]
        key_cols = []
        for k in KEYS:
            v = f"extensions['{k}']"
            if k in _INT_KEYS:
                v = f"TRY_CAST({v} AS INTEGER)"
            key_cols.append(f'{v} AS "{k}"')
        # mask escaped backslashes and '=' so that unescaped ' key=' mark pair boundaries
        masked = "replace(_h._ext, '\\=', chr(2))"
        marked = (
            f"regexp_replace({masked}, '(^| )([A-Za-z0-9_.\\[\\],-]+)=', chr(3) || '\\2=', 'g')"
        )
        unesc = (
            "replace(replace(replace(replace(v, chr(2), '='), '\\n', chr(10)), "
            "'\\r', chr(13)), chr(1), '\\')"
        )
        return f"""
        SELECT line, raw, file, ctx, {", ".join(head_cols)}, extensions, {", ".join(key_cols)},
          _matched, _prefix_ts, _prefix_host
        FROM (
          SELECT *, CASE WHEN len(list_distinct(_k)) = len(_k) THEN map(_k, _v) ELSE map(list_filter(_k, lambda x, i: list_position(_k, x) = i), list_filter(_v, lambda x, i: list_position(_k, _k[i]) = i)) END AS extensions
          FROM (
            SELECT *,
              list_transform(_pairs, lambda p: split_part(p, '=', 1)) AS _k,
              list_transform(_pairs, lambda p: rtrim({unesc.replace("v", "substr(p, strpos(p, chr(61)) + 1)")})) AS _v
            FROM (
              SELECT *, list_filter(string_split({marked}, chr(3)), lambda p: strpos(p, '=') > 0) AS _pairs
              FROM (
                SELECT line, raw, file, ctx,
                  struct_pack(cef_version := trim(_p[1]), device_vendor := _p[2], device_product := _p[3], device_version := _p[4], signature_id := _p[5], name := _p[6], severity := _p[7],
                              _ext := replace(array_to_string(_p[8:], '|'), chr(2), '|')) AS _h,
                  regexp_matches(raw, '{hdr}') AS _matched,
                  regexp_extract(raw, '^(?:<[0-9]{{1,3}}>)?(?:[0-9] )?([A-Z][a-z]{{2}} +[0-9]{{1,2}}(?: [0-9]{{4}})? [0-9:]{{8}}|[0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}}T[^ ]+) ', 1) AS _prefix_ts,
                  regexp_extract(raw, '^(?:<[0-9]{{1,3}}>)?(?:[0-9] )?(?:[A-Z][a-z]{{2}} +[0-9]{{1,2}}(?: [0-9]{{4}})? [0-9:]{{8}}|[0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}}T[^ ]+) ([^ ]+) ', 1) AS _prefix_host
                FROM (
                  -- header split on unescaped '|': escaped backslashes and pipes masked first
                  SELECT *, string_split(replace(replace(substr(raw, strpos(raw, 'CEF:') + 4),
                    '\\\\', chr(1)), '\\|', chr(2)), '|') AS _p
                  FROM input
                )
              )
            )
          )
        )
        """

    def sniff(self, sample: list[str]) -> float:
        rx = re.compile(r"CEF: ?\d+\|")
        lines = [ln for ln in sample if ln.strip()]
        return sum(1 for ln in lines if rx.search(ln)) / len(lines) if lines else 0.0
