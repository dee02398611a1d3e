"""A :class:`QueryPlan` → a sqlglot AST → SQL in one of five dialects.

Dialects: ``duckdb`` (the embedded engine), ``athena`` (Trino), ``bigquery``,
``synapse`` (T-SQL) and ``spark``. Case-insensitive matching is ``LOWER(col)`` against
lower-cased literals everywhere; time bounds are literal UTC timestamps cast to each
dialect's zoned timestamp type (so engines prune partitions); percentiles differ per
dialect (DuckDB ``quantile_cont``, Trino ``approx_percentile``, BigQuery
``APPROX_QUANTILES``, Spark ``percentile_approx``, T-SQL ``APPROX_PERCENTILE_CONT ...
WITHIN GROUP``); CIDR blocks become string-prefix matches, which every dialect runs.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from typing import Any

from sqlglot import exp

from mantissa.ask.plan import APM_INTENTS, Filter, QueryPlan

DIALECTS = {
    "duckdb": "duckdb",
    "athena": "trino",
    "trino": "trino",
    "bigquery": "bigquery",
    "synapse": "tsql",
    "tsql": "tsql",
    "spark": "spark",
}
MAX_CIDR_PATTERNS = 256


def sqlglot_dialect(dialect: str) -> str:
    from mantissa.errors import QueryError

    try:
        return DIALECTS[dialect.lower()]
    except KeyError:
        raise QueryError(
            f"unknown dialect {dialect!r}", hint="one of: duckdb, athena, bigquery, synapse, spark"
        ) from None


def col(name: str) -> exp.Expression:
    """A column, struct path (``a.b``) or JSON path (``col$.path``) as an expression."""
    if "$" in name:
        base, path = name.split("$", 1)
        return exp.JSONExtractScalar(this=col(base), expression=exp.Literal.string("$" + path))
    parts = name.split(".")
    node: exp.Expression = exp.column(parts[0], quoted=True)
    for p in parts[1:]:
        node = exp.Dot(this=node, expression=exp.to_identifier(p, quoted=True))
    return node


def ts(t: dt.datetime) -> exp.Expression:
    text = t.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S") + "+00:00"
    return exp.Cast(this=exp.Literal.string(text), to=exp.DataType.build("TIMESTAMPTZ"))


def _lit(v: Any) -> exp.Expression:
    if isinstance(v, bool):
        return exp.Boolean(this=v)
    if isinstance(v, int | float):
        return exp.Literal.number(v)
    return exp.Literal.string(str(v).lower())


def _lower(e: exp.Expression) -> exp.Expression:
    return exp.Lower(this=exp.Cast(this=e, to=exp.DataType.build("VARCHAR")))


def _escape_like(v: str) -> str:
    return v.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def cidr_patterns(cidr: str) -> list[str]:
    """LIKE patterns that match exactly the addresses of an IPv4 block (prefix strings)."""
    net = ipaddress.ip_network(cidr, strict=False)
    if net.version != 4:
        # IPv6: textual prefixes are only exact on 16-bit boundaries of the full form
        hextets = net.prefixlen // 16
        full = net.network_address.exploded.split(":")
        prefix = ":".join(h.lstrip("0") or "0" for h in full[:hextets])
        return [f"{prefix}:%"] if hextets else ["%:%"]
    octs = str(net.network_address).split(".")
    whole = net.prefixlen // 8
    if net.prefixlen == 32:
        return [str(net.network_address)]
    if net.prefixlen % 8 == 0:
        return [(".".join(octs[:whole]) + ".%") if whole else "%.%.%.%"]
    span = 2 ** (8 - net.prefixlen % 8)
    base = int(octs[whole])
    head = ".".join(octs[:whole])
    pats = []
    for v in range(base, base + span):
        stem = f"{head}.{v}" if head else str(v)
        pats.append(stem if whole == 3 else stem + ".%")
    return pats[:MAX_CIDR_PATTERNS]


def filter_expr(f: Filter, qualifier: str | None = None) -> exp.Expression:
    c = col(f.column)
    if qualifier:
        inner = c if isinstance(c, exp.Column) else next(c.find_all(exp.Column), None)
        if inner is not None:
            inner.set("table", exp.to_identifier(qualifier))
    v = f.value
    node: exp.Expression
    if f.op in ("is_null", "not_null"):
        node = exp.Is(this=c, expression=exp.Null())
        if f.op == "not_null":
            node = exp.Not(this=node)
    elif f.op in ("cidr", "not_cidr"):
        pats = cidr_patterns(str(v))
        likes = [
            exp.Like(
                this=exp.Cast(this=c, to=exp.DataType.build("VARCHAR")),
                expression=exp.Literal.string(p),
            )
            if "%" in p
            else exp.EQ(
                this=exp.Cast(this=c, to=exp.DataType.build("VARCHAR")),
                expression=exp.Literal.string(p),
            )
            for p in pats
        ]
        node = exp.Paren(this=exp.or_(*likes)) if len(likes) > 1 else likes[0]
        if f.op == "not_cidr":
            node = exp.Not(this=node)
    elif f.op in ("in", "not_in"):
        vals = v if isinstance(v, list) else [v]
        target = _lower(c) if any(isinstance(x, str) for x in vals) else c
        node = exp.In(this=target, expressions=[_lit(x) for x in vals])
        if f.op == "not_in":
            node = exp.Not(this=node)
    elif f.op == "contains":
        node = exp.Like(
            this=_lower(c), expression=exp.Literal.string(f"%{_escape_like(str(v).lower())}%")
        )
    elif f.op == "starts_with":
        node = exp.Like(
            this=_lower(c), expression=exp.Literal.string(f"{_escape_like(str(v).lower())}%")
        )
    else:
        target = _lower(c) if isinstance(v, str) else c
        cls = {
            "eq": exp.EQ, "ne": exp.NEQ, "gt": exp.GT, "gte": exp.GTE, "lt": exp.LT, "lte": exp.LTE,
        }[f.op]  # fmt: skip
        node = cls(this=target, expression=_lit(v))
    if f.source:
        node = exp.and_(
            exp.EQ(this=exp.column("source", quoted=True), expression=exp.Literal.string(f.source)),
            node,
        )
        node = exp.Paren(this=node)
    return node


def where_expr(plan: QueryPlan, *extra: exp.Expression) -> exp.Expression:
    """Time window AND every filter (filters sharing a ``group`` are OR-ed), flat so that
    the time bounds stay top-level conjuncts (partition pruning reads them there)."""
    lo = plan.time_range.start
    hi = plan.time_range.end
    if plan.compare_to is not None:
        lo = min(lo, plan.compare_to.start)
        hi = max(hi, plan.compare_to.end)
    parts: list[exp.Expression] = [
        exp.GTE(this=col(plan.time_column), expression=ts(lo)),
        exp.LT(this=col(plan.time_column), expression=ts(hi)),
    ]
    groups: dict[str, list[exp.Expression]] = {}
    for f in plan.filters:
        e = filter_expr(f)
        if f.group:
            groups.setdefault(f.group, []).append(e)
        else:
            parts.append(e)
    for members in groups.values():
        parts.append(exp.Paren(this=exp.or_(*members)) if len(members) > 1 else members[0])
    parts.extend(extra)
    return exp.and_(*parts)


def _percentile(column: str, q: float, dialect: str) -> exp.Expression:
    c = col(column)
    if dialect == "duckdb":
        return exp.Anonymous(this="quantile_cont", expressions=[c, exp.Literal.number(q)])
    if dialect == "tsql":
        # Synapse/SQL Server: PERCENTILE_CONT is a window function only; the aggregate
        # form is APPROX_PERCENTILE_CONT(q) WITHIN GROUP (ORDER BY col).
        return exp.WithinGroup(
            this=exp.Anonymous(this="APPROX_PERCENTILE_CONT", expressions=[exp.Literal.number(q)]),
            expression=exp.Order(expressions=[exp.Ordered(this=c)]),
        )
    return exp.ApproxQuantile(this=c, quantile=exp.Literal.number(q))


def _bucket(plan: QueryPlan) -> exp.Expression:
    return exp.TimestampTrunc(
        this=col(plan.time_column), unit=exp.var((plan.bucket or "hour").upper())
    )


def _q(name: str, alias: str) -> exp.Column:
    return exp.column(name, table=alias, quoted=True)


def _window(plan: QueryPlan, alias: str) -> list[exp.Expression]:
    c = _q(plan.time_column, alias)
    return [
        exp.GTE(this=c, expression=ts(plan.time_range.start)),
        exp.LT(this=c.copy(), expression=ts(plan.time_range.end)),
    ]


def _where(parts: list[exp.Expression], plan: QueryPlan, qualifier: Any) -> list[exp.Expression]:
    """``parts`` AND the plan's filters (grouped filters OR-ed), each qualified by
    ``qualifier(filter)`` (a table alias)."""
    groups: dict[str, list[exp.Expression]] = {}
    for f in plan.filters:
        e = filter_expr(f, qualifier(f))
        if f.group:
            groups.setdefault(f.group, []).append(e)
        else:
            parts.append(e)
    for members in groups.values():
        parts.append(exp.Paren(this=exp.or_(*members)) if len(members) > 1 else members[0])
    return parts


def _is_error(e: exp.Expression) -> exp.Expression:
    return exp.Sum(
        this=exp.Case(
            ifs=[
                exp.If(
                    this=exp.EQ(this=e, expression=exp.Literal.string("ERROR")),
                    true=exp.Literal.number(1),
                )
            ],
            default=exp.Literal.number(0),
        )
    )


def _latency(e: exp.Expression, dialect: str, qs: tuple[float, ...]) -> list[exp.Expression]:
    out: list[exp.Expression] = []
    for q in qs:
        pct = _percentile("__x__", q, dialect)
        for node in list(pct.find_all(exp.Column)):
            if node.name == "__x__":
                node.replace(e.copy())
        out.append(exp.alias_(pct, f"p{round(q * 100):g}_ms", quoted=False))
    out.append(exp.alias_(exp.Avg(this=e.copy()), "avg_ms", quoted=False))
    return out


def _apm_ast(plan: QueryPlan, dialect: str) -> exp.Select:
    """SQL for the APM intents (over ``traces``; see :data:`mantissa.ask.plan.APM_INTENTS`).

    * ``callers`` / ``callees``: parent → child span pairs of one trace whose services
      differ, both spans in the window (the service map's edge definition); counts,
      errors and latency are the callee's span.
    * ``slow``: a service's dependencies — the services its spans call, and what its
      CLIENT/PRODUCER spans reach without an instrumented callee (``db.system``,
      ``messaging.system``, ``peer.service``, named as on the service map) — ordered by
      p99 latency: where the service waits.
    * ``traces``: matching spans rolled up to one row per trace, newest first.
    """
    table = plan.table
    if plan.intent == "traces":
        start = exp.Min(this=col(plan.time_column))
        sel = (
            exp.select(
                col("trace_id"),
                exp.alias_(start, plan.time_column, quoted=True),
                exp.alias_(exp.Count(this=exp.Star()), "spans", quoted=False),
                exp.alias_(_is_error(col("status_code")), "errors", quoted=False),
                exp.alias_(exp.Max(this=col("duration_ms")), "max_duration_ms", quoted=False),
                exp.alias_(
                    exp.Count(this=exp.Distinct(expressions=[col("service_name")])),
                    "services",
                    quoted=False,
                ),
            )
            .from_(table)
            .where(where_expr(plan))
            .group_by(col("trace_id"))
            .order_by(exp.Ordered(this=start.copy(), desc=True))
            .order_by(exp.Ordered(this=col("trace_id"), desc=False))
        )
        return sel.limit(plan.limit)
    if plan.intent in ("callers", "callees"):
        key, alias = ("p", "caller") if plan.intent == "callers" else ("c", "callee")

        def side(f: Filter) -> str:
            # the named service is the callee of "who calls X", the caller of "what does
            # X call"; every other filter describes the call (the callee's span)
            if plan.intent == "callees" and f.column == "service_name":
                return "p"
            return "c"

        parts = _window(plan, "c") + _window(plan, "p")
        parts.append(exp.NEQ(this=_q("service_name", "p"), expression=_q("service_name", "c")))
        on = exp.and_(
            exp.EQ(this=_q("trace_id", "c"), expression=_q("trace_id", "p")),
            exp.EQ(this=_q("parent_span_id", "c"), expression=_q("span_id", "p")),
        )
        dur = _q("duration_ms", "c")
        sel = (
            exp.select(
                exp.alias_(_q("service_name", key), alias, quoted=False),
                exp.alias_(exp.Count(this=exp.Star()), "calls", quoted=False),
                exp.alias_(_is_error(_q("status_code", "c")), "errors", quoted=False),
                *_latency(dur, dialect, (0.99,)),
            )
            .from_(exp.alias_(exp.to_table(table), "c", table=True))
            .join(exp.alias_(exp.to_table(table), "p", table=True), on=on, join_type="inner")
            .where(exp.and_(*_where(parts, plan, side)))
            .group_by(_q("service_name", key))
            .order_by(exp.Ordered(this=exp.column("calls"), desc=True))
            .order_by(exp.Ordered(this=exp.column(alias), desc=False))
        )
        return sel.limit(plan.limit)
    if plan.intent == "slow":
        s = lambda n: _q(n, "s")  # noqa: E731
        virtual = exp.Case(
            ifs=[
                exp.If(this=exp.Not(this=exp.Is(this=s("peer.service"), expression=exp.Null())),
                       true=s("peer.service")),
                exp.If(this=exp.Not(this=exp.Is(this=s("db.system"), expression=exp.Null())),
                       true=exp.Case(
                           ifs=[exp.If(this=exp.Is(this=s("db.namespace"), expression=exp.Null()),
                                       true=s("db.system"))],
                           default=exp.Concat(expressions=[
                               s("db.system"), exp.Literal.string("/"), s("db.namespace")]),
                       )),
            ],
            default=exp.Case(
                ifs=[exp.If(this=exp.Is(this=s("messaging.destination.name"), expression=exp.Null()),
                            true=s("messaging.system"))],
                default=exp.Concat(expressions=[
                    s("messaging.system"), exp.Literal.string("/"), s("messaging.destination.name")]),
            ),
        )  # fmt: skip
        dep = exp.Coalesce(this=_q("service_name", "c"), expressions=[virtual])
        callee = (
            exp.select(
                col("trace_id"), col("parent_span_id"), col("service_name"),
                col("status_code"), col("duration_ms"),
            )
            .from_(table)
            .where(exp.and_(
                exp.GTE(this=col(plan.time_column), expression=ts(plan.time_range.start)),
                exp.LT(this=col(plan.time_column), expression=ts(plan.time_range.end)),
            ))
        )  # fmt: skip
        on = exp.and_(
            exp.EQ(this=_q("trace_id", "c"), expression=s("trace_id")),
            exp.EQ(this=_q("parent_span_id", "c"), expression=s("span_id")),
            exp.NEQ(this=_q("service_name", "c"), expression=s("service_name")),
        )
        reach = exp.or_(
            exp.Not(this=exp.Is(this=_q("service_name", "c"), expression=exp.Null())),
            exp.and_(
                exp.In(this=s("kind"), expressions=[exp.Literal.string("CLIENT"),
                                                   exp.Literal.string("PRODUCER")]),
                exp.Paren(this=exp.or_(*[
                    exp.Not(this=exp.Is(this=s(n), expression=exp.Null()))
                    for n in ("db.system", "messaging.system", "peer.service")
                ])),
            ),
        )  # fmt: skip
        parts = [*_window(plan, "s"), exp.Paren(this=reach)]
        dur = exp.Coalesce(this=_q("duration_ms", "c"), expressions=[s("duration_ms")])
        status = exp.Coalesce(this=_q("status_code", "c"), expressions=[s("status_code")])
        sel = (
            exp.select(
                exp.alias_(dep, "dependency", quoted=False),
                exp.alias_(exp.Count(this=exp.Star()), "calls", quoted=False),
                exp.alias_(_is_error(status), "errors", quoted=False),
                *_latency(dur, dialect, (0.5, 0.99)),
                exp.alias_(exp.Max(this=dur.copy()), "max_ms", quoted=False),
            )
            .from_(exp.alias_(exp.to_table(table), "s", table=True))
            .join(exp.alias_(exp.Subquery(this=callee), "c", table=True), on=on, join_type="left")
            .where(exp.and_(*_where(parts, plan, lambda f: "s")))
            .group_by(dep.copy())
            .order_by(exp.Ordered(this=exp.column("p99_ms"), desc=True))
            .order_by(exp.Ordered(this=exp.column("dependency"), desc=False))
        )
        return sel.limit(plan.limit)
    raise ValueError(f"not an APM intent: {plan.intent}")


def to_ast(plan: QueryPlan, dialect: str = "duckdb") -> exp.Select:
    """The plan as a sqlglot SELECT (``dialect`` is a sqlglot dialect name)."""
    if plan.intent in APM_INTENTS:
        return _apm_ast(plan, dialect)
    where = where_expr(plan)
    table = exp.to_table(plan.table)
    count = exp.alias_(exp.Count(this=exp.Star()), "count", quoted=False)
    if plan.intent == "compare" and plan.compare_to is not None:
        cur = plan.time_range
        in_cur = exp.and_(
            exp.GTE(this=col(plan.time_column), expression=ts(cur.start)),
            exp.LT(this=col(plan.time_column), expression=ts(cur.end)),
        )
        in_prev = exp.and_(
            exp.GTE(this=col(plan.time_column), expression=ts(plan.compare_to.start)),
            exp.LT(this=col(plan.time_column), expression=ts(plan.compare_to.end)),
        )
        window = exp.Case(
            ifs=[exp.If(this=in_cur, true=exp.Literal.string("current"))],
            default=exp.Literal.string("previous"),
        )
        where = where_expr(
            plan, exp.Paren(this=exp.or_(exp.Paren(this=in_cur), exp.Paren(this=in_prev)))
        )
        return (
            exp.select(exp.alias_(window, "time_window"), count)
            .from_(table)
            .where(where)
            .group_by(window)
            .order_by(exp.Ordered(this=exp.column("time_window"), desc=False))
        )
    if plan.intent in ("search", "last_seen", "first_seen"):
        cols = [col(c) for c in plan.columns] or [exp.Star()]
        sel = exp.select(*cols).from_(table).where(where)
        for o in plan.order:
            sel = sel.order_by(exp.Ordered(this=col(o.by), desc=o.desc))
        return sel.limit(plan.limit)
    # aggregates: count / count_distinct / percentile / breakdown / top_k
    m = plan.metric
    if m.func == "percentile" and m.column:
        agg: exp.Expression = exp.alias_(
            _percentile(m.column, m.q or 0.5, dialect),
            f"p{round((m.q or 0.5) * 100):g}_{m.column.replace('.', '_')}",
        )
        extra = [count]
    elif m.func == "count_distinct" and m.column:
        agg = exp.alias_(
            exp.Count(this=exp.Distinct(expressions=[col(m.column)])), f"distinct_{m.column}"
        )
        extra = []
    elif m.func in ("avg", "max", "min", "sum") and m.column:
        fn = {"avg": exp.Avg, "max": exp.Max, "min": exp.Min, "sum": exp.Sum}[m.func]
        agg = exp.alias_(fn(this=col(m.column)), f"{m.func}_{m.column}")
        extra = [count]
    else:
        agg = count
        extra = []
    keys: list[exp.Expression] = []
    if plan.bucket:
        keys.append(exp.alias_(_bucket(plan), plan.bucket))
    for g in plan.group_by:
        alias = g.replace("$.", "_").replace(".", "_").replace("$", "_")
        keys.append(exp.alias_(col(g), alias, quoted=True) if alias != g else col(g))
    sel = exp.select(*keys, agg, *extra).from_(table).where(where)
    if keys:
        sel = sel.group_by(*[k.this if isinstance(k, exp.Alias) else k for k in keys])
        if plan.bucket:
            sel = sel.order_by(exp.Ordered(this=exp.column(plan.bucket), desc=False))
        for o in plan.order:
            name = "count" if o.by == "count" else o.by
            sel = sel.order_by(exp.Ordered(this=exp.column(name), desc=o.desc))
        # ties broken by the key so results are deterministic
        for k in keys:
            sel = sel.order_by(
                exp.Ordered(this=k.this if isinstance(k, exp.Alias) else k, desc=False)
            )
        sel = sel.limit(plan.limit)
    return sel


def render(plan: QueryPlan, dialect: str = "duckdb") -> str:
    """SQL text for ``dialect`` (duckdb, athena, bigquery, synapse, spark)."""
    d = sqlglot_dialect(dialect)
    return to_ast(plan, d).sql(dialect=d)
