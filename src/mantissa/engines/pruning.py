"""Partition pruning: time bounds on ``event_time`` → predicates on the hive columns.

DuckDB (and Athena, Spark) skip whole files only for filters on partition columns,
so a query that says ``event_time >= '2026-11-28 10:00'`` gets an extra
``(year, month, day, hour) >= (2026, 11, 28, 10)`` written out as ORs of ANDs, which
every engine prunes on. The original predicate stays, so results are unchanged.
"""

from __future__ import annotations

import datetime as dt
import re

from sqlglot import exp

from mantissa.lake.writer import PARTITION_COLUMNS

TIME_COLUMNS = {"event_time", "start_time", "timestamp"}
_INTERVAL = re.compile(r"^\s*(\d+)\s*(second|minute|hour|day|week|month)s?\s*$", re.I)


def _literal_time(node: exp.Expression, now: dt.datetime) -> dt.datetime | None:
    """Evaluate a constant timestamp expression, or None if it is not constant."""
    if isinstance(node, exp.Paren):
        return _literal_time(node.this, now)
    if isinstance(node, exp.Cast | exp.TryCast):
        return _literal_time(node.this, now)
    if isinstance(node, exp.Literal) and node.is_string:
        return _parse_ts(node.this)
    if isinstance(node, exp.CurrentTimestamp) or (
        isinstance(node, exp.Anonymous) and node.name.lower() in ("now", "current_timestamp")
    ):
        return now
    if isinstance(node, exp.Sub | exp.Add):
        base = _literal_time(node.this, now)
        delta = _interval(node.expression)
        if base is None or delta is None:
            return None
        return base - delta if isinstance(node, exp.Sub) else base + delta
    if isinstance(node, exp.DateSub | exp.DateAdd):
        return None
    return None


def _interval(node: exp.Expression) -> dt.timedelta | None:
    if not isinstance(node, exp.Interval):
        return None
    value = node.this
    unit = node.unit.name if node.unit is not None else ""
    text = f"{value.this if isinstance(value, exp.Literal) else ''} {unit}".strip()
    m = _INTERVAL.match(text) or (
        _INTERVAL.match(value.this) if isinstance(value, exp.Literal) and value.is_string else None
    )
    if not m:
        return None
    n, u = int(m.group(1)), m.group(2).lower()
    return {
        "second": dt.timedelta(seconds=n),
        "minute": dt.timedelta(minutes=n),
        "hour": dt.timedelta(hours=n),
        "day": dt.timedelta(days=n),
        "week": dt.timedelta(weeks=n),
        "month": dt.timedelta(days=31 * n),
    }[u]


def _parse_ts(text: str) -> dt.datetime | None:
    t = text.strip().replace(" UTC", "+00:00")
    if t.endswith("Z"):
        t = t[:-1] + "+00:00"
    try:
        v = dt.datetime.fromisoformat(t)
    except ValueError:
        return None
    return v if v.tzinfo else v.replace(tzinfo=dt.UTC)


def time_bounds(
    where: exp.Expression | None,
    now: dt.datetime,
    qualifier: str | None = None,
    columns: set[str] | frozenset[str] | None = None,
) -> tuple[dt.datetime | None, dt.datetime | None]:
    """Lower and upper bound of the time column from the top-level AND of ``where``
    (time columns: :data:`TIME_COLUMNS`, or ``columns``, e.g. a table's own)."""
    names = {c.lower() for c in columns} if columns is not None else TIME_COLUMNS
    lo: dt.datetime | None = None
    hi: dt.datetime | None = None
    if where is None:
        return lo, hi
    cond = where.this if isinstance(where, exp.Where) else where
    conjuncts = list(cond.flatten()) if isinstance(cond, exp.And) else [cond]

    def is_time_col(e: exp.Expression) -> bool:
        return (
            isinstance(e, exp.Column)
            and e.name.lower() in names
            and (qualifier is None or not e.table or e.table.lower() == qualifier)
        )

    for c in conjuncts:
        while isinstance(c, exp.Paren):
            c = c.this
        if isinstance(c, exp.Between) and is_time_col(c.this):
            a = _literal_time(c.args["low"], now)
            b = _literal_time(c.args["high"], now)
            lo = max(lo, a) if lo and a else (a or lo)
            hi = min(hi, b) if hi and b else (b or hi)
            continue
        if not isinstance(c, exp.GT | exp.GTE | exp.LT | exp.LTE | exp.EQ):
            continue
        left, right = c.this, c.expression
        op = type(c)
        if is_time_col(right) and not is_time_col(left):
            left, right = right, left
            op = {
                exp.GT: exp.LT,
                exp.GTE: exp.LTE,
                exp.LT: exp.GT,
                exp.LTE: exp.GTE,
                exp.EQ: exp.EQ,
            }[op]
        if not is_time_col(left):
            continue
        v = _literal_time(right, now)
        if v is None:
            continue
        if op in (exp.GT, exp.GTE, exp.EQ):
            lo = max(lo, v) if lo else v
        if op in (exp.LT, exp.LTE, exp.EQ):
            hi = min(hi, v) if hi else v
    return lo, hi


