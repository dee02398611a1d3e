"""Aggregations and Sigma correlation rules as windowed GROUP BY queries.

Two spellings reach the same query shape:

* the module reference's aggregation, ``condition: selection | count() by user > 10`` with
  ``timeframe: 5m`` (also ``count(field)`` = distinct values, ``sum/avg/min/max(field)``);
* Sigma correlation rules: ``event_count``, ``value_count`` (distinct values of a field),
  ``temporal`` (all referenced rules fire for the same group) and ``temporal_ordered``
  (and in order), with ``group-by``, ``timespan`` and field ``aliases``;
  ``value_sum``/``value_avg`` too.

Windows are aligned tumbling buckets of the timeframe (``floor(epoch_seconds / N)``), the
same approximation Splunk's ``bin _time span=`` makes. Everything is computed with window
functions over the matching events (the distinct count as ``dense_rank`` up + down - 1),
so one scan yields both the groups over the threshold and up to 20 evidence rows each, in
SQL that all five engines accept.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from dataclasses import field as dc_field

from sqlglot import exp

from mantissa.errors import ConfigError

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "M": 2592000, "y": 31536000}
_AGG = re.compile(
    r"^\s*(?P<fn>count|sum|avg|min|max)\(\s*(?P<field>[\w.\-]*)\s*\)"
    r"(?:\s+by\s+(?P<by>[\w.\-]+(?:\s*,\s*[\w.\-]+)*))?"
    r"\s*(?P<op><=|>=|==|!=|<|>|=)\s*(?P<n>\d+(?:\.\d+)?)\s*$",
    re.I,
)
OPS = {
    "<": exp.LT,
    "<=": exp.LTE,
    ">": exp.GT,
    ">=": exp.GTE,
    "=": exp.EQ,
    "==": exp.EQ,
    "!=": exp.NEQ,
}
SIGMA_OPS = {"lt": "<", "lte": "<=", "gt": ">", "gte": ">=", "eq": "=", "neq": "!="}
EVIDENCE_ROWS = 20


def parse_duration(text: str | int | float | None) -> float:
    """``5m`` → 300 (units s, m, h, d, w; M = 30 days, y = 365 days)."""
    if text is None:
        raise ConfigError("missing duration")
    if isinstance(text, int | float):
        return float(text)
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdwMy]?)\s*", str(text))
    if not m:
        raise ConfigError(f"invalid duration {text!r}", hint="e.g. 30s, 5m, 1h, 7d")
    return float(m.group(1)) * _UNITS[m.group(2) or "s"]


@dataclass
class Aggregation:
    """What a rule's matches are grouped and counted by."""

    function: str = (
        "count"  # count | distinct | sum | avg | min | max | temporal | temporal_ordered
    )
    field: str | None = None
    group_by: list[str] = dc_field(default_factory=list)
    op: str = ">"
    threshold: float = 0
    timeframe_secs: int | None = None
    refs: list[str] = dc_field(default_factory=list)  # temporal_ordered: rule order
    percentile: float | None = None  # value_percentile: which percentile of ``field``

    def describe(self) -> str:
        fn = {"distinct": f"count({self.field})"}.get(
            self.function, f"{self.function}({self.field or ''})"
        )
        by = f" by {', '.join(self.group_by)}" if self.group_by else ""
        tf = f" within {self.timeframe_secs}s" if self.timeframe_secs else ""
        return f"{fn}{by} {self.op} {self.threshold:g}{tf}"


def parse_aggregation(text: str, timeframe: str | None) -> Aggregation:
    """``count(field) by a, b > 10`` (the part after ``|``) into an :class:`Aggregation`."""
    m = _AGG.match(text)
    if not m:
        raise ConfigError(
            f"unsupported aggregation {text.strip()!r}",
            hint="use count() / count(field) / sum|avg|min|max(field) [by f1, f2] <op> N",
        )
    fn = m.group("fn").lower()
    fld = m.group("field") or None
    if fn == "count" and fld:
        fn = "distinct"
    if fn in ("sum", "avg", "min", "max") and not fld:
        raise ConfigError(f"{fn}() needs a field")
    by = [b.strip() for b in (m.group("by") or "").split(",") if b.strip()]
    return Aggregation(
        function=fn,
        field=fld,
        group_by=by,
        op="=" if m.group("op") == "==" else m.group("op"),
        threshold=float(m.group("n")),
        timeframe_secs=int(parse_duration(timeframe)) if timeframe else None,
    )


def window(partition: list[exp.Expression], order: exp.Expression | None = None) -> exp.Window:
    w = exp.Window(partition_by=[p.copy() for p in partition])
    if order is not None:
        w.set("order", exp.Order(expressions=[exp.Ordered(this=order.copy())]))
    return w


def _over(
    fn: exp.Expression, partition: list[exp.Expression], order: exp.Expression | None = None
) -> exp.Window:
    w = window(partition, order)
    w.set("this", fn)
    return w


