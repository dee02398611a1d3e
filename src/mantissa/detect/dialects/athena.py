"""Athena (engine v3 = Trino): JSON via ``json_extract_scalar``, arrays via ``any_match``,
percentiles (Sigma ``value_percentile`` / ``value_median``) via ``approx_percentile``."""

from __future__ import annotations

from sqlglot import exp
from sqlglot.dialects.trino import Trino

from mantissa.detect.dialects import (
    ELEMENT,
    json_path_bracket,
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
        arr = f"CAST(json_extract({src}, {lit(json_path_bracket(keys_of(e, 'path')))}) AS ARRAY(JSON))"
        value = (
            f"json_extract_scalar({ELEMENT}, {lit(json_path_bracket(elem))})"
            if elem
            else (f"json_format({ELEMENT})")
        )
    else:
        arr = src
        value = ELEMENT + "".join(f'."{k}"' for k in elem)
    cond = self.sql(substitute_element(e.args["cond"], value))
    return f"any_match({arr}, {ELEMENT} -> {cond})"


class MantissaDialect(Trino):
    class Generator(Trino.Generator):
        TRANSFORMS = {
            **Trino.Generator.TRANSFORMS,
            # Trino has no PERCENTILE_CONT; approx_percentile is an aggregate usable OVER ()
            exp.PercentileCont: lambda self, e: (
                f"approx_percentile({self.sql(e, 'this')}, {self.sql(e, 'expression')})"
            ),
            **transforms(
                json_scalar=lambda self, e: (
                    f"json_extract_scalar({self.sql(e, 'this')}, "
                    f"{lit(json_path_bracket(keys_of(e, 'keys')))})"
                ),
                struct_field=struct_path('"'),
                any_element=_any,
                epoch_seconds=lambda self, e: f"to_unixtime({self.sql(e, 'this')})",
            ),
        }
