"""Compiling a rule into the SQL it runs as, one shape for every engine.

Every detection query returns the *evidence rows* of its matches: at most
:data:`EVIDENCE_ROWS` per alert group, each carrying the group's ``match_count``,
``first_seen``, ``last_seen`` and ``agg_value``; the engine turns each group into one alert.

* plain rules on one table are *packed*: one scan computes a 0/1 flag per rule
  (``CASE WHEN <rule> THEN 1 ELSE 0 END``) over the rows any of them matches, and a
  CROSS JOIN with a small rule list fans the matches out per rule; a group is the rule
  plus the matched entity (user, else source IP, else host);
* aggregations and correlation rules: the matching events of each referenced rule
  (``UNION ALL`` across tables), grouped by the group-by fields and time bucket with
  window functions (see :mod:`mantissa.detect.correlation`).

The time window is a predicate on the table's time column that the engines turn into
partition pruning. Tuning exclusions are AND-ed into each rule's predicate.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sigma.correlations import SigmaCorrelationRule
from sigma.exceptions import SigmaError
from sqlglot import exp

from mantissa.detect.backend import Resolved, SqlglotBackend, TableSchema
from mantissa.detect.correlation import (
    EVIDENCE_ROWS,
    OPS,
    Aggregation,
    correlation_aggregation,
    metric_columns,
    window,
)
from mantissa.detect.dialects import EpochSeconds, NotTrue, render
from mantissa.detect.pipelines import array_fields, field_mappings, pipeline_for
from mantissa.errors import MantissaError

if TYPE_CHECKING:
    from mantissa.detect.rules import Rule, RuleIndex

ENTITY_COLUMNS = ("user", "src_ip", "host", "service_name")
HIDDEN_COLUMNS = {"raw", "ingested_at"}


class UnsupportedRule(MantissaError):
    """A valid Sigma rule this engine cannot run (the message says why)."""

    code = "rule_unsupported"
    http_status = 422


@dataclass
class Branch:
    """The matching events of one rule on one table."""

    table: str
    ref: str
    where: exp.Expression
    schema: TableSchema
    groups: list[exp.Expression]
    value: exp.Expression | None = None


@dataclass
class CompiledRule:
    rule: Rule
    branches: list[Branch]
    aggregation: Aggregation | None
    group_names: list[str]
    fields: set[str] = field(default_factory=set)
    unmapped: set[str] = field(default_factory=set)

    @property
    def packable(self) -> bool:
        return self.aggregation is None and len(self.branches) == 1

    @property
    def shares_scan(self) -> bool:
        """Plain rules and single-table aggregations can share one scan with other rules."""
        return self.rule.kind != "correlation" and len(self.branches) == 1

    @property
    def tables(self) -> list[str]:
        return sorted({b.table for b in self.branches})

    def tree(
        self,
        start: dt.datetime | None = None,
        end: dt.datetime | None = None,
        exclusions: dict[str, Exclusion] | None = None,
    ) -> exp.Expression:
        if self.packable:
            return pack_tree([self], start, end, exclusions)
        return aggregate_tree(self, start, end, exclusions)

    def match_tree(self) -> exp.Expression:
        """``SELECT event_id`` of every event matching the rule's detection (no grouping)."""
        selects = [
            exp.select(
                exp.column("event_id", quoted=True), exp.alias_(exp.Literal.string(b.ref), "ref")
            )
            .from_(exp.to_table(b.table, quoted=True))
            .where(b.where.copy())
            for b in self.branches
        ]
        tree: exp.Expression = selects[0]
        for s in selects[1:]:
            tree = exp.union(tree, s, distinct=False)
        return tree

    def sql(
        self,
        dialect: str = "duckdb",
        start: dt.datetime | None = None,
        end: dt.datetime | None = None,
        exclusions: dict[str, Exclusion] | None = None,
        pretty: bool = False,
    ) -> str:
        return render(self.tree(start, end, exclusions), dialect, pretty=pretty)


def time_column(table: str) -> str:
    from mantissa.lake.catalog import tables

    spec = tables().get(table)
    return spec.time_column if spec else "event_time"


