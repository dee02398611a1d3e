"""SQL expression builders shared by the SaaS sources (not a source: the name starts with ``_``).

Each SQL function returns a DuckDB expression over the expression(s) it is given, so the
sources stay columnar: nothing here runs per record in Python. The sniff helpers at the
end look at the first lines of a file only (auto-detection).
"""

from __future__ import annotations

import csv
import json
from typing import Any


def ip(expr: str) -> str:
    """An IP address out of what vendors put in their "IP" fields.

    Handles ``1.2.3.4:5678``, ``[2001:db8::1]:443``, ``[1.2.3.4]``, ``::ffff:1.2.3.4``
    (IPv4-mapped, as Exchange reports it) and comma-separated proxy chains (first hop).
    Anything that is not an address (``localhost``, host names, ``-``) becomes NULL.
    """
    v = f"trim(split_part(CAST({expr} AS VARCHAR), ',', 1))"
    stripped = (
        f"CASE WHEN regexp_matches({v}, '^\\[[^\\]]*\\]') "
        f"THEN regexp_extract({v}, '^\\[([^\\]]*)\\]', 1) "
        f"WHEN regexp_full_match({v}, '[0-9]{{1,3}}(\\.[0-9]{{1,3}}){{3}}:[0-9]+') "
        f"THEN split_part({v}, ':', 1) ELSE {v} END"
    )
    unmapped = f"regexp_replace({stripped}, '^::ffff:([0-9.]+)$', '\\1', 'i')"
    return (
        f"CASE WHEN regexp_full_match({unmapped}, "
        f"'[0-9]{{1,3}}(\\.[0-9]{{1,3}}){{3}}|[0-9a-fA-F]*:[0-9a-fA-F:.]*(%[0-9A-Za-z]+)?') "
        f"THEN {unmapped} END"
    )


def first(*exprs: str) -> str:
    """The first non-empty string of ``exprs`` (vendors send ``""`` for "no value")."""
    parts = ", ".join(f"nullif(trim(CAST({e} AS VARCHAR)), '')" for e in exprs)
    return f"coalesce({parts})"


def json_str(path: str) -> str:
    """A string value at JSON ``path`` of ``raw``, or NULL (``$.a.b`` style path)."""
    return f"nullif(json_extract_string(raw, '{path}'), '')"


def ts_zone_fix(expr: str) -> str:
    """``2020-06-15 12:00:00.000 +0000`` / ``-07:00`` with a space before the zone → parseable."""
    return (
        f"regexp_replace(trim(CAST({expr} AS VARCHAR)), "
        f"' ([+-][0-9]{{2}}):?([0-9]{{2}})$', '\\1\\2')"
    )


def event_time(*exprs: str) -> str:
    """The record's time as TIMESTAMPTZ (sources using it set ``event_time_parsed``).

    The first of the vendor's fields that parses wins; then Panther's ``p_event_time`` /
    ``p_parse_time``; and, only when the record carries no time at all, the time of ingest
    (what Panther, whose ``p_event_time`` defaults to ``p_parse_time``, Splunk and Elastic
    do: index the record when it arrived rather than lose it). A record whose time fields
    are present but none parses gets NULL, and so goes to the dead-letter store.

    Each field is parsed as is first and only then through :func:`lenient_ts`: COALESCE
    evaluates an argument only for the rows still NULL, so the repairs cost nothing on
    well-formed input.
    """
    values = [f"nullif(trim(CAST({e} AS VARCHAR)), '')" for e in exprs]
    values += [
        "nullif(json_extract_string(raw, '$.p_event_time'), '')",
        "nullif(json_extract_string(raw, '$.p_parse_time'), '')",
    ]
    parts = [f"mantissa_ts({v})" for v in values]
    parts += [f"mantissa_ts({lenient_ts(v)})" for v in values]
    parts.append(f"CASE WHEN coalesce({', '.join(values)}) IS NULL THEN current_timestamp END")
    return f"coalesce({', '.join(parts)})"


def lenient_ts(expr: str) -> str:
    """Repairs seen in exported/normalized timestamps, applied before parsing.

    ``12:00:00.000 +0000`` (a space before the zone: Snowflake exports) and
    ``00:00:00000000`` (seconds run into the fraction without a dot: Panther rewrites).
    """
    return (
        f"regexp_replace(regexp_replace({expr}, ' ([+-][0-9]{{2}}):?([0-9]{{2}})$', '\\1\\2'), "
        f"'( [0-9]{{2}}:[0-9]{{2}}:[0-9]{{2}})([0-9]{{3,9}})$', '\\1.\\2')"
    )


def decode_json_strings(select_sql: str, columns: list[str]) -> str:
    """Wrap a source's SELECT so JSON ``columns`` holding a JSON document *as a string*
    (CSV exports, double-encoded API fields) hold the document itself."""
    repl = ", ".join(
        f"CASE WHEN json_type(\"{c}\") = 'VARCHAR' AND json_valid(\"{c}\" ->> '$') "
        f"AND json_type(\"{c}\" ->> '$') IN ('OBJECT', 'ARRAY') "
        f'THEN CAST("{c}" ->> \'$\' AS JSON) ELSE "{c}" END AS "{c}"'
        for c in columns
    )
    return f"SELECT * REPLACE ({repl}) FROM ({select_sql})"


def sample_records(sample: list[str], wrapper_keys: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """JSON objects in the first lines of a file, for ``sniff``: NDJSON lines, a whole
    document, or pretty-printed documents one after another; wrappers unwrapped."""
    docs: list[Any] = []
    for line in sample:
        try:
            docs.append(json.loads(line))
        except ValueError:
            continue
    if not docs and sample:
        text, dec, pos = "\n".join(sample), json.JSONDecoder(), 0
        while True:
            while pos < len(text) and text[pos] in " \t\r\n":
                pos += 1
            try:
                doc, pos = dec.raw_decode(text, pos)
            except ValueError:
                break
            docs.append(doc)
    out: list[dict[str, Any]] = []
    for doc in docs:
        items = doc if isinstance(doc, list) else [doc]
        for item in items:
            if not isinstance(item, dict):
                continue
            for key in wrapper_keys:
                val: Any = item
                for part in key.split("."):
                    val = val.get(part) if isinstance(val, dict) else None
                if isinstance(val, list):
                    out.extend(v for v in val[:20] if isinstance(v, dict))
                    break
            else:
                out.append(item)
    return out


def csv_header(sample: list[str]) -> set[str]:
    """Column names when the sample starts with a CSV header line, else an empty set."""
    if not sample or sample[0].lstrip("\ufeff")[:1] in ("{", "[", ""):
        return set()
    try:
        names = next(csv.reader([sample[0].lstrip("\ufeff")]))
    except (csv.Error, StopIteration):
        return set()
    return {n.strip() for n in names} if len(names) > 1 else set()


def score(records: list[dict[str, Any]], predicate: Any) -> float:
    """Share of ``records`` that ``predicate`` accepts (0 when there are none)."""
    if not records:
        return 0.0
    return sum(1 for r in records if predicate(r)) / len(records)
