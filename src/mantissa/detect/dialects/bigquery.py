"""BigQuery: ``JSON_VALUE``, ``UNNEST`` for arrays, ``UNIX_SECONDS``, analytic
``PERCENTILE_CONT(x, p) OVER (...)``; LIKE has no ESCAPE
clause (backslash is the escape character:
https://cloud.google.com/bigquery/docs/reference/standard-sql/operators#like_operator)."""

from __future__ import annotations

from sqlglot import exp
from sqlglot.dialects.bigquery import BigQuery

from mantissa.detect.dialects import (
    ELEMENT,
    json_path_quoted,
    keys_of,
    lit,
    struct_path,
    substitute_element,
    transforms,
)


def _any(self, e):  # type: ignore[no-untyped-def]
    src = self.sql(e, "this")
    elem = keys_of(e, "elem")
    if e.args["json"].this:
        arr = f"JSON_QUERY_ARRAY({src}, {lit(json_path_quoted(keys_of(e, 'path')))})"
        value = f"JSON_VALUE({ELEMENT}, {lit(json_path_quoted(elem))})"
    else:
        arr = src
        value = ELEMENT + "".join(f".`{k}`" for k in elem)
    cond = self.sql(substitute_element(e.args["cond"], value))
    return f"EXISTS(SELECT 1 FROM UNNEST({arr}) AS {ELEMENT} WHERE {cond})"


def _escape(self, e):  # type: ignore[no-untyped-def]
    return self.sql(e, "this")


class MantissaDialect(BigQuery):
    class Generator(BigQuery.Generator):
        TRANSFORMS = {
            **BigQuery.Generator.TRANSFORMS,
            # PERCENTILE_CONT(x, p) OVER (PARTITION BY ...): an analytic function only
            exp.PercentileCont: lambda self, e: (
                f"PERCENTILE_CONT({self.sql(e, 'this')}, {self.sql(e, 'expression')})"
            ),
            exp.Escape: _escape,
            **transforms(
                json_scalar=lambda self, e: (
                    f"JSON_VALUE({self.sql(e, 'this')}, {lit(json_path_quoted(keys_of(e, 'keys')))})"
                ),
                struct_field=struct_path("`"),
                any_element=_any,
                epoch_seconds=lambda self, e: f"UNIX_SECONDS({self.sql(e, 'this')})",
            ),
        }
