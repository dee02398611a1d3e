"""Synapse serverless SQL (T-SQL). No booleans, no structs (nested Parquet columns are read
as JSON text by OPENROWSET), ``OPENJSON`` for arrays, ``DATEDIFF_BIG`` for epoch seconds.
Percentiles render as ``PERCENTILE_CONT(p) WITHIN GROUP (ORDER BY x) OVER (...)``.
Regular expressions render as ``REGEXP_LIKE`` (SQL Server 2025 / Azure SQL); a Synapse
pool without it rejects ``|re`` rules with the engine's own error."""

from __future__ import annotations

from sqlglot import exp
from sqlglot.dialects.tsql import TSQL

from mantissa.detect.dialects import (
    ELEMENT,
    JsonScalar,
    StructField,
    json_path_quoted,
    keys_of,
    lit,
    substitute_element,
    transforms,
)


def _flatten(e):  # type: ignore[no-untyped-def]
    """``(base, keys)`` of a struct path: OPENROWSET reads nested Parquet columns as JSON
    text, so ``a.b`` then ``$.c`` is one JSON path ``$.b.c`` on ``a`` (``JSON_VALUE`` of an
    intermediate object would be NULL in T-SQL)."""
    base, keys = e, []
    while isinstance(base, StructField | JsonScalar):
        keys = keys_of(base, "keys") + keys
        base = base.this
    return base, keys


def _any(self, e):  # type: ignore[no-untyped-def]
    base, prefix = _flatten(e.this)
    src = self.sql(base)
    elem = keys_of(e, "elem")
    path = prefix + (keys_of(e, "path") if e.args["json"].this else [])
    value = (
        f"JSON_VALUE({ELEMENT}.value, {lit(json_path_quoted(elem))})"
        if elem
        else (f"{ELEMENT}.value")
    )
    cond = self.sql(substitute_element(e.args["cond"], value))
    return (
        f"EXISTS(SELECT 1 FROM OPENJSON({src}, {lit(json_path_quoted(path))}) AS {ELEMENT} "
        f"WHERE {cond})"
    )


def _json(self, e):  # type: ignore[no-untyped-def]
    base, keys = _flatten(e)
    return f"JSON_VALUE({self.sql(base)}, {lit(json_path_quoted(keys))})"


def _within_group(self, e):  # type: ignore[no-untyped-def]
    # T-SQL's ordered-set aggregates take exactly one ORDER BY expression: no NULLS
    # FIRST/LAST emulation (nulls are ignored by PERCENTILE_* anyway)
    order = ", ".join(
        self.sql(o, "this") + (" DESC" if o.args.get("desc") else "")
        for o in e.expression.expressions
    )
    return f"{self.sql(e, 'this')} WITHIN GROUP (ORDER BY {order})"


class MantissaDialect(TSQL):
    class Generator(TSQL.Generator):
        # CAST(x AS VARCHAR) without a length truncates to 30 characters in T-SQL
        TYPE_MAPPING = {**TSQL.Generator.TYPE_MAPPING, exp.DataType.Type.VARCHAR: "NVARCHAR(4000)"}
        TRANSFORMS = {
            **TSQL.Generator.TRANSFORMS,
            exp.WithinGroup: _within_group,
            # T-SQL's inverse distribution syntax; the OVER (PARTITION BY ...) follows it
            exp.PercentileCont: lambda self, e: (
                f"PERCENTILE_CONT({self.sql(e, 'expression')}) WITHIN GROUP "
                f"(ORDER BY {self.sql(e, 'this')})"
            ),
            **transforms(
                json_scalar=_json,
                struct_field=_json,
                any_element=_any,
                epoch_seconds=lambda self, e: (
                    f"DATEDIFF_BIG(SECOND, '1970-01-01T00:00:00', {self.sql(e, 'this')})"
                ),
                not_true=lambda self, e: (
                    f"NOT (CASE WHEN {self.sql(e, 'this')} THEN 1 ELSE 0 END = 1)"
                ),
            ),
        }
