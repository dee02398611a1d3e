"""Spark SQL: ``get_json_object``, higher-order ``exists`` over arrays, ``unix_timestamp``,
``percentile(x, p) OVER (...)`` for Sigma ``value_percentile`` / ``value_median``."""

from __future__ import annotations

from sqlglot import exp
from sqlglot.dialects.spark import Spark

from mantissa.detect.dialects import (
    ELEMENT,
    json_path_dotted,
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
        arr = (
            f"from_json(get_json_object({src}, {lit(json_path_dotted(keys_of(e, 'path')))}), "
            "'array<string>')"
        )
        value = f"get_json_object({ELEMENT}, {lit(json_path_dotted(elem))})" if elem else ELEMENT
    else:
        arr = src
        value = ELEMENT + "".join(f".`{k}`" for k in elem)
    cond = self.sql(substitute_element(e.args["cond"], value))
    return f"exists({arr}, {ELEMENT} -> {cond})"


class MantissaDialect(Spark):
    class Generator(Spark.Generator):
        TRANSFORMS = {
            **Spark.Generator.TRANSFORMS,
            # exact percentile as a window aggregate (Spark 3.x; percentile_cont needs 3.4+)
            exp.PercentileCont: lambda self, e: (
                f"percentile({self.sql(e, 'this')}, {self.sql(e, 'expression')})"
            ),
            **transforms(
                json_scalar=lambda self, e: (
                    f"get_json_object({self.sql(e, 'this')}, "
                    f"{lit(json_path_dotted(keys_of(e, 'keys')))})"
                ),
                struct_field=struct_path("`"),
                any_element=_any,
                epoch_seconds=lambda self, e: f"unix_timestamp({self.sql(e, 'this')})",
            ),
        }