def evidence_columns(schema: TableSchema) -> list[str]:
    from mantissa.sources.base import COMMON_COLUMNS

    tcol = time_column(schema.table)
    # the time column comes back once, as ``event_time``; a table whose own ``event_time``
    # is not its time column (metrics, traces) must not return a second one
    skip = {tcol, "event_time", *HIDDEN_COLUMNS}
    common = [c for c in COMMON_COLUMNS if c in schema.columns and c not in skip]
    if common:
        return common
    return [
        c
        for c, t in schema.columns.items()
        if t.kind in ("text", "number", "bool") and c not in skip
    ][:20]


def entity_expr(schema: TableSchema) -> exp.Expression:
    cols = [c for c in ENTITY_COLUMNS if c in schema.columns]
    parts: list[exp.Expression] = [
        exp.cast(exp.column(c, quoted=True), "VARCHAR") for c in cols
    ] + [exp.Literal.string("")]
    return exp.Coalesce(this=parts[0], expressions=parts[1:])


def group_expr(res: Resolved, name: str) -> exp.Expression:
    if res.any is not None:
        raise UnsupportedRule(f"cannot group by {name}: it is inside an array")
    val = res.expr if res.kind == "text" else exp.cast(res.expr, "VARCHAR")
    return exp.Coalesce(this=val, expressions=[exp.Literal.string("")])


def compile_rule(rule: Rule, index: RuleIndex) -> CompiledRule:
    """Compile ``rule`` (a Sigma rule or correlation rule) for ``index``'s configuration."""
    if rule.kind == "correlation":
        return _compile_correlation(rule, index)
    if rule.table is None:
        raise UnsupportedRule(
            "logsource "
            + "/".join(str(v) for v in rule.logsource.values() if v)
            + " maps to no table"
        )
    branch, backend = _branch(rule, index, rule.id)
    agg = rule.aggregation
    names: list[str] = []
    if agg is not None:
        fm = field_mappings(rule.table, index.cfg)
        branch.groups = [group_expr(branch.schema.resolve(fm.get(g, g)), g) for g in agg.group_by]
        names = list(agg.group_by)
        if agg.field:
            res = branch.schema.resolve(fm.get(agg.field, agg.field))
            branch.value = group_expr(res, agg.field)
    return CompiledRule(
        rule, [branch], agg, names, set(backend.fields_used), set(branch.schema.unmapped)
    )


def _branch(rule: Rule, index: RuleIndex, ref: str) -> tuple[Branch, SqlglotBackend]:
    assert rule.table is not None
    schema = TableSchema.for_table(rule.table, array_fields(rule.table, index.cfg))
    backend = SqlglotBackend(schema, pipeline_for(rule.table, index.cfg))
    sig = rule.fresh_sigma()
    if isinstance(sig, SigmaCorrelationRule):
        raise UnsupportedRule("a correlation of correlations is not supported")
    try:
        where = backend.where(sig)
    except SigmaError as exc:
        raise UnsupportedRule(str(exc).split(" (while ")[0]) from None
    return Branch(rule.table, ref, where, schema, [entity_expr(schema)]), backend


def _compile_correlation(rule: Rule, index: RuleIndex) -> CompiledRule:
    sig = rule.sigma
    assert isinstance(sig, SigmaCorrelationRule)
    agg = correlation_aggregation(sig)
    if not rule.references:
        raise UnsupportedRule("the correlation references no known rule")
    branches: list[Branch] = []
    fields: set[str] = set()
    unmapped: set[str] = set()
    order: list[str] = []
    for ref_id in rule.references:
        target = index.get(ref_id)
        if target.table is None:
            raise UnsupportedRule(f"referenced rule {ref_id} maps to no table")
        branch, backend = _branch(target, index, target.id)
        fm = field_mappings(target.table, index.cfg)

        def aliased(name: str, target: Rule = target) -> str:
            alias = sig.aliases.aliases.get(name)
            if alias is not None:
                for ref, fname in alias.mapping.items():
                    if ref.reference in (target.id, target.name):
                        return fname
            return name

        branch.groups = [
            group_expr(branch.schema.resolve(fm.get(aliased(g), aliased(g))), g)
            for g in agg.group_by
        ]
        if agg.field:
            f = aliased(agg.field)
            branch.value = group_expr(branch.schema.resolve(fm.get(f, f)), agg.field)
        branches.append(branch)
        fields |= backend.fields_used
        unmapped |= branch.schema.unmapped
        order.append(target.id)
    agg.refs = order
    return CompiledRule(rule, branches, agg, list(agg.group_by), fields, unmapped)


