"""Rendering detection SQL per engine: one small sqlglot dialect class per target.

The backend builds one sqlglot expression tree per rule, written with standard nodes
wherever sqlglot transpiles them faithfully (``LOWER``, ``LIKE ... ESCAPE``, ``TRY_CAST``,
``REGEXP_LIKE``, CTEs, window functions) and with the few nodes below where it does not:
JSON scalar extraction, STRUCT paths, any-element matching over arrays, epoch seconds
(for time buckets) and Sigma's "not" (which must hold when the field is missing).
Each dialect module (``duckdb``, ``athena``, ``bigquery``, ``synapse``, ``spark``) maps
these nodes to its own SQL; golden-SQL tests pin every one of them.
"""

from __future__ import annotations

import importlib
from typing import Any

from sqlglot import exp
from sqlglot.dialects.dialect import Dialect

DIALECTS = ("duckdb", "athena", "bigquery", "synapse", "spark")
SQLGLOT_NAME = {
    "duckdb": "duckdb",
    "athena": "trino",
    "bigquery": "bigquery",
    "synapse": "tsql",
    "spark": "spark",
}
ELEMENT = "__e"


class JsonScalar(exp.Expression, exp.Func):
    """The text value at ``keys`` inside the JSON text ``this`` (NULL when absent)."""

    arg_types = {"this": True, "keys": True}


class StructField(exp.Expression, exp.Func):
    """``this.k1.k2`` on a STRUCT column."""

    arg_types = {"this": True, "keys": True}


class AnyElement(exp.Expression, exp.Func):
    """True when ``cond`` holds for any element of an array.

    ``this`` is a JSON text column (``json`` true: the array is at ``path`` inside it) or a
    native LIST column; ``elem`` are the keys of the value inside each element; ``cond`` is
    a predicate over the placeholder column ``__e`` standing for that value.
    """

    arg_types = {"this": True, "path": False, "elem": False, "json": True, "cond": True}


class EpochSeconds(exp.Expression, exp.Func):
    """Seconds since 1970-01-01 UTC of a timestamp (time buckets of aggregations)."""

    arg_types = {"this": True}


class NotTrue(exp.Expression, exp.Func):
    """Sigma ``not``: true unless the predicate is true (a missing field is not a match)."""

    arg_types = {"this": True}


def keys_of(node: exp.Expression, arg: str) -> list[str]:
    return [k.this for k in node.args.get(arg) or []]


def key_list(keys: list[str]) -> list[exp.Literal]:
    return [exp.Literal.string(k) for k in keys]


def json_path_quoted(keys: list[str]) -> str:
    """``$."a"."b"`` (DuckDB, BigQuery, T-SQL); ``*`` marks an array step."""
    out = "$"
    for k in keys:
        out += "[*]" if k == "*" else '."' + k.replace('"', '\\"') + '"'
    return out


def json_path_bracket(keys: list[str]) -> str:
    """``$["a"]["b"]`` (Trino)."""
    return "$" + "".join('["' + k.replace('"', '\\"') + '"]' for k in keys)


def json_path_dotted(keys: list[str]) -> str:
    """``$.a.b`` (Spark ``get_json_object`` has no quoted keys)."""
    return "$" + "".join("." + k for k in keys)


def substitute_element(cond: exp.Expression, replacement: str) -> exp.Expression:
    """``cond`` with the element placeholder replaced by raw SQL ``replacement``."""
    cond = cond.copy()

    def repl(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Column) and node.name == ELEMENT and not node.table:
            return exp.Var(this=replacement)
        return node

    return cond.transform(repl)


def lit(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def dialect_class(name: str) -> type[Dialect]:
    """The sqlglot dialect class that renders detection SQL for ``name``."""
    if name not in SQLGLOT_NAME:
        from mantissa.errors import ConfigError

        raise ConfigError(f"unknown dialect {name!r}", hint="one of: " + ", ".join(DIALECTS))
    mod = importlib.import_module(f"mantissa.detect.dialects.{name}")
    return mod.MantissaDialect  # type: ignore[no-any-return]


def render(tree: exp.Expression, dialect: str, pretty: bool = False) -> str:
    """SQL text of ``tree`` in ``dialect`` (one of :data:`DIALECTS`)."""
    return dialect_class(dialect)().generate(tree, pretty=pretty)


def struct_path(quote: str) -> Any:
    """Render ``StructField`` as ``base."a"."b"`` with the dialect's identifier quote."""
    return lambda self, e: (
        self.sql(e, "this") + "".join(f".{quote}{k}{quote}" for k in keys_of(e, "keys"))
    )


def not_coalesce(self: Any, e: exp.Expression) -> str:
    """``NotTrue`` where the dialect has booleans: a missing value is not true."""
    return f"NOT COALESCE({self.sql(e, 'this')}, FALSE)"


def transforms(**fns: Any) -> dict[type[exp.Expression], Any]:
    """Renderers of our expression nodes for one dialect; ``not_true`` defaults to
    :func:`not_coalesce`."""
    mapping = {
        "json_scalar": JsonScalar,
        "struct_field": StructField,
        "any_element": AnyElement,
        "epoch_seconds": EpochSeconds,
        "not_true": NotTrue,
    }
    fns = {"not_true": not_coalesce, **fns}
    return {mapping[k]: v for k, v in fns.items()}
