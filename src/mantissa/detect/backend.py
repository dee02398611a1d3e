"""A pySigma backend that emits sqlglot expressions instead of query text.

:class:`SqlglotBackend` implements pySigma's ``convert_condition_*`` methods: each returns
a boolean sqlglot expression, combined by pySigma's condition tree into the rule's WHERE
clause. Field names are resolved against the target table's schema (from the lake
catalog) by :class:`TableSchema`: a real column, a path into a STRUCT, a path into a JSON
column (``requestParameters.bucketName``), any element of an array (Okta ``target``), or
— when the table has no such column — the same path in the original ``raw`` record,
trying the usual casings (``ResultType`` / ``resultType``). Matching is case-insensitive
unless the rule says ``|cased`` (Sigma's default), and a ``not`` holds when the field is
missing. Rendering per engine is done by :mod:`mantissa.detect.dialects`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, ClassVar

from sigma.conditions import (
    ConditionAND,
    ConditionFieldEqualsValueExpression,
    ConditionNOT,
    ConditionOR,
    ConditionValueExpression,
)
from sigma.conversion.base import Backend
from sigma.conversion.state import ConversionState
from sigma.exceptions import SigmaFeatureNotSupportedByBackendError
from sigma.rule import SigmaRule
from sigma.types import (
    CompareOperators,
    SigmaBool,
    SigmaCasedString,
    SigmaCIDRExpression,
    SigmaCompareExpression,
    SigmaExists,
    SigmaFieldReference,
    SigmaNumber,
    SigmaRegularExpression,
    SigmaRegularExpressionFlag,
    SigmaString,
    SigmaTimestampPart,
    SpecialChars,
    TimestampPart,
)
from sqlglot import exp

from mantissa.detect.dialects import (
    ELEMENT,
    AnyElement,
    JsonScalar,
    NotTrue,
    StructField,
    key_list,
)

TEXT_TYPES = ("VARCHAR", "JSON", "TEXT", "STRING")


# -- DuckDB type strings → a small tree ----------------------------------------------
@dataclass
class ColumnType:
    kind: str  # "struct" | "list" | "json" | "text" | "bool" | "number" | "other"
    name: str = ""
    fields: dict[str, ColumnType] = field(default_factory=dict)  # struct
    element: ColumnType | None = None  # list


def parse_type(text: str) -> ColumnType:
    """Parse a DuckDB type string such as ``STRUCT("type" VARCHAR, a STRUCT(b JSON))[]``."""
    return _parse_type(text.strip())[0]


def _parse_type(s: str) -> tuple[ColumnType, str]:
    s = s.lstrip()
    upper = s.upper()
    if upper.startswith("STRUCT("):
        body, rest = _balanced(s[len("STRUCT") :])
        fields: dict[str, ColumnType] = {}
        for part in _split_top(body):
            part = part.strip()
            if part.startswith('"'):
                end = part.index('"', 1)
                while end + 1 < len(part) and part[end + 1] == '"':
                    end = part.index('"', end + 2)
                name, ftype = part[1:end].replace('""', '"'), part[end + 1 :]
            else:
                name, _, ftype = part.partition(" ")
            fields[name] = parse_type(ftype)
        t = ColumnType("struct", "STRUCT", fields=fields)
    elif upper.startswith(("MAP(", "UNION(")):
        _, rest = _balanced(s[s.index("(") :])
        t = ColumnType("other", upper.split("(")[0])
    else:
        m = re.match(r"[A-Za-z_ ]+(\([0-9, ]*\))?", s)
        name = (m.group(0) if m else s).strip()
        rest = s[m.end() :] if m else ""
        u = name.upper()
        if u == "JSON":
            t = ColumnType("json", u)
        elif u in TEXT_TYPES:
            t = ColumnType("text", u)
        elif u == "BOOLEAN":
            t = ColumnType("bool", u)
        elif any(x in u for x in ("INT", "DOUBLE", "FLOAT", "DECIMAL", "REAL", "NUMERIC")):
            t = ColumnType("number", u)
        else:
            t = ColumnType("other", u)
    while rest.lstrip().startswith("[]"):
        rest = rest.lstrip()[2:]
        t = ColumnType("list", "LIST", element=t)
    return t, rest


def _balanced(s: str) -> tuple[str, str]:
    depth = 0
    in_q = False
    for i, ch in enumerate(s):
        if ch == '"':
            in_q = not in_q
        elif not in_q and ch == "(":
            depth += 1
        elif not in_q and ch == ")":
            depth -= 1
            if depth == 0:
                return s[1:i], s[i + 1 :]
    return s[1:], ""


def _split_top(s: str) -> list[str]:
    parts, depth, in_q, cur = [], 0, False, ""
    for ch in s:
        if ch == '"':
            in_q = not in_q
        if not in_q and ch == "(":
            depth += 1
        elif not in_q and ch == ")":
            depth -= 1
        if ch == "," and depth == 0 and not in_q:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    if cur.strip():
        parts.append(cur)
    return parts


# -- field resolution ------------------------------------------------------------------
@dataclass
class Resolved:
    """Where a Sigma field lives in a table."""

    expr: exp.Expression  # scalar expression (or the array source for ``any``)
    kind: str  # "text" | "bool" | "number" | "other"
    any: AnyElement | None = None  # set when the field is inside an array
    origin: str = "column"  # column | struct | json | raw

    def predicate(self, build: Any) -> exp.Expression:
        """``build(value_expr, kind)`` applied to the field, with any-element semantics."""
        if self.any is None:
            return build(self.expr, self.kind)
        node = self.any.copy()
        node.set("cond", build(exp.column(ELEMENT), "text"))
        return node


def _variants(key: str) -> list[str]:
    out = [key, key[:1].lower() + key[1:], key[:1].upper() + key[1:], key.lower()]
    return list(dict.fromkeys(out))


class TableSchema:
    """The columns of one table, and how Sigma field names map onto them."""

    def __init__(
        self, table: str, columns: list[tuple[str, str]], array_paths: set[str] | None = None
    ) -> None:
        self.table = table
        self.columns = {c: parse_type(t) for c, t in columns}
        self.types = dict(columns)
        self.lower = {c.lower(): c for c in self.columns}
        self.array_paths = array_paths or set()
        self.unmapped: set[str] = set()

    @classmethod
    def for_table(cls, table: str, array_paths: set[str] | None = None) -> TableSchema:
        from mantissa.lake.catalog import tables
        from mantissa.sources.base import COMMON_COLUMNS

        spec = tables().get(table)
        cols = list(COMMON_COLUMNS.items()) if spec is None else list(spec.schema())
        return cls(table, cols, array_paths)

    @property
    def known(self) -> bool:
        from mantissa.lake.catalog import tables

        return self.table in tables()

    def column(self, name: str) -> str | None:
        return name if name in self.columns else self.lower.get(name.lower())

    def resolve(self, name: str) -> Resolved:
        col = self.column(name)
        if col is not None:
            return self._navigate(col, [], name)
        parts = name.split(".")
        for i in range(len(parts) - 1, 0, -1):
            col = self.column(".".join(parts[:i]))
            if col is not None:
                return self._navigate(col, parts[i:], name)
        return self._raw(name)

    def _raw(self, name: str) -> Resolved:
        """A field the table has no column for: the same path in the original record."""
        self.unmapped.add(name)
        return self._json(exp.column("raw"), [], name.split("."), name, origin="raw")

    def _navigate(self, col: str, rest: list[str], full: str) -> Resolved:
        ctype = self.columns[col]
        base: exp.Expression = exp.column(col, quoted=True)
        walked: list[str] = []
        while rest:
            if ctype.kind == "struct":
                key = next((k for k in ctype.fields if k == rest[0]), None) or next(
                    (k for k in ctype.fields if k.lower() == rest[0].lower()), None
                )
                if key is None:
                    return self._raw(full)
                walked.append(key)
                ctype = ctype.fields[key]
                rest = rest[1:]
                continue
            if ctype.kind == "list":
                if walked:
                    base = StructField(this=base, keys=key_list(walked))
                elem = ctype.element or ColumnType("other")
                keys, et = [], elem
                for k in rest:
                    if et.kind != "struct":
                        break
                    key = next((f for f in et.fields if f.lower() == k.lower()), k)
                    keys.append(key)
                    et = et.fields.get(key, ColumnType("other"))
                node = AnyElement(
                    this=base, elem=key_list(keys), json=exp.Boolean(this=False), cond=exp.true()
                )
                return Resolved(base, et.kind, any=node, origin="struct")
            if ctype.kind == "text" and not walked:
                # a plain text column (e.g. the normalized ``outcome``) shadowing a vendor
                # object of the same name: the vendor path lives in the raw record
                return self._raw(full)
            if ctype.kind in ("json", "text"):
                if walked:
                    base = StructField(this=base, keys=key_list(walked))
                prefix = ".".join([col, *walked]).lower()
                return self._json(base, [prefix], rest, full, origin="json")
            return self._raw(full)
        if walked:
            base = StructField(this=base, keys=key_list(walked))
        kind = {"struct": "other", "list": "other", "json": "text"}.get(ctype.kind, ctype.kind)
        if ctype.kind == "list":
            node = AnyElement(this=base, elem=[], json=exp.Boolean(this=False), cond=exp.true())
            return Resolved(base, "text", any=node, origin="column")
        return Resolved(base, kind, origin="column" if not walked else "struct")

    def _json(
        self, base: exp.Expression, prefix: list[str], keys: list[str], full: str, origin: str
    ) -> Resolved:
        """A path inside JSON text; arrays configured in ``array_fields`` match any element."""
        head = prefix[0] if prefix else ""
        for i in range(0 if head else 1, len(keys) + 1):
            dotted = ".".join([p for p in [head, *keys[:i]] if p]).lower()
            bare = ".".join(keys[:i]).lower()
            if dotted in self.array_paths or (origin == "raw" and bare in self.array_paths):
                node = AnyElement(
                    this=base,
                    path=key_list(keys[:i]),
                    elem=key_list(keys[i:]),
                    json=exp.Boolean(this=True),
                    cond=exp.true(),
                )
                return Resolved(base, "text", any=node, origin=origin)
        if not keys:
            return Resolved(base, "text", origin=origin)
        if origin == "raw":
            # vendor casing varies between rules and logs (ResultType / resultType)
            variants = [
                JsonScalar(this=base.copy(), keys=key_list([*keys[:-1], v]))
                for v in _variants(keys[-1])
            ]
            if keys[:-1]:
                variants += [
                    JsonScalar(this=base.copy(), keys=key_list([_variants(k)[1] for k in keys]))
                ]
            uniq = {v.sql(): v for v in variants}
            expr: exp.Expression = (
                exp.Coalesce(this=next(iter(uniq.values())), expressions=list(uniq.values())[1:])
                if len(uniq) > 1
                else next(iter(uniq.values()))
            )
            return Resolved(expr, "text", origin=origin)
        return Resolved(JsonScalar(this=base, keys=key_list(keys)), "text", origin=origin)


# -- values ---------------------------------------------------------------------------
def like_pattern(s: SigmaString) -> tuple[str, bool]:
    """A LIKE pattern (``\\`` escapes) for a Sigma string, and whether it has wildcards."""
    out, wild = [], False
    for part in s.s:
        if part == SpecialChars.WILDCARD_MULTI:
            out.append("%")
            wild = True
        elif part == SpecialChars.WILDCARD_SINGLE:
            out.append("_")
            wild = True
        elif isinstance(part, str):
            out.append(part.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_"))
        else:
            raise SigmaFeatureNotSupportedByBackendError(
                f"unresolved placeholder %{getattr(part, 'name', part)}% in a value"
            )
    return "".join(out), wild


def plain(s: SigmaString) -> str:
    return "".join(p for p in s.s if isinstance(p, str))


def _text(e: exp.Expression, kind: str) -> exp.Expression:
    return e if kind == "text" else exp.cast(e, "VARCHAR")


def string_match(e: exp.Expression, kind: str, s: SigmaString, cased: bool) -> exp.Expression:
    pattern, wild = like_pattern(s)
    value = _text(e, kind)
    if not cased:
        value = exp.Lower(this=value)
        pattern = pattern.lower()
    if not wild:
        text = plain(s) if cased else plain(s).lower()
        return exp.EQ(this=value, expression=exp.Literal.string(text))
    if pattern == "%":
        return exp.Not(this=exp.Is(this=e, expression=exp.Null()))
    like = exp.Like(this=value, expression=exp.Literal.string(pattern))
    if "\\" in pattern:
        return exp.Escape(this=like, expression=exp.Literal.string("\\"))
    return like


def _regex_text(r: SigmaRegularExpression) -> str:
    """The pattern as written (pySigma 2 keeps it in a SigmaString that re-escapes ``?``)."""
    rx: Any = r.regexp
    if isinstance(rx, str):
        return rx
    return getattr(rx, "original", None) or rx.to_plain()


def _paren(e: exp.Expression) -> exp.Expression:
    return e if isinstance(e, exp.Paren | exp.Column | exp.Literal) else exp.Paren(this=e)


class SqlglotBackend(Backend):
    """pySigma backend: each condition becomes a sqlglot boolean expression."""

    name: ClassVar[str] = "Mantissa sqlglot"
    formats: ClassVar[dict[str, str]] = {"default": "sqlglot expression (WHERE clause)"}
    requires_pipeline: ClassVar[bool] = False
    convert_or_as_in: ClassVar[bool] = True
    in_expressions_allow_wildcards: ClassVar[bool] = False

    def __init__(self, schema: TableSchema, processing_pipeline: Any = None) -> None:
        super().__init__(processing_pipeline=processing_pipeline)
        self.schema = schema
        self.fields_used: set[str] = set()

    def resolve(self, name: str) -> Resolved:
        self.fields_used.add(name)
        return self.schema.resolve(name)

    # -- boolean structure --------------------------------------------------------
    def convert_condition_or(self, cond: ConditionOR, state: ConversionState) -> Any:
        parts = [self.convert_condition(a, state) for a in cond.args]  # type: ignore[arg-type]
        parts = [p for p in parts if p is not None]
        return _paren(exp.or_(*[_paren(p) for p in parts])) if parts else exp.false()

    def convert_condition_and(self, cond: ConditionAND, state: ConversionState) -> Any:
        parts = [self.convert_condition(a, state) for a in cond.args]  # type: ignore[arg-type]
        parts = [p for p in parts if p is not None]
        return _paren(exp.and_(*[_paren(p) for p in parts])) if parts else exp.true()

    def convert_condition_not(self, cond: ConditionNOT, state: ConversionState) -> Any:
        inner = self.convert_condition(cond.args[0], state)  # type: ignore[arg-type]
        return NotTrue(this=inner)

    def convert_condition_as_in_expression(
        self, cond: ConditionOR | ConditionAND, state: ConversionState
    ) -> Any:
        first = cond.args[0]
        assert isinstance(first, ConditionFieldEqualsValueExpression)
        values = [a.value for a in cond.args]  # type: ignore[union-attr]
        if not all(isinstance(v, SigmaString) and not v.contains_special() for v in values):
            return self.convert_condition_or(cond, state)  # type: ignore[arg-type]
        cased = any(isinstance(v, SigmaCasedString) for v in values)
        if isinstance(cond, ConditionAND):
            return self.convert_condition_and(cond, state)
        res = self.resolve(first.field)  # type: ignore[arg-type]

        def build(e: exp.Expression, kind: str) -> exp.Expression:
            value = _text(e, kind)
            if not cased:
                value = exp.Lower(this=value)
            lits = [
                exp.Literal.string(plain(v) if cased else plain(v).lower())  # type: ignore[arg-type]
                for v in values
            ]
            return exp.In(this=value, expressions=list(dict.fromkeys(lits)))

        return res.predicate(build)

    # -- field = value ------------------------------------------------------------------
    def _field(self, cond: ConditionFieldEqualsValueExpression, build: Any) -> exp.Expression:
        return self.resolve(cond.field).predicate(build)

    def convert_condition_field_eq_val_str(
        self, cond: ConditionFieldEqualsValueExpression, state: ConversionState
    ) -> Any:
        v = cond.value
        return self._field(cond, lambda e, k: string_match(e, k, v, cased=False))  # type: ignore[arg-type]

    def convert_condition_field_eq_val_str_case_sensitive(
        self, cond: ConditionFieldEqualsValueExpression, state: ConversionState
    ) -> Any:
        v = cond.value
        return self._field(cond, lambda e, k: string_match(e, k, v, cased=True))  # type: ignore[arg-type]

    def convert_condition_field_eq_val_num(
        self, cond: ConditionFieldEqualsValueExpression, state: ConversionState
    ) -> Any:
        n = cond.value
        assert isinstance(n, SigmaNumber)

        def build(e: exp.Expression, kind: str) -> exp.Expression:
            if kind == "number":
                return exp.EQ(this=e, expression=exp.Literal.number(n.number))
            if kind == "bool":
                return exp.EQ(this=e, expression=exp.Boolean(this=bool(n.number)))
            return exp.EQ(this=_text(e, kind), expression=exp.Literal.string(str(n.number)))

        return self._field(cond, build)

    def convert_condition_field_eq_val_bool(
        self, cond: ConditionFieldEqualsValueExpression, state: ConversionState
    ) -> Any:
        b = cond.value
        assert isinstance(b, SigmaBool)

        def build(e: exp.Expression, kind: str) -> exp.Expression:
            if kind == "bool":
                return exp.EQ(this=e, expression=exp.Boolean(this=b.boolean))
            return exp.EQ(
                this=exp.Lower(this=_text(e, kind)),
                expression=exp.Literal.string("true" if b.boolean else "false"),
            )

        return self._field(cond, build)

    def convert_condition_field_eq_val_re(
        self, cond: ConditionFieldEqualsValueExpression, state: ConversionState
    ) -> Any:
        r = cond.value
        assert isinstance(r, SigmaRegularExpression)
        flags = "".join(
            {
                SigmaRegularExpressionFlag.IGNORECASE: "i",
                SigmaRegularExpressionFlag.MULTILINE: "m",
                SigmaRegularExpressionFlag.DOTALL: "s",
            }[f]
            for f in sorted(r.flags, key=lambda f: f.name)
        )
        pattern = (f"(?{flags})" if flags else "") + _regex_text(r)

        def build(e: exp.Expression, kind: str) -> exp.Expression:
            return exp.RegexpLike(this=_text(e, kind), expression=exp.Literal.string(pattern))

        return self._field(cond, build)

    def convert_condition_field_eq_val_cidr(
        self, cond: ConditionFieldEqualsValueExpression, state: ConversionState
    ) -> Any:
        c = cond.value
        assert isinstance(c, SigmaCIDRExpression)
        # Portable across the five engines: the network as textual prefixes (pySigma's
        # expansion), e.g. 10.0.0.0/8 → '10.%'; IPv6 compared lower-cased.
        patterns = [SigmaString(p) for p in c.expand(wildcard="*")]

        def build(e: exp.Expression, kind: str) -> exp.Expression:
            return _paren(exp.or_(*[string_match(e, kind, p, cased=False) for p in patterns]))

        return self._field(cond, build)

    def convert_condition_field_compare_op_val(
        self, cond: ConditionFieldEqualsValueExpression, state: ConversionState
    ) -> Any:
        c = cond.value
        assert isinstance(c, SigmaCompareExpression)
        op = {
            CompareOperators.LT: exp.LT,
            CompareOperators.LTE: exp.LTE,
            CompareOperators.GT: exp.GT,
            CompareOperators.GTE: exp.GTE,
            CompareOperators.NEQ: exp.NEQ,
        }[c.op]

        def build(e: exp.Expression, kind: str) -> exp.Expression:
            num = e if kind == "number" else exp.TryCast(this=e, to=exp.DataType.build("DOUBLE"))
            return op(this=num, expression=exp.Literal.number(c.number.number))

        return self._field(cond, build)

    def convert_condition_field_eq_val_timestamp_part(
        self, cond: ConditionFieldEqualsValueExpression, state: ConversionState
    ) -> Any:
        t = cond.value
        assert isinstance(t, SigmaTimestampPart)
        unit = {
            TimestampPart.MINUTE: "MINUTE",
            TimestampPart.HOUR: "HOUR",
            TimestampPart.DAY: "DAY",
            TimestampPart.WEEK: "WEEK",
            TimestampPart.MONTH: "MONTH",
            TimestampPart.YEAR: "YEAR",
        }[t.timestamp_part]

        def build(e: exp.Expression, kind: str) -> exp.Expression:
            ts = e if kind == "other" else exp.TryCast(this=e, to=exp.DataType.build("TIMESTAMP"))
            return exp.EQ(
                this=exp.Extract(this=exp.var(unit), expression=ts),
                expression=exp.Literal.number(t.number),
            )

        return self._field(cond, build)

    def convert_condition_field_eq_field(
        self, cond: ConditionFieldEqualsValueExpression, state: ConversionState
    ) -> Any:
        ref = cond.value
        assert isinstance(ref, SigmaFieldReference)
        other = self.resolve(ref.field)
        if other.any is not None:
            raise SigmaFeatureNotSupportedByBackendError(
                f"|fieldref to an array field ({ref.field}) is not supported"
            )
        rhs = exp.Lower(this=_text(other.expr, other.kind))

        def build(e: exp.Expression, kind: str) -> exp.Expression:
            lhs = exp.Lower(this=_text(e, kind))
            if ref.starts_with or ref.ends_with:
                pat: exp.Expression = rhs.copy()
                if ref.starts_with:
                    pat = exp.DPipe(this=pat, expression=exp.Literal.string("%"))
                if ref.ends_with:
                    pat = exp.DPipe(this=exp.Literal.string("%"), expression=pat)
                return exp.Like(this=lhs, expression=pat)
            return exp.EQ(this=lhs, expression=rhs.copy())

        return self._field(cond, build)

    def convert_condition_field_eq_val_null(
        self, cond: ConditionFieldEqualsValueExpression, state: ConversionState
    ) -> Any:
        res = self.resolve(cond.field)
        if res.any is not None:
            return exp.Is(this=res.expr, expression=exp.Null())
        e = res.expr
        if res.kind == "text":
            # a JSON null or an empty value is what Sigma's null means in logs
            return _paren(
                exp.or_(
                    exp.Is(this=e, expression=exp.Null()),
                    exp.EQ(this=e.copy(), expression=exp.Literal.string("")),
                )
            )
        return exp.Is(this=e, expression=exp.Null())

    def convert_condition_field_exists(
        self, cond: ConditionFieldEqualsValueExpression, state: ConversionState
    ) -> Any:
        return exp.Not(this=exp.Is(this=self.resolve(cond.field).expr, expression=exp.Null()))

    def convert_condition_field_not_exists(
        self, cond: ConditionFieldEqualsValueExpression, state: ConversionState
    ) -> Any:
        return exp.Is(this=self.resolve(cond.field).expr, expression=exp.Null())

    def convert_condition_field_eq_val_exists(
        self, cond: ConditionFieldEqualsValueExpression, state: ConversionState
    ) -> Any:
        v = cond.value
        assert isinstance(v, SigmaExists)
        if v.exists:
            return self.convert_condition_field_exists(cond, state)
        return self.convert_condition_field_not_exists(cond, state)

    def convert_condition_field_eq_query_expr(
        self, cond: ConditionFieldEqualsValueExpression, state: ConversionState
    ) -> Any:
        raise SigmaFeatureNotSupportedByBackendError("query expressions are not supported")

    # -- keywords (no field) ----------------------------------------------------------------
    def _keyword(self, build: Any) -> exp.Expression:
        return build(exp.column("raw"), "text")

    def convert_condition_val_str(
        self, cond: ConditionValueExpression, state: ConversionState
    ) -> Any:
        v = cond.value
        assert isinstance(v, SigmaString)
        pattern = (
            v if v.startswith(SpecialChars.WILDCARD_MULTI) else SpecialChars.WILDCARD_MULTI + v
        )
        if not pattern.endswith(SpecialChars.WILDCARD_MULTI):
            pattern = pattern + SpecialChars.WILDCARD_MULTI
        cased = isinstance(v, SigmaCasedString)
        return self._keyword(lambda e, k: string_match(e, k, pattern, cased=cased))

    def convert_condition_val_num(
        self, cond: ConditionValueExpression, state: ConversionState
    ) -> Any:
        s = SigmaString("*" + str(cond.value) + "*")
        return self._keyword(lambda e, k: string_match(e, k, s, cased=False))

    def convert_condition_val_re(
        self, cond: ConditionValueExpression, state: ConversionState
    ) -> Any:
        r = cond.value
        assert isinstance(r, SigmaRegularExpression)
        return exp.RegexpLike(this=exp.column("raw"), expression=exp.Literal.string(_regex_text(r)))

    def convert_condition_query_expr(
        self, cond: ConditionValueExpression, state: ConversionState
    ) -> Any:
        raise SigmaFeatureNotSupportedByBackendError("query expressions are not supported")

    # Correlation rules need every referenced rule's table and fields at once, which the
    # rule index has and a single-rule backend has not: mantissa.detect.query compiles them.
    def _correlation(self, *args: Any, **kwargs: Any) -> Any:
        raise SigmaFeatureNotSupportedByBackendError(
            "correlation rules are compiled by mantissa.detect.query.compile_rule"
        )

    convert_correlation_event_count_rule = _correlation
    convert_correlation_value_count_rule = _correlation
    convert_correlation_temporal_rule = _correlation
    convert_correlation_temporal_ordered_rule = _correlation
    convert_correlation_extended_temporal_rule = _correlation
    convert_correlation_extended_temporal_ordered_rule = _correlation
    convert_correlation_value_sum_rule = _correlation
    convert_correlation_value_avg_rule = _correlation
    convert_correlation_value_percentile_rule = _correlation
    convert_correlation_value_median_rule = _correlation

    # -- the rule -------------------------------------------------------------------------
    def finalize_query_default(
        self, rule: SigmaRule, query: Any, index: int, state: ConversionState
    ) -> Any:
        return query

    def where(self, rule: SigmaRule) -> exp.Expression:
        """The rule's detection as one boolean expression (conditions OR-ed)."""
        self.fields_used = set()
        # rules referenced by a correlation have output disabled by pySigma; we still
        # need their condition
        rule._output = True
        parts = self.convert_rule(rule)
        if not parts:
            raise SigmaFeatureNotSupportedByBackendError("the rule produced no condition")
        return parts[0] if len(parts) == 1 else exp.or_(*[_paren(p) for p in parts])