# -- query trees -------------------------------------------------------------------------
def _ts(v: dt.datetime) -> exp.Expression:
    v = v.astimezone(dt.UTC) if v.tzinfo else v.replace(tzinfo=dt.UTC)
    return exp.cast(exp.Literal.string(v.isoformat()), "TIMESTAMPTZ")


def time_predicate(
    col: str, start: dt.datetime | None, end: dt.datetime | None
) -> list[exp.Expression]:
    """The window as separate top-level conjuncts (the engines derive partition filters
    only from top-level ``AND`` terms, not from a parenthesized group)."""
    preds: list[exp.Expression] = []
    c = exp.column(col, quoted=True)
    if start is not None:
        preds.append(exp.GTE(this=c.copy(), expression=_ts(start)))
    if end is not None:
        preds.append(exp.LT(this=c.copy(), expression=_ts(end)))
    return preds


def _where(window: list[exp.Expression], cond: exp.Expression) -> exp.Expression:
    return exp.and_(*[w.copy() for w in window], cond) if window else cond


Exclusion = Callable[[TableSchema], exp.Expression | None]


def _with_exclusion(
    where: exp.Expression, excl: Exclusion | None, schema: TableSchema
) -> exp.Expression:
    """The rule's predicate minus what tuning (or an earlier run) excludes on this table."""
    base = exp.Paren(this=where.copy())
    node = excl(schema) if excl is not None else None
    return exp.and_(base, NotTrue(this=node)) if node is not None else base


def _flag(pred: exp.Expression) -> exp.Expression:
    return exp.Case(
        ifs=[exp.If(this=pred, true=exp.Literal.number(1))], default=exp.Literal.number(0)
    )


def _cte(select: exp.Expression, name: str) -> exp.CTE:
    return exp.CTE(this=select, alias=exp.TableAlias(this=exp.to_identifier(name)))


def pack_tree(
    rules: list[CompiledRule],
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    exclusions: dict[str, Exclusion] | None = None,
) -> exp.Expression:
    """One scan of one table evaluating several rules (see the module docstring)."""
    if any(r.aggregation is not None for r in rules):
        return _pack_mixed(rules, start, end, exclusions)
    exclusions = exclusions or {}
    first = rules[0].branches[0]
    table, schema = first.table, first.schema
    tcol = time_column(table)
    evcols = evidence_columns(schema)
    extra: list[str] = []
    for r in rules:
        for f in sorted(r.fields):
            col = schema.column(f)
            if (
                col
                and col not in (*evcols, *extra, *HIDDEN_COLUMNS, tcol)
                and schema.columns[col].kind in ("text", "number", "bool")
            ):
                extra.append(col)
    cols = evcols + extra
    preds = [_with_exclusion(r.branches[0].where, exclusions.get(r.rule.id), schema) for r in rules]
    scan = exp.select(
        *[exp.column(c, quoted=True) for c in cols],
        exp.alias_(exp.column(tcol, quoted=True), "event_time"),
        exp.alias_(first.groups[0].copy(), "g0"),
        *[exp.alias_(_flag(p.copy()), f"m{i}") for i, p in enumerate(preds)],
    ).from_(exp.to_table(table, quoted=True))
    tp = time_predicate(tcol, start, end)
    anyp = (
        exp.Paren(this=exp.or_(*[p.copy() for p in preds])) if len(preds) > 1 else preds[0].copy()
    )
    scan = scan.where(_where(tp, anyp))
    ruleset: exp.Expression = exp.select(
        exp.alias_(exp.Literal.string(rules[0].rule.id), "rule_id"),
        exp.alias_(exp.Literal.number(0), "k"),
    )
    for i, r in enumerate(rules[1:], 1):
        ruleset = exp.union(
            ruleset,
            exp.select(
                exp.alias_(exp.Literal.string(r.rule.id), "rule_id"),
                exp.alias_(exp.Literal.number(i), "k"),
            ),
            distinct=False,
        )
    fan = exp.or_(
        *[
            exp.Paren(
                this=exp.and_(
                    exp.EQ(this=exp.column("k", "r"), expression=exp.Literal.number(i)),
                    exp.EQ(this=exp.column(f"m{i}", "scan"), expression=exp.Literal.number(1)),
                )
            )
            for i in range(len(rules))
        ]
    )
    hits = (
        exp.select(
            exp.column("rule_id", "r"),
            exp.alias_(exp.column("rule_id", "r"), "ref"),
            *[exp.column(c, "scan", quoted=True) for c in cols],
            exp.column("event_time", "scan"),
            exp.column("g0", "scan"),
        )
        .from_(exp.to_table("scan"))
        .join(exp.to_table("r"), join_type="CROSS")
        .where(fan)
    )
    partition = [exp.column("rule_id"), exp.column("g0")]
    metrics, _ = metric_columns(Aggregation(), partition)
    return _finish(
        [("scan", scan), ("r", ruleset), ("hits", hits)], metrics, None, partition, evcols
    )


