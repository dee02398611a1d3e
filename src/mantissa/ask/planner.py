"""The rules tier: an :class:`Understanding` mapped onto tables and columns → a plan.

Table choice: every signal in the question (a named source or provider, a concept, an
event type, a service, a native column) narrows the candidate tables to those that can
answer it; one table is queried directly, several through the cross-source ``events``
view with per-source predicates. A question nothing maps to — or a constraint no
table can carry — is declined with what was understood, never answered from a guess.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from mantissa.ask.lexicon import Lexicon
from mantissa.ask.plan import Filter, Metric, Order, QueryPlan
from mantissa.ask.timerange import TimeRange, default_range
from mantissa.ask.understand import Understanding
from mantissa.lake.catalog import EVENTS_VIEW

SEARCH_COLUMNS = [
    "event_time", "source", "event_type", "outcome", "user", "src_ip", "dst_ip",
    "geo_country", "host", "message", "event_id",
]  # fmt: skip
SEEN_LOOKBACK = dt.timedelta(days=90)
DEFAULT_K = 10


@dataclass
class Unmapped:
    """Why a question could not be mapped, with what was understood and a suggestion."""

    reason: str
    understood: list[str] = field(default_factory=list)
    suggestions: list[str] = field(default_factory=list)


def _provider_tables(lex: Lexicon, names: list[str]) -> set[str]:
    with_data = {t.name for t in lex.with_data()}
    hit = set(names) & with_data
    return hit or set(names)


def plan_question(
    u: Understanding, lex: Lexicon, now: dt.datetime | None = None
) -> QueryPlan | Unmapped:
    """Map an understanding to a :class:`QueryPlan`, or say why it cannot be mapped."""
    now = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC).replace(microsecond=0)
    understood = u.words()
    if u.unknown:
        return Unmapped(
            f"I did not understand {', '.join(repr(w) for w in u.unknown)}",
            understood,
            _suggestions(lex),
        )
    loose = [m.text for m in u.of("object")]
    if loose:
        return Unmapped(
            f"I know {', '.join(repr(w) for w in loose)} but not what to look for about it",
            understood,
            [
                "say what happened to it, e.g. 'buckets created today', 'instances launched yesterday'"
            ],
        )
    loose = [m.text for m in u.of("object")]
    if loose:
        return Unmapped(
            f"I know {', '.join(repr(w) for w in loose)} but not what to look for about it",
            understood,
            [
                "say what happened to it, e.g. 'buckets created today', 'instances launched yesterday'"
            ],
        )
    data_tables = {t.name for t in lex.with_data()}
    # -- candidate tables from every signal ------------------------------------------
    constraints: list[tuple[str, set[str]]] = []
    for m in u.of("table"):
        constraints.append((m.text, set(m.payload)))
    for m in u.of("provider"):
        constraints.append((m.text, _provider_tables(lex, m.payload)))
    any_table = bool(u.of("table_all"))
    for m in u.of("concept"):
        sup = {t for t in data_tables if lex.concept_filter(m.payload, t) is not None}
        constraints.append((m.text, sup))
    for m in u.of("event_type"):
        constraints.append((m.text, {t for t, _ in m.payload}))
    for m in u.of("service"):
        constraints.append((m.text, {t for t, _, _ in m.payload}))
    for m in u.of("value"):
        constraints.append((m.text, {t for t, _, _ in m.payload}))
    for m in u.of("native_dim"):
        constraints.append((m.text, {t for t, _ in m.payload}))
    for m in u.of("measure"):
        constraints.append((m.text, {t for t, _ in m.payload}))
    if u.apm:
        constraints.append((APM_WORDS[u.apm], {"traces"}))
    cands = set(data_tables)
    for text, tabs in constraints:
        narrowed = cands & tabs
        if not narrowed:
            if tabs and not (tabs & data_tables):
                return Unmapped(
                    f"{text!r} lives in {', '.join(sorted(tabs))}, which has no data yet",
                    understood,
                    [f"ingest it: mantissa ingest --source {sorted(tabs)[0]} PATH"],
                )
            return Unmapped(
                f"no table holds {text!r} together with the rest of the question",
                understood,
                _suggestions(lex),
            )
        cands = narrowed
    # a common column the question filters or groups on must hold data in the table
    needed: set[str] = set()
    if u.of("user") or u.of("email"):
        needed.add("user")
    if u.of("country"):
        needed.add("geo_country")
    for m in u.of("dim"):
        needed.add(m.payload)
    for col in sorted(needed & {"user", "geo_country", "host", "src_ip", "dst_ip"}):
        have = {t for t in cands if lex.tables[t].values.get(col)}
        if have:
            cands = have
    if not cands:
        return Unmapped(
            "the lake has no data yet", understood, ["run `mantissa demo` or ingest logs"]
        )
    signals = [m for m in u.matches if m.kind not in ("filler", "dim", "bucket", "table_all")]
    if not signals and not any_table and not u.of("dim") and not u.of("bucket") and u.time is None:
        return Unmapped(
            "I found nothing in the question to look for", understood, _suggestions(lex)
        )
    table = next(iter(cands)) if len(cands) == 1 else EVENTS_VIEW
    if any_table and not constraints:
        table = EVENTS_VIEW
    info = lex.tables[table]
    sources = sorted(cands) if table == EVENTS_VIEW else [table]

    # -- filters ---------------------------------------------------------------------
    filters: list[Filter] = []
    notes: list[str] = []
    for m in u.of("concept"):
        for src in sources:
            spec = lex.concept_filter(m.payload, src)
            if spec is None:
                continue
            scope = src if table == EVENTS_VIEW else None
            if spec.get("event_type"):
                filters.append(
                    Filter(
                        column="event_type",
                        op="not_in" if m.negated else "in",
                        value=list(spec["event_type"]),
                        source=scope,
                        group=f"concept:{m.payload}",
                        label=m.payload,
                    )
                )
            for f in spec.get("filters") or []:
                if table == EVENTS_VIEW and f["column"] not in info.columns:
                    return Unmapped(
                        f"{m.text!r} needs {src}'s own column {f['column']}",
                        understood,
                        [f"ask about {src} only, e.g. '... in {src}'"],
                    )
                filters.append(
                    Filter(
                        column=f["column"],
                        op=f.get("op", "eq"),
                        value=f.get("value"),
                        source=scope,
                        group=f"concept:{m.payload}" if len(sources) > 1 else None,
                        label=m.payload,
                    )
                )
    for m in u.of("outcome"):
        # a table without the common outcome column says what failure means for it
        # (traces: status ERROR)
        spec = (info.hints.get("outcomes") or {}).get(m.payload)
        if spec is not None:
            neg = {"eq": "ne", "ne": "eq", "in": "not_in", "not_in": "in"}
            op = spec.get("op", "eq")
            filters.append(
                Filter(
                    column=spec["column"],
                    op=neg.get(op, op) if m.negated else op,
                    value=spec.get("value"),
                    label="failed" if m.payload == "failure" else "successful",
                )
            )
            continue
        filters.append(Filter(column="outcome", op="ne" if m.negated else "eq", value=m.payload))
    countries = [m for m in u.of("country")]
    pos = [m.payload for m in countries if not m.negated]
    neg = [m.payload for m in countries if m.negated]
    if pos:
        filters.append(Filter(column="geo_country", op="in", value=_country_values(pos)))
    if neg:
        filters.append(Filter(column="geo_country", op="not_in", value=_country_values(neg)))
    users_pos: list[str] = []
    users_neg: list[str] = []
    for m in u.of("user"):
        vals = m.payload if isinstance(m.payload, list) else [m.payload]
        (users_neg if m.negated else users_pos).extend(vals)
    for m in u.of("email"):
        local = m.payload.split("@")[0]
        (users_neg if m.negated else users_pos).extend([m.payload, local])
    if users_pos:
        filters.append(Filter(column="user", op="in", value=sorted(set(users_pos))))
    if users_neg:
        filters.append(Filter(column="user", op="not_in", value=sorted(set(users_neg))))
    for m in u.of("ip") + u.of("cidr"):
        op = "cidr" if m.kind == "cidr" else "eq"
        if m.negated:
            op = "not_cidr" if m.kind == "cidr" else "ne"
        if m.role == "dst":
            cols = ["dst_ip"]
        elif m.role == "src" or (not info.values.get("dst_ip") and not _has_dst(lex, sources)):
            cols = ["src_ip"]
        else:
            cols = ["src_ip", "dst_ip"]
        for col in cols:
            filters.append(
                Filter(
                    column=col,
                    op=op,  # type: ignore[arg-type]
                    value=m.payload,
                    group=f"ip:{m.payload}" if len(cols) > 1 and not m.negated else None,
                )
            )
    for m in u.of("event_type"):
        by_src: dict[str, list[str]] = {}
        for t, v in m.payload:
            if t in sources:
                by_src.setdefault(t, []).append(v)
        for src, vals in by_src.items():
            filters.append(
                Filter(
                    column="event_type",
                    op="not_in" if m.negated else "in",
                    value=vals,
                    source=src if table == EVENTS_VIEW else None,
                    group=f"event:{m.text}" if len(by_src) > 1 else None,
                )
            )
    for m in u.of("service"):
        for t, col, v in m.payload:
            if t not in sources:
                continue
            if table == EVENTS_VIEW:
                return Unmapped(
                    f"the service {m.text!r} is a column of {t} only",
                    understood,
                    [f"add '{t}' to the question"],
                )
            filters.append(Filter(column=col, op="ne" if m.negated else "eq", value=v))
    for m in u.of("value"):
        vals = sorted({v for t, _, v in m.payload if t == table})
        cols = {c for t, c, _ in m.payload if t == table}
        for c in sorted(cols):
            filters.append(
                Filter(
                    column=c,
                    op=("not_in" if m.negated else "in")
                    if len(vals) > 1
                    else ("ne" if m.negated else "eq"),
                    value=vals if len(vals) > 1 else vals[0],
                )
            )
    for m in u.of("port"):
        pcol = next(
            (
                lex.tables[s].hints.get("port_column")
                for s in sources
                if lex.tables[s].hints.get("port_column")
            ),
            None,
        )
        if pcol is None or table == EVENTS_VIEW:
            return Unmapped(f"no table with ports matches {m.text!r}", understood)
        filters.append(Filter(column=pcol, op="eq", value=m.payload))
    for m in u.of("literal"):
        filters.append(Filter(column="message", op="contains", value=m.payload))

    # -- dimensions ------------------------------------------------------------------
    dims: list[str] = []
    for m in u.matches:
        if m.kind == "dim" and m.payload not in dims:
            native = (info.hints.get("columns") or {}).get(m.text)
            if m.payload in info.columns:
                dims.append(m.payload)
            elif native and native in info.columns and native not in dims:
                dims.append(native)  # "operation": event_type in logs, name in traces
        elif m.kind == "native_dim":
            for t, col in m.payload:
                if t == table and col not in dims:
                    dims.append(col)
    # a dimension already pinned by a filter is not a grouping ("failed logins for user bob")
    pinned = {
        f.column
        for f in filters
        if (f.op in ("eq", "in") and not isinstance(f.value, list))
        or (isinstance(f.value, list) and len(f.value) == 1)
    }
    dims = [d for d in dims if d not in pinned or u.intent in ("top_k", "breakdown")]
    bucket = next((m.payload for m in u.of("bucket")), None)
    measure = None
    for m in u.of("measure"):
        for t, col in m.payload:
            if t == table:
                measure = col
    # -- time ------------------------------------------------------------------------
    intent = u.intent
    if bucket and intent in ("search", "count"):
        intent = "breakdown"
    tr: TimeRange
    if u.time is not None:
        tr = u.time
    elif intent in ("last_seen", "first_seen"):
        tr = TimeRange(start=now - SEEN_LOOKBACK, end=now, label="last 90 days", explicit=False)
    else:
        tr = default_range(now)
    compare_to = None
    if intent == "compare":
        compare_to = u.more_times[0] if u.more_times else tr.shifted_back()
        if tr.start < compare_to.start:
            tr, compare_to = compare_to, tr
    if u.apm and (u.apm != "traces" or intent == "search"):
        return _apm_plan(u, lex, table, filters, tr, now, notes)
    if (
        table == "traces"
        and intent == "percentile"
        and (measure or "duration_ms") == "duration_ms"
        and not any(f.column in ("kind", "name", "parent_span_id") for f in filters)
    ):
        # a service's latency is that of its entry spans (server/consumer spans and
        # roots), as `mantissa apm services` reports it, not of its own outbound calls
        filters.append(
            Filter(
                column="kind",
                op="in",
                value=["SERVER", "CONSUMER"],
                group="entry",
                label="entry spans",
            )
        )
        filters.append(
            Filter(column="parent_span_id", op="is_null", group="entry", label="entry spans")
        )
    # -- intent → shape --------------------------------------------------------------
    metric = Metric()
    order: list[Order] = []
    columns: list[str] = []
    limit = 100
    group_by: list[str] = []
    if intent == "percentile":
        col = measure or _default_measure(info)
        if col is None:
            return Unmapped(
                "a percentile needs a numeric measure (latency, bytes ...) and none was named",
                understood,
                ["e.g. 'p99 latency for checkout today'"],
            )
        metric = Metric(func="percentile", column=col, q=u.quantile or 0.5)
        group_by = dims
    elif intent == "compare":
        group_by = []
    elif intent in ("top_k", "breakdown") or (dims and intent in ("count",) and _grouped(u)):
        group_by = dims or ([] if bucket else [_default_dim(u, table, info)])
        if intent == "count":
            intent = "breakdown"
        if intent == "top_k":
            limit = u.k or DEFAULT_K
        by = "count"
        if measure:
            metric = Metric(func="sum", column=measure)
            by = f"sum_{measure}"
        order = [Order(by=by, desc=not u.ascending)] if not bucket else []
        if info.category == "apm":
            # "top exceptions": spans without one are not a group of their own
            for g in group_by:
                filters.append(Filter(column=g, op="not_null"))
    elif intent == "count" and u.apm == "traces":
        metric = Metric(func="count_distinct", column="trace_id")
    elif intent == "count":
        if dims and u.count_distinct is False and _distinct_count(u):
            metric = Metric(func="count_distinct", column=dims[0])
    elif intent in ("last_seen", "first_seen"):
        columns = list(SEARCH_COLUMNS)
        order = [Order(by=info.time_column, desc=intent == "last_seen")]
        limit = 1
    else:  # search
        if dims and _asks_which(u):
            intent = "breakdown"
            group_by = dims
            order = [Order(by="count", desc=True)]
        else:
            columns = list(SEARCH_COLUMNS)
            order = [Order(by=info.time_column, desc=True)]
            limit = u.k or 100
    if columns and info.time_column != "event_time":
        columns = [info.time_column, *(info.hints.get("search_columns") or [])]
    columns = [c for c in columns if c in info.columns]
    notes.extend(u.words())
    return QueryPlan(
        intent=intent,  # type: ignore[arg-type]
        table=table,
        filters=filters,
        time_range=tr,
        compare_to=compare_to,
        group_by=group_by,
        bucket=bucket,  # type: ignore[arg-type]
        metric=metric,
        columns=columns,
        order=order,
        limit=limit,
        notes=notes,
        time_column=info.time_column,
    )


APM_WORDS = {
    "callers": "callers",
    "callees": "calls to other services",
    "slow": "why slow",
    "traces": "traces",
}
SLOW_LOOKBACK = dt.timedelta(hours=1)


def _apm_plan(
    u: Understanding,
    lex: Lexicon,
    table: str,
    filters: list[Filter],
    tr: TimeRange,
    now: dt.datetime,
    notes: list[str],
) -> QueryPlan | Unmapped:
    """Plans over parent → child spans: callers, callees, why a service is slow, traces."""
    intent = u.apm or "traces"
    has_service = any(f.column == "service_name" and f.op == "eq" for f in filters)
    if intent == "slow" and not has_service:
        return Unmapped(
            "'why slow' needs the name of a service",
            u.words(),
            [f"e.g. 'why is {_some_service(lex)} slow?'"],
        )
    if intent in ("callers", "callees") and not has_service:
        return Unmapped(
            f"'{APM_WORDS[intent]}' needs the name of a service",
            u.words(),
            [f"e.g. 'what services call {_some_service(lex)}?'"],
        )
    if intent == "slow" and u.time is None:
        # "is slow" is about now: the last hour, unless the question names a window
        tr = TimeRange(start=now - SLOW_LOOKBACK, end=now, label="last hour", explicit=False)
    order = {
        "callers": [Order(by="calls", desc=True)],
        "callees": [Order(by="calls", desc=True)],
        "slow": [Order(by="p99_ms", desc=True)],
        "traces": [Order(by="start_time", desc=True)],
    }[intent]
    notes.extend(u.words())
    notes.append(f"apm: {APM_WORDS[intent]}")
    return QueryPlan(
        intent=intent,  # type: ignore[arg-type]
        table=table,
        filters=filters,
        time_range=tr,
        order=order,
        limit=u.k or 100,
        notes=notes,
        time_column=lex.tables[table].time_column,
    )


def _some_service(lex: Lexicon) -> str:
    info = lex.tables.get("traces")
    vals = sorted((info.values.get("service_name") or {}) if info else {})
    return vals[0] if vals else "checkout"


def _country_values(isos: list[str]) -> list[str]:
    """ISO code plus the names sources write ("US", "United States", "USA" ...)."""
    from mantissa.ask.lexicon import vocabulary

    names = vocabulary().get("countries") or {}
    out: set[str] = set()
    for iso in isos:
        out.add(iso)
        # adjectives ("american") are harmless here: no source writes them as a country
        out.update(n.removeprefix("the ") for n in names.get(iso, []))
    return sorted(out)


def _has_dst(lex: Lexicon, sources: list[str]) -> bool:
    return any(lex.tables[s].values.get("dst_ip") for s in sources if s in lex.tables)


def _grouped(u: Understanding) -> bool:
    import re

    return bool(re.search(r"\b(by|per|for each|each|broken down|breakdown)\b", u.question.lower()))


def _distinct_count(u: Understanding) -> bool:
    import re

    return bool(
        re.search(
            r"\bhow many (distinct |different |unique |separate )?(users|accounts|ips|ip addresses|"
            r"countries|hosts|sources|addresses|people|principals|identities|cities|machines|devices)\b"
            r"|\bnumber of (distinct |different |unique )?(users|accounts|ips|countries|hosts|sources)\b"
            r"|\b(distinct|unique|different)\b",
            u.question.lower(),
        )
    )


def _asks_which(u: Understanding) -> bool:
    import re

    return bool(re.search(r"^\s*(who|which|what)\b|\bwhich\b|\bwho\b", u.question.lower()))


def _default_dim(u: Understanding, table: str, info: Any) -> str:
    if u.of("ip") or u.of("cidr"):
        return "user"
    if table == EVENTS_VIEW:
        return "source"
    if "event_type" not in info.columns and info.hints.get("default_dimension"):
        return str(info.hints["default_dimension"])
    return "event_type"


def _default_measure(info: Any) -> str | None:
    hints = info.hints.get("numeric") or {}
    for col in hints.values():
        if col in info.columns:
            return str(col)
    return None


def _suggestions(lex: Lexicon) -> list[str]:
    tabs = ", ".join(sorted(t.name for t in lex.with_data())) or "none yet"
    return [
        "name a source, a user, an IP, a country or an action, and a time window",
        "e.g. 'failed logins from outside the US this week', 'when was root last used?'",
        f"tables with data: {tabs}",
        'or run SQL directly: mantissa query --sql "SELECT ..."',
    ]
