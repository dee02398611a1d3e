"""SQL builders for JSON sources that unwrap envelopes or fold key case (not a source).

``transform_sql`` is the ``native_sql`` of a :class:`~mantissa.sources.base.JsonSource`
whose events may arrive inside an envelope (EventBridge ``detail``, SNS ``Message`` as an
object or as a JSON string) or with lower-cased keys (Panther-normalized test events):
the structure is applied to a *document* expression while ``raw`` keeps the original
record untouched for forensics. Everything stays one DuckDB query per batch.
"""

from __future__ import annotations

import json
from typing import Any


def _keys(structure: Any, out: set[str]) -> set[str]:
    if isinstance(structure, dict):
        for k, v in structure.items():
            out.add(k)
            _keys(v, out)
    return out


def fold_keys_sql(expr: str, structure: dict[str, Any]) -> str:
    """``expr`` (JSON text) with every known key spelled as in ``structure``.

    Keys are matched case-insensitively wherever they appear as object keys (``"key":``);
    only mixed-case names need rewriting, so lower-case ones are left alone.
    """
    out = expr
    for key in sorted(_keys(structure, set())):
        if key == key.lower() or not key.replace("_", "").replace("-", "").isalnum():
            continue
        k = key.replace("'", "''")
        out = f"regexp_replace({out}, '\"(?i:{k})\"(\\s*):', '\"{k}\"\\1:', 'g')"
    return out


def transform_sql(
    structure: dict[str, Any],
    document: str = "raw",
    canonical_key: str | None = None,
    table: str = "input",
) -> str:
    """``SELECT line, raw, file, ctx, <native columns> FROM input`` over ``document``.

    ``document`` is a SQL expression over ``raw`` giving the event's JSON text (an
    envelope's payload, say). When ``canonical_key`` (a top-level key every event has)
    is missing from a document, its keys are folded to the structure's spelling first:
    the folding costs a regex per key, so only records that need it pay for it.
    ``table`` may be a subquery over ``input`` that adds columns ``document`` uses.
    """
    struct = json.dumps(structure).replace("'", "''")
    doc = "_doc"
    if canonical_key:
        # a substring test, not a JSON parse: the key's exact spelling anywhere means the
        # record was not case-folded by a normalizer
        doc = (
            f"CASE WHEN contains(_doc, '\"{canonical_key}\"') THEN _doc "
            f"ELSE {fold_keys_sql('_doc', structure)} END"
        )
    return (
        f"SELECT line, raw, file, ctx, UNNEST(json_transform({doc}, '{struct}')) "
        f"FROM (SELECT line, raw, file, ctx, CAST({document} AS VARCHAR) AS _doc FROM {table}) AS _d"
    )


def payload_sql(paths: list[tuple[str, str]]) -> str:
    """The document of an enveloped record: the first ``(test, payload)`` path that applies.

    Each pair is (a JSON path whose presence marks the envelope, the JSON path of the
    payload). A payload that is a JSON *string* (SNS ``Message``) is decoded.
    """
    parts = []
    for test, path in paths:
        # cheap substring gate first: most records are not enveloped
        first_key = test.removeprefix("$.").split(".")[0].strip('"')
        parts.append(
            f"WHEN contains(raw, '\"{first_key}\"') AND json_exists(raw, '{test}') "
            f"THEN CASE WHEN json_type(raw, '{path}') = 'VARCHAR' "
            f"AND json_valid(json_extract_string(raw, '{path}')) "
            f"THEN json_extract_string(raw, '{path}') "
            f"ELSE CAST(json_extract(raw, '{path}') AS VARCHAR) END"
        )
    return "CASE " + " ".join(parts) + " ELSE raw END"


def ip_sql(expr: str) -> str:
    """``expr`` when it is an IPv4/IPv6 address, else NULL (vendors put host names there)."""
    v = f"trim(CAST({expr} AS VARCHAR))"
    return (
        f"CASE WHEN regexp_full_match({v}, '[0-9]{{1,3}}(\\.[0-9]{{1,3}}){{3}}') "
        f"OR regexp_full_match({v}, '[0-9a-fA-F]*:[0-9a-fA-F:.]+') THEN {v} END"
    )