def _case_k(values: list[tuple[int, exp.Expression]], default: exp.Expression) -> exp.Expression:
    if not values:
        return default
    return exp.Case(
        this=exp.column("k", "r"),
        ifs=[exp.If(this=exp.Literal.number(i), true=v) for i, v in values],
        default=default,
    )


def _pack_mixed(
    rules: list[CompiledRule],
    start: dt.datetime | None,
    end: dt.datetime | None,
    exclusions: dict[str, Exclusion] | None,
) -> exp.Expression:
    """Plain rules and aggregations of one table in one scan.

    The scan computes every rule's flag, group values and aggregated field; a CROSS JOIN
    with the rule list fans matches out per rule (group columns, time bucket and field
    picked by ``CASE r.k``); window functions compute each group's count, distinct count,
    sum ...; the final filter applies each rule's own threshold.
    """
    exclusions = exclusions or {}
    first = rules[0].branches[0]
    table, schema = first.table, first.schema
    tcol = time_column(table)
    cols = evidence_columns(schema)
    ngroups = max(len(r.branches[0].groups) for r in rules)
    scan_cols: list[exp.Expression] = [
        *[exp.column(c, quoted=True) for c in cols],
        exp.alias_(exp.column(tcol, quoted=True), "event_time"),
    ]
    preds = []
    for i, r in enumerate(rules):
        b = r.branches[0]
        pred = _with_exclusion(b.where, exclusions.get(r.rule.id), schema)
        agg = r.aggregation
        if agg is not None and agg.function == "distinct" and b.value is not None:
            pred = exp.and_(pred, exp.NEQ(this=b.value.copy(), expression=exp.Literal.string("")))
        preds.append(pred)
        for j, g in enumerate(b.groups):
            scan_cols.append(exp.alias_(g.copy(), f"r{i}_g{j}"))
        if b.value is not None:
            scan_cols.append(exp.alias_(b.value.copy(), f"r{i}_v"))
        scan_cols.append(exp.alias_(_flag(pred.copy()), f"m{i}"))
    tp = time_predicate(tcol, start, end)
    anyp = exp.Paren(this=exp.or_(*[p.copy() for p in preds]))
    scan = exp.select(*scan_cols).from_(exp.to_table(table, quoted=True)).where(_where(tp, anyp))
    ruleset: exp.Expression = exp.select(
        exp.alias_(exp.Literal.string(rules[0].rule.id), "rule_id"),
        exp.alias_(exp.Literal.number(0), "k"),
    )
    for i, r in enumerate(rules[1:], 1):
        ruleset = exp.union(
            ruleset,
            exp.select(
                exp.alias_(exp.Literal.string(r.rule.id), "rule_id"),
                exp.alias_(exp.Literal.number(i), "k"),
            ),
            distinct=False,
        )
    fan = exp.or_(
        *[
            exp.Paren(
                this=exp.and_(
                    exp.EQ(this=exp.column("k", "r"), expression=exp.Literal.number(i)),
                    exp.EQ(this=exp.column(f"m{i}", "scan"), expression=exp.Literal.number(1)),
                )
            )
            for i in range(len(rules))
        ]
    )
    empty = exp.Literal.string("")
    hit_cols: list[exp.Expression] = [
        exp.column("rule_id", "r"),
        exp.alias_(exp.column("rule_id", "r"), "ref"),
        *[exp.column(c, "scan", quoted=True) for c in cols],
        exp.column("event_time", "scan"),
    ]
    for j in range(ngroups):
        vals = [
            (i, exp.column(f"r{i}_g{j}", "scan"))
            for i, r in enumerate(rules)
            if j < len(r.branches[0].groups)
        ]
        hit_cols.append(exp.alias_(_case_k(vals, empty), f"g{j}"))
    buckets = [
        (
            i,
            time_bucket(exp.column("event_time", "scan"), r.aggregation.timeframe_secs),
        )
        for i, r in enumerate(rules)
        if r.aggregation is not None and r.aggregation.timeframe_secs
    ]
    hit_cols.append(exp.alias_(_case_k(buckets, exp.Literal.number(0)), "bucket"))
    fields = [
        (i, exp.column(f"r{i}_v", "scan"))
        for i, r in enumerate(rules)
        if r.branches[0].value is not None
    ]
    hit_cols.append(exp.alias_(_case_k(fields, exp.Null()), "agg_field"))
    hits = (
        exp.select(*hit_cols)
        .from_(exp.to_table("scan"))
        .join(exp.to_table("r"), join_type="CROSS")
        .where(fan)
    )
    partition = [
        exp.column("rule_id"),
        *[exp.column(f"g{j}") for j in range(ngroups)],
        exp.column("bucket"),
    ]
    functions = {r.aggregation.function for r in rules if r.aggregation is not None}
    metrics: list[exp.Expression] = []
    value_of: dict[str, exp.Expression] = {"count": exp.column("match_count")}
    for fn in sorted(functions | {"count"}):
        agg = Aggregation(function=fn)
        cols_fn, _ = metric_columns(agg, partition)
        if fn == "count":
            metrics += cols_fn[:3]
            continue
        metric = cols_fn[-1]
        metric.set("alias", exp.to_identifier(f"agg_{fn}"))
        metrics.append(metric)
        value_of[fn] = exp.column(f"agg_{fn}")
    conds = []
    value_ifs = []
    for r in rules:
        agg = r.aggregation or Aggregation()
        value = value_of[agg.function].copy()
        is_rule = exp.EQ(this=exp.column("rule_id"), expression=exp.Literal.string(r.rule.id))
        threshold = OPS[agg.op](this=value.copy(), expression=exp.Literal.number(agg.threshold))
        conds.append(exp.Paren(this=exp.and_(is_rule, threshold)))
        value_ifs.append(exp.If(this=is_rule.copy(), true=value))
    tree = _finish(
        [("scan", scan), ("r", ruleset), ("hits", hits)],
        metrics,
        exp.Paren(this=exp.or_(*conds)),
        partition,
        cols,
    )
    tree.set(
        "expressions",
        [exp.Star(), exp.alias_(exp.Case(ifs=value_ifs), "agg_value")],
    )
    return tree


