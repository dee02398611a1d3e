"""Syslog: RFC 5424, RFC 3164 and the file formats syslog daemons write.

Variants, all parsed by vectorized regexes in one DuckDB query:
* RFC 5424 ``<PRI>1 TIMESTAMP HOST APP PROCID MSGID [SD-ID k="v"...] MSG`` with or
  without structured data (NILVALUE ``-`` anywhere);
* RFC 3164 ``<PRI>Mmm dd hh:mm:ss HOST TAG[PID]: MSG`` (the year is not in the line:
  this year, or last year when that would be in the future), including relay-rewritten
  forms with an IP for HOST and no TAG, and device variants with the year in the
  timestamp and no HOST (Cisco FMC ``<14>Aug 14 2019 13:56:30 tag: ...``);
* syslog files without PRI (``/var/log/auth.log``, ``messages``, macOS ``system.log``)
  with BSD or RFC 3339 high-precision timestamps; indented continuation lines join the
  record above (macOS multi-line messages);
* ``<PRI>`` followed directly by ``key=value`` pairs (Fortinet): time from
  ``date``/``time``/``tz``.
A record without any timestamp is stamped with its receipt time, as RFC 3164 §4.3.3 has
a relay do. ``key=value`` pairs of structured data and of key-value messages land in
``kv``; sshd/sudo/PAM messages fill user, source IP, action and outcome.
"""

from __future__ import annotations

import re
from typing import ClassVar

from mantissa.sources._jsonsql import ip_sql
from mantissa.sources.base import LineSource

_SD = r'(?:\[(?:[^\]"\\]|\\.|"(?:[^"\\]|\\.)*")*\])'
RFC5424 = r"^([1-9][0-9]{0,2}) (\S+) (\S+) (\S+) (\S+) (\S+) (-|" + _SD + r"+)(?: (?s:(.*)))?$"
TS3164 = (
    r"^((?:[A-Z][a-z]{2} +[0-9]{1,2}(?: [0-9]{4})? [0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]+)?"
    r"(?: [A-Z]{3,4} [0-9]{4})?)"
    r"|[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]+)?"
    r"(?:Z|[+-][0-9]{2}:?[0-9]{2})?)(?: |$)"
)
TAG = r"^([^\s\[\]:]+)(?:\[([^\]]*)\])?: ?(?s:(.*))$"
KV = r'([A-Za-z_][A-Za-z0-9_.-]*)=("(?:[^"\\]|\\.)*"|[^\s;,]*)'


# the shape mantissa_ts_noyear parses (sources/base.py), checked before calling it
_BSD_TS = r"[A-Z][a-z]{2} +[0-9]{1,2} [0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?"


def _q(s: str) -> str:
    return s.replace("'", "''")


# message → (event type, outcome) for the auth events detections care about
_ACTIONS = [
    (r"^(Accepted|Failed) \S+ for ", "ssh_login"),
    (r"^Invalid user ", "ssh_invalid_user"),
    (r"^Did not receive identification string", "ssh_no_identification"),
    (r"COMMAND=", "sudo_command"),
    (r"session opened for user", "session_opened"),
    (r"session closed for user", "session_closed"),
    (r"authentication failure", "authentication_failure"),
    (r"^new user: ", "user_created"),
    (r"^new group: ", "group_created"),
    (r"^delete user ", "user_deleted"),
    (r"^password changed for ", "password_changed"),
]
_FAIL = (
    r"(?i)(^Failed |^Invalid user|authentication failure|incorrect password|"
    r"not allowed|denied|_DENY|failed for|FAILED|error: )"
)
_OK = r"(?i)(^Accepted |session opened|_CREATE$|^new (user|group): |succeeded|success)"
_USER = [
    r"^(?:Accepted|Failed) \S+ for (?:invalid user )?(\S+) from",
    r"^Invalid user (\S*) from",
    r"^\s*(\S+) : .*COMMAND=",
    r"session opened for user \S+ by (\S+?)\(",
    r"by user (\S+)",
    r"for user (\S+?)(?: by|$|\s)",
    r"^new user: name=([^,\s]+)",
    r"'su root' failed for (\S+)",
]