def _lex(parts: tuple[int, ...], ge: bool, qual: str | None) -> str:
    """SQL for (year, month, day, hour) >= parts (ge) or <= parts, as ORs of ANDs."""
    cols = [f"{qual}.{c}" if qual else c for c in PARTITION_COLUMNS]
    strict = ">" if ge else "<"
    terms = []
    for i in range(len(parts)):
        eqs = [f"{cols[j]} = {parts[j]}" for j in range(i)]
        last = f"{cols[i]} {strict}{'=' if i == len(parts) - 1 else ''} {parts[i]}"
        terms.append("(" + " AND ".join([*eqs, last]) + ")")
    return "(" + " OR ".join(terms) + ")"


def partition_predicate(
    lo: dt.datetime | None, hi: dt.datetime | None, qual: str | None = None
) -> str | None:
    preds = []
    if lo is not None:
        lo = lo.astimezone(dt.UTC)
        preds.append(_lex((lo.year, lo.month, lo.day, lo.hour), True, qual))
    if hi is not None:
        hi = hi.astimezone(dt.UTC)
        preds.append(_lex((hi.year, hi.month, hi.day, hi.hour), False, qual))
    return " AND ".join(preds) if preds else None


def hours_in_range(
    lo: dt.datetime | None, hi: dt.datetime | None, part: tuple[int, int, int, int]
) -> bool:
    """Whether the hour partition ``part`` may hold rows between ``lo`` and ``hi``."""
    if lo is not None:
        lo = lo.astimezone(dt.UTC)
        if part < (lo.year, lo.month, lo.day, lo.hour):
            return False
    if hi is not None:
        hi = hi.astimezone(dt.UTC)
        if part > (hi.year, hi.month, hi.day, hi.hour):
            return False
    return True


def add_partition_filters(
    tree: exp.Expression, partitioned: set[str], now: dt.datetime | None = None
) -> exp.Expression:
    """AND a partition predicate into every SELECT over a partitioned table with time bounds."""
    now = now or dt.datetime.now(dt.UTC)
    for select in list(tree.find_all(exp.Select)):
        where = select.args.get("where")
        if where is None:
            continue
        sources = []
        from_ = select.args.get("from_") or select.args.get("from")
        if from_ is not None:
            sources.append(from_.this)
        for join in select.args.get("joins") or []:
            sources.append(join.this)
        for src in sources:
            if not isinstance(src, exp.Table) or src.name.lower() not in partitioned:
                continue
            qual = src.alias_or_name if (len(sources) > 1 or src.alias) else None
            lo, hi = time_bounds(
                where, now, qualifier=qual.lower() if qual and len(sources) > 1 else None
            )
            pred = partition_predicate(lo, hi, qual)
            if pred:
                select.where(pred, append=True, copy=False, dialect="duckdb")
    return tree


def bounds_for_table(
    tree: exp.Expression, table: str, now: dt.datetime | None = None
) -> tuple[dt.datetime | None, dt.datetime | None]:
    """The widest time bounds under which ``table`` is read in ``tree`` (for cost estimates)."""
    now = now or dt.datetime.now(dt.UTC)
    found: list[tuple[dt.datetime | None, dt.datetime | None]] = []
    for select in tree.find_all(exp.Select):
        from_ = select.args.get("from_") or select.args.get("from")
        tables = [
            t for t in ([from_.this] if from_ is not None else []) if isinstance(t, exp.Table)
        ]
        tables += [j.this for j in select.args.get("joins") or [] if isinstance(j.this, exp.Table)]
        if any(t.name.lower() == table for t in tables):
            found.append(time_bounds(select.args.get("where"), now))
    if not found:
        return None, None
    los = [b[0] for b in found]
    his = [b[1] for b in found]
    lo = None if any(x is None for x in los) else min(x for x in los if x)
    hi = None if any(x is None for x in his) else max(x for x in his if x)
    return lo, hi