def _finish(
    ctes: list[tuple[str, exp.Expression]],
    metrics: list[exp.Expression],
    cond: exp.Expression | None,
    partition: list[exp.Expression],
    evcols: list[str],
) -> exp.Expression:
    rn = window(partition, exp.column("event_time"))
    rn.set("this", exp.Anonymous(this="ROW_NUMBER"))
    # Events at the same instant: order them by their id too, so that every engine keeps
    # the same evidence rows (rn <= EVIDENCE_ROWS) and numbers them alike.
    tie = next((c for c in ("event_id", "span_id") if c in evcols), None)
    if tie is not None:
        rn.args["order"].append(
            "expressions", exp.Ordered(this=exp.column(tie, quoted=True), nulls_first=False)
        )
    ev = exp.select(
        exp.Column(this=exp.Star(), table=exp.to_identifier("hits")), *metrics, exp.alias_(rn, "rn")
    ).from_(exp.to_table("hits"))
    where = exp.LTE(this=exp.column("rn"), expression=exp.Literal.number(EVIDENCE_ROWS))
    final = exp.select(exp.Star()).from_(exp.to_table("ev"))
    final = final.where(exp.and_(where, cond) if cond is not None else where)
    final = final.order_by(*[p.copy() for p in partition], exp.column("rn"))
    with_ = exp.With(expressions=[_cte(q, n) for n, q in [*ctes, ("ev", ev)]])
    final.set("with_", with_) if "with_" in exp.Select.arg_types else final.set("with", with_)
    return final