class Syslog(LineSource):
    name = "syslog"
    #: no vendor id: event_id is a content hash (push receivers salt it per delivery)
    content_ids = True
    title = "Syslog (RFC 5424, RFC 3164, syslog files)"
    category = "host"
    variants = (
        "RFC 5424 with and without structured data",
        "RFC 3164 with PRI (incl. relay forms, year-in-timestamp device variants)",
        "syslog files without PRI, BSD or RFC 3339 timestamps (auth.log, secure, messages)",
        "macOS multi-line messages (indented continuation lines)",
        "<PRI> + key=value bodies (Fortinet)",
    )
    event_time_parsed = True  # the expression below parses each field itself
    common: ClassVar[dict[str, str]] = {
        # each timestamp goes straight to the parse its shape needs (RFC 3339: a cast; BSD
        # "Mmm dd hh:mm:ss": the no-year rule) instead of through every format mantissa_ts
        # tries in turn (15-35 % less CPU for the whole syslog transform)
        "event_time": (
            "coalesce("
            "CASE WHEN nullif(_5.ts, '-') IS NULL THEN NULL "
            "ELSE coalesce(try_cast(_5.ts AS TIMESTAMPTZ), mantissa_ts(_5.ts)) END, "
            "CASE WHEN coalesce(_ts, '') = '' THEN NULL "
            f"WHEN regexp_full_match(_ts, '{_BSD_TS}') THEN mantissa_ts_noyear(_ts) "
            "ELSE mantissa_ts(_ts) END, "
            # RFC 3164 5.4 example 3: "Aug 24 05:34:00 CST 1987" (zone names are ambiguous:
            # the wall clock is kept, read as UTC)
            "try_strptime(regexp_replace(_ts, ' [A-Z]{3,4} ([0-9]{4})$', ' \\1'), "
            "'%b %d %H:%M:%S %Y'), "
            "try_strptime(kv['date'] || ' ' || kv['time'] || ' ' || "
            "coalesce(kv['tz'], '+0000'), '%Y-%m-%d %H:%M:%S %z'), "
            # no timestamp at all: the receipt time (RFC 3164 4.3.3)
            "CASE WHEN coalesce(_5.ts, '') IN ('', '-') AND _ts = '' AND kv['date'] IS NULL "
            "THEN now() END)"
        ),
        # no vendor id: the content hash, numbered among identical lines of the same file
        # (repeated identical lines are distinct events; re-ingesting a file adds none)
        "event_id": (
            "md5(raw || '#' || CAST(row_number() OVER (PARTITION BY file, raw ORDER BY line) "
            "AS VARCHAR))"
        ),
        "event_type": (
            "CASE "
            + " ".join(f"WHEN regexp_matches(_msg, '{_q(p)}') THEN '{a}'" for p, a in _ACTIONS)
            + " ELSE coalesce(nullif(msgid, ''), kv['logdesc'], kv['subtype'], appname) END"
        ),
        "outcome": (
            f"CASE WHEN lower(kv['status']) IN ('success', 'succeeded') THEN 'success' "
            f"WHEN lower(kv['status']) IN ('failure', 'failed') THEN 'failure' "
            f"WHEN regexp_matches(coalesce(msgid, ''), '{_q(_FAIL)}') "
            f"OR regexp_matches(_msg, '{_q(_FAIL)}') "
            f"THEN 'failure' "
            f"WHEN regexp_matches(coalesce(msgid, ''), '{_q(_OK)}') "
            f"OR regexp_matches(_msg, '{_q(_OK)}') THEN 'success' END"
        ),
        "user": (
            "trim(coalesce("
            + ", ".join(f"nullif(regexp_extract(_msg, '{_q(p)}', 1), '')" for p in _USER)
            + ", nullif(kv['user'], 'N/A'), kv['username'], nullif(kv['source-user'], 'N/A'), "
            "kv['USER'], nullif(regexp_extract(_msg, '\\buser (\\S+?)[,;]?(?:\\s|$)', 1), '')), "
            + "'\"')"
        ),
        "src_ip": ip_sql(
            # FortiOS VPN events: locip is our end (source), remip the peer (as Elastic maps it)
            "coalesce(kv['srcip'], kv['source-address'], kv['src'], nullif(kv['locip'], 'N/A'), "
            "nullif(regexp_extract(_msg, "
            "'(?:from|rhost=) ?\\[?([0-9]{1,3}(?:\\.[0-9]{1,3}){3}|[0-9a-fA-F]*:[0-9a-fA-F:]+)', 1), ''))"
        ),
        "dst_ip": ip_sql(
            "coalesce(kv['dstip'], kv['destination-address'], kv['dst'], nullif(kv['remip'], 'N/A'))"
        ),
        "host": "coalesce(hostname, kv['devname'])",
        "message": "_msg",
        "_error": "CASE WHEN trim(raw) = '' THEN 'empty syslog record' END",
    }

    def native_sql(self) -> str:
        kv_src = "CASE WHEN _sd IS NOT NULL THEN _sd || ' ' ELSE '' END || _msg"
        return f"""
        SELECT line, raw, file, ctx,
          TRY_CAST(_pri AS INTEGER) // 8 AS facility,
          TRY_CAST(_pri AS INTEGER) % 8 AS severity,
          TRY_CAST(_pri AS INTEGER) AS priority,
          TRY_CAST(nullif(_5.version, '') AS INTEGER) AS version,
          coalesce(nullif(nullif(_5.ts, ''), '-'), nullif(_ts, '')) AS "timestamp",
          hostname, appname, procid, msgid, _sd AS structured_data,
          CASE WHEN len(list_distinct(_k)) = len(_k) THEN map(_k, _v) ELSE map(list_filter(_k, lambda x, i: list_position(_k, x) = i), list_filter(_v, lambda x, i: list_position(_k, _k[i]) = i)) END AS kv,
          _5, _ts, _msg, _sd
        FROM (
          SELECT *,
            regexp_extract_all({kv_src}, '{_q(KV)}', 1) AS _k,
            list_transform(regexp_extract_all({kv_src}, '{_q(KV)}', 2),
              lambda v: replace(replace(regexp_replace(v, '^"(.*)"$', '\\1'), '\\"', '"'),
                                '\\]', ']')) AS _v
          FROM (
            SELECT line, raw, file, ctx, _pri, _5, _ts,
              CASE WHEN _is5 THEN nullif(nullif(_5.host, '-'), '')
                   WHEN _tagfirst OR _rest = '' OR _ts = '' THEN NULL
                   ELSE nullif(regexp_extract(_rest, '^(\\S+)', 1), '---') END AS hostname,
              CASE WHEN _is5 THEN nullif(_5.app, '-') ELSE nullif(_t.tag, '') END AS appname,
              CASE WHEN _is5 THEN nullif(_5.procid, '-') ELSE nullif(_t.pid, '') END AS procid,
              CASE WHEN _is5 THEN nullif(_5.msgid, '-') END AS msgid,
              CASE WHEN _is5 AND _5.sd <> '-' THEN _5.sd END AS _sd,
              CASE WHEN _is5 THEN regexp_replace(coalesce(_5.msg, ''), '^\\xEF\\xBB\\xBF|^\\x{{FEFF}}', '')
                   WHEN _t.tag <> '' THEN _t.msg ELSE _rest2 END AS _msg
            FROM (
              SELECT *,
                CASE WHEN _tagfirst OR _ts = '' THEN _rest
                     ELSE regexp_replace(_rest, '^\\S+ ?', '') END AS _rest2,
                regexp_extract(CASE WHEN _ts = '' THEN ''
                                    WHEN _tagfirst THEN _rest
                                    ELSE regexp_replace(_rest, '^\\S+ ?', '') END,
                               '{_q(TAG)}', ['tag', 'pid', 'msg']) AS _t
              FROM (
                SELECT *,
                  CASE WHEN _is5 THEN '' WHEN _ts = '' THEN _b
                       ELSE substr(_b, length(_ts) + 2) END AS _rest,
                  NOT _is5 AND _ts <> '' AND
                    regexp_matches(substr(_b, length(_ts) + 2), '^[^\\s\\[\\]:]+(\\[[^\\]]*\\])?: ')
                    AS _tagfirst
                FROM (
                  SELECT *,
                    regexp_extract(_b, '{_q(RFC5424)}',
                      ['version', 'ts', 'host', 'app', 'procid', 'msgid', 'sd', 'msg']) AS _5,
                    regexp_matches(_b, '{_q(RFC5424)}') AS _is5,
                    regexp_extract(_b, '{_q(TS3164)}', 1) AS _ts
                  FROM (
                    SELECT line, raw, file, ctx,
                      nullif(regexp_extract(raw, '^<([0-9]{{1,3}})(?:\\.[0-9]+)?>', 1), '') AS _pri,
                      regexp_replace(raw, '^<[0-9]{{1,3}}(?:\\.[0-9]+)?>', '') AS _b
                    FROM ({self._joined_sql()})
                  )
                )
              )
            )
          )
        )
        """

    @staticmethod
    def _joined_sql() -> str:
        """Indented lines continue the record above (macOS syslog multi-line messages)."""
        return """
        SELECT min(line) AS line, string_agg(raw, chr(10) ORDER BY line) AS raw, file,
               any_value(ctx) AS ctx
        FROM (
          SELECT line, raw, file, ctx,
            sum(CASE WHEN regexp_matches(raw, '^[ \\t]') THEN 0 ELSE 1 END)
              OVER (PARTITION BY file ORDER BY line ROWS UNBOUNDED PRECEDING) AS _g
          FROM input
        ) GROUP BY file, _g
        """

    def sniff(self, sample: list[str]) -> float:
        rx = re.compile(
            r"^(<\d{1,3}>\d{1,2} (\d{4}-\d\d-\d\dT\S+|-) \S+ |"
            r"(<\d{1,3}(\.\d+)?>)?([A-Z][a-z]{2} +\d{1,2} (\d{4} )?\d\d:\d\d:\d\d |"
            r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\S* |[a-z]+=))"
        )
        lines = [ln for ln in sample if ln.strip() and not ln[:1].isspace()]
        if not lines:
            return 0.0
        hits = sum(1 for ln in lines if rx.match(ln))
        # CEF over syslog is CEF, not syslog
        if any("CEF:" in ln for ln in lines):
            return 0.3 * hits / len(lines)
        return 0.9 * hits / len(lines)
