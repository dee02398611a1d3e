"""DuckDB: the embedded engine (and the dialect every other engine is checked against)."""

from __future__ import annotations

from sqlglot.dialects.duckdb import DuckDB

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
        # '$."target"[*]."displayName"' yields a VARCHAR[] of every element's value
        arr = f"json_extract_string({src}, {lit(json_path_quoted([*keys_of(e, 'path'), '*', *elem]))})"
        value = ELEMENT
    else:
        arr = src
        value = ELEMENT + "".join(f'."{k}"' for k in elem)
    cond = self.sql(substitute_element(e.args["cond"], value))
    # list comprehension, not a lambda: DuckDB >= 1.3 rejects the arrow lambda syntax
    return f"list_bool_or([{cond} FOR {ELEMENT} IN {arr}])"


class MantissaDialect(DuckDB):
    class Generator(DuckDB.Generator):
        TRANSFORMS = {
            **DuckDB.Generator.TRANSFORMS,
            **transforms(
                json_scalar=lambda self, e: (
                    f"json_extract_string({self.sql(e, 'this')}, "
                    f"{lit(json_path_quoted(keys_of(e, 'keys')))})"
                ),
                struct_field=struct_path('"'),
                any_element=_any,
                epoch_seconds=lambda self, e: f"epoch({self.sql(e, 'this')})",
            ),
        }