def aggregate_tree(
    compiled: CompiledRule,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    exclusions: dict[str, Exclusion] | None = None,
) -> exp.Expression:
    """Matching events of every branch, grouped and thresholded with window functions."""
    agg = compiled.aggregation or Aggregation()
    exclusions = exclusions or {}
    evsets = [evidence_columns(b.schema) for b in compiled.branches]
    evcols = [c for c in evsets[0] if all(c in s for s in evsets[1:])]
    selects = []
    for b in compiled.branches:
        tcol = time_column(b.table)
        cols: list[exp.Expression] = [
            exp.alias_(exp.Literal.string(compiled.rule.id), "rule_id"),
            exp.alias_(exp.Literal.string(b.ref), "ref"),
            *[exp.column(c, quoted=True) for c in evcols],
            exp.alias_(exp.column(tcol, quoted=True), "event_time"),
        ]
        for i, g in enumerate(b.groups):
            cols.append(exp.alias_(g.copy(), f"g{i}"))
        if agg.timeframe_secs:
            cols.append(
                exp.alias_(time_bucket(exp.column(tcol, quoted=True), agg.timeframe_secs), "bucket")
            )
        if b.value is not None:
            cols.append(exp.alias_(b.value.copy(), "agg_field"))
        where = _with_exclusion(b.where, exclusions.get(compiled.rule.id), b.schema)
        if b.value is not None and agg.function == "distinct":
            where = exp.and_(where, exp.NEQ(this=b.value.copy(), expression=exp.Literal.string("")))
        tp = time_predicate(tcol, start, end)
        sel = exp.select(*cols).from_(exp.to_table(b.table, quoted=True))
        selects.append(sel.where(_where(tp, where)))
    hits: exp.Expression = selects[0]
    for s in selects[1:]:
        hits = exp.union(hits, s, distinct=False)
    partition = [exp.column("rule_id")] + [
        exp.column(f"g{i}") for i in range(len(compiled.group_names))
    ]
    if agg.timeframe_secs:
        partition.append(exp.column("bucket"))
    metrics, cond = metric_columns(agg, partition)
    return _finish([("hits", hits)], metrics, cond, partition, evcols)


def time_bucket(column: exp.Expression, secs: int) -> exp.Expression:
    """The aggregation window a timestamp falls in, as a BIGINT on every engine.

    ``floor()`` is DOUBLE in DuckDB and BIGINT in Spark; the cast gives one result model.
    """
    epoch = EpochSeconds(this=column)
    floor = exp.Floor(this=exp.Div(this=epoch, expression=exp.Literal.number(secs)))
    return exp.cast(floor, exp.DataType.build("BIGINT"))


def pack(rules: list[CompiledRule]) -> list[list[CompiledRule]]:
    """Group rules by table (several rules per scan); correlations run alone."""
    by_table: dict[str, list[CompiledRule]] = {}
    alone: list[list[CompiledRule]] = []
    for r in rules:
        if r.shares_scan:
            by_table.setdefault(r.branches[0].table, []).append(r)
        else:
            alone.append([r])
    return [*by_table.values(), *alone]


def unit_tree(
    unit: list[CompiledRule],
    start: dt.datetime | None,
    end: dt.datetime | None,
    exclusions: dict[str, Exclusion] | None = None,
) -> exp.Expression:
    if len(unit) == 1:
        return unit[0].tree(start, end, exclusions)
    return pack_tree(unit, start, end, exclusions)


def describe(compiled: CompiledRule) -> dict[str, Any]:
    return {
        "tables": compiled.tables,
        "aggregation": compiled.aggregation.describe() if compiled.aggregation else None,
        "fields": sorted(compiled.fields),
        "raw_fallback_fields": sorted(compiled.unmapped),
    }