def metric_columns(
    agg: Aggregation, partition: list[exp.Expression]
) -> tuple[list[exp.Expression], exp.Expression]:
    """Window columns computing the aggregation per group, and the condition on them."""
    t = exp.column("event_time")
    cols: list[exp.Expression] = [
        exp.alias_(_over(exp.Count(this=exp.Star()), partition), "match_count"),
        exp.alias_(_over(exp.Min(this=t), partition), "first_seen"),
        exp.alias_(_over(exp.Max(this=t), partition), "last_seen"),
    ]
    fn = agg.function
    if fn == "count":
        value: exp.Expression = exp.column("match_count")
        cols.append(exp.alias_(_over(exp.Count(this=exp.Star()), partition), "agg_value"))
    elif fn in ("distinct", "temporal", "temporal_ordered"):
        col = exp.column("agg_field" if fn == "distinct" else "ref")
        up = _over(exp.Anonymous(this="DENSE_RANK"), partition, col)
        down = exp.Window(
            this=exp.Anonymous(this="DENSE_RANK"),
            partition_by=[p.copy() for p in partition],
            order=exp.Order(expressions=[exp.Ordered(this=col.copy(), desc=True)]),
        )
        cols.append(
            exp.alias_(
                exp.Sub(this=exp.Add(this=up, expression=down), expression=exp.Literal.number(1)),
                "agg_value",
            )
        )
    elif fn == "percentile":
        # value_percentile: the group's p-th percentile of the field against the threshold
        num = exp.TryCast(this=exp.column("agg_field"), to=exp.DataType.build("DOUBLE"))
        q = exp.Literal.number((agg.percentile or 50) / 100.0)
        cols.append(
            exp.alias_(_over(exp.PercentileCont(this=num, expression=q), partition), "agg_value")
        )
    else:
        num = exp.TryCast(this=exp.column("agg_field"), to=exp.DataType.build("DOUBLE"))
        f = {"sum": exp.Sum, "avg": exp.Avg, "min": exp.Min, "max": exp.Max}[fn]
        cols.append(exp.alias_(_over(f(this=num), partition), "agg_value"))
    value = exp.column("agg_value")
    cond: exp.Expression = OPS[agg.op](this=value, expression=exp.Literal.number(agg.threshold))
    if fn == "temporal_ordered" and len(agg.refs) > 1:
        # some event of each rule no later than some event of the next rule
        for i, (a, b) in enumerate(zip(agg.refs, agg.refs[1:], strict=False)):
            first_a = _over(
                exp.Min(
                    this=exp.If(
                        this=exp.EQ(this=exp.column("ref"), expression=exp.Literal.string(a)),
                        true=t.copy(),
                        false=exp.Null(),  # Spark's if() takes exactly three arguments
                    )
                ),
                partition,
            )
            last_b = _over(
                exp.Max(
                    this=exp.If(
                        this=exp.EQ(this=exp.column("ref"), expression=exp.Literal.string(b)),
                        true=t.copy(),
                        false=exp.Null(),  # Spark's if() takes exactly three arguments
                    )
                ),
                partition,
            )
            cols.append(exp.alias_(first_a, f"seq_first_{i}"))
            cols.append(exp.alias_(last_b, f"seq_last_{i}"))
            cond = exp.and_(
                cond,
                exp.LTE(this=exp.column(f"seq_first_{i}"), expression=exp.column(f"seq_last_{i}")),
            )
    return cols, cond


def correlation_aggregation(sigma: object) -> Aggregation:
    """The :class:`Aggregation` of a pySigma correlation rule."""
    from sigma.correlations import SigmaCorrelationCondition, SigmaCorrelationType

    from mantissa.detect.query import UnsupportedRule

    ctype = sigma.type  # type: ignore[attr-defined]
    cond = sigma.condition  # type: ignore[attr-defined]
    fn = {
        SigmaCorrelationType.EVENT_COUNT: "count",
        SigmaCorrelationType.VALUE_COUNT: "distinct",
        SigmaCorrelationType.TEMPORAL: "temporal",
        SigmaCorrelationType.TEMPORAL_ORDERED: "temporal_ordered",
        SigmaCorrelationType.VALUE_SUM: "sum",
        SigmaCorrelationType.VALUE_AVG: "avg",
        SigmaCorrelationType.VALUE_PERCENTILE: "percentile",
        # value_median is the 50th percentile (pySigma >= 0.11 has the type)
        getattr(SigmaCorrelationType, "VALUE_MEDIAN", None): "percentile",
    }.get(ctype)
    if fn is None:
        raise UnsupportedRule(f"correlation type {ctype.name.lower()} is not supported")
    refs = [r.reference for r in sigma.rules or []]  # type: ignore[attr-defined]
    if isinstance(cond, SigmaCorrelationCondition):
        op = SIGMA_OPS[cond.op.name.lower()]
        n = float(cond.count)
        fref = cond.fieldref
        if isinstance(fref, list):
            fref = fref[0] if fref else None
    elif cond is None and fn.startswith("temporal"):
        op, n, fref = ">=", float(len(refs)), None
    else:
        raise UnsupportedRule("extended correlation conditions are not supported")
    return Aggregation(
        function=fn,
        field=fref,
        group_by=list(sigma.group_by or []),  # type: ignore[attr-defined]
        op=op,
        threshold=n,
        timeframe_secs=int(sigma.timespan.seconds) if sigma.timespan else None,  # type: ignore[attr-defined]
        refs=refs,
        percentile=50.0
        if ctype == getattr(SigmaCorrelationType, "VALUE_MEDIAN", None)
        else float(cond.percentile)
        if fn == "percentile" and getattr(cond, "percentile", None) is not None
        else None,
    )
