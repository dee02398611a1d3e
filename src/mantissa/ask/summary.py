"""One sentence that says what the rows mean ("3 buckets were created today, all by mallory")."""

from __future__ import annotations

import datetime as dt
from typing import Any

from mantissa.ask.plan import QueryPlan
from mantissa.engines.base import to_jsonable


def describe(plan: QueryPlan) -> str:
    """The plan's filters in words: "failure login events from outside US by bob"."""
    words: list[str] = []
    outcome = next((f for f in plan.filters if f.column == "outcome"), None)
    if outcome is not None:
        val = str(outcome.value)
        words.append(
            ("non-" if outcome.op == "ne" else "")
            + ("failed" if val == "failure" else "successful" if val == "success" else val)
        )
    labels = []
    for f in plan.filters:
        label = (f.label or "").replace("_", " ")
        if label and label not in labels:
            labels.append(label)
    evs = [f for f in plan.filters if f.column == "event_type" and not f.label]
    for f in evs:
        vals = f.value if isinstance(f.value, list) else [f.value]
        labels.append("/".join(str(v) for v in vals[:3]) + ("…" if len(vals) > 3 else ""))
    words.extend(labels)
    words.append("events")
    tail = []
    for f in plan.filters:
        vals = f.value if isinstance(f.value, list) else [f.value]
        shown = ", ".join(str(v) for v in vals[:3])
        if f.column == "geo_country":
            tail.append(("from outside " if f.op == "not_in" else "from ") + str(vals[0]))
        elif f.column == "user":
            tail.append(("not by " if f.op == "not_in" else "by ") + shown)
        elif f.column in ("src_ip", "dst_ip"):
            pre = {"src_ip": "from", "dst_ip": "to"}[f.column]
            neg = "not " if f.op in ("ne", "not_cidr") else ""
            tail.append(f"{neg}{pre} {shown}")
        elif f.op in ("is_null", "not_null") and not f.label:
            tail.append(f"{'without' if f.op == 'is_null' else 'with'} {f.column}")
        elif f.column not in ("outcome", "event_type") and not f.label:
            tail.append(
                f"where {f.column.split('$')[-1].lstrip('.')} {'is not' if f.op in ('ne', 'not_in') else 'is'} {shown}"
            )
    where = "" if plan.table == "events" else f" in {plan.table}"
    return " ".join([*words, *tail]) + where


def _fmt(v: Any) -> str:
    j = to_jsonable(v)
    if isinstance(j, float):
        return f"{j:,.2f}".rstrip("0").rstrip(".")
    if isinstance(j, int):
        return f"{j:,}"
    return str(j)


def summarize(
    plan: QueryPlan, columns: list[str], rows: list[list[Any]], now: dt.datetime | None = None
) -> str:
    """A one-sentence reading of the result."""
    what = describe(plan)
    when = plan.time_range.label
    recs = [dict(zip(columns, r, strict=False)) for r in rows]
    if plan.intent in ("callers", "callees", "slow", "traces"):
        return _apm_summary(plan, recs, when)
    if plan.intent == "count":
        n = rows[0][0] if rows else 0
        if plan.metric.func == "count_distinct":
            return f"{_fmt(n)} distinct {plan.metric.column} values among {what} ({when})."
        return f"{_fmt(n)} {what} ({when})."
    if plan.intent == "compare":
        by = {r.get("time_window"): r.get("count", 0) for r in recs}
        cur, prev = int(by.get("current", 0) or 0), int(by.get("previous", 0) or 0)
        prev_label = plan.compare_to.label if plan.compare_to else "before"
        if prev:
            change = (cur - prev) / prev * 100
            trend = f"{'up' if change >= 0 else 'down'} {abs(change):.0f}%"
        else:
            trend = "none before" if not cur else "new"
        return f"{_fmt(cur)} {what} in {when} vs {_fmt(prev)} in {prev_label} ({trend})."
    if plan.intent in ("last_seen", "first_seen"):
        if not recs:
            return f"No {what} in the {when}."
        r = recs[0]
        t = to_jsonable(r.get(plan.time_column))
        who = f" by {r['user']}" if r.get("user") else ""
        frm = f" from {r['src_ip']}" if r.get("src_ip") else ""
        what_ev = f" ({r['event_type']})" if r.get("event_type") else ""
        word = "Last" if plan.intent == "last_seen" else "First"
        return f"{word} seen {t}{who}{frm}{what_ev}."
    if plan.intent == "percentile":
        if not recs:
            return f"No {what} in {when}."
        key = next(c for c in columns if c.startswith("p"))
        if plan.group_by:
            top = max(recs, key=lambda r: r.get(key) or 0)
            g = plan.group_by[0]
            return f"{key} by {g} over {when}: highest {top.get(g)} at {_fmt(top.get(key))} ({len(recs)} groups)."
        return f"{key} is {_fmt(recs[0].get(key))} over {_fmt(recs[0].get('count', 0))} {what} ({when})."
    if plan.intent in ("top_k", "breakdown"):
        if not recs:
            return f"No {what} in {when}."
        if plan.bucket and not plan.group_by:
            peak = max(recs, key=lambda r: r.get("count") or 0)
            return f"{what.capitalize()} per {plan.bucket} over {when}: peak {_fmt(peak.get('count'))} at {_fmt(peak.get(plan.bucket))}."
        g = columns[0]
        total = sum(int(r.get("count") or 0) for r in recs)
        first = recs[0]
        if len(recs) == 1:
            return f"All {_fmt(total)} {what} ({when}) have {g} {_fmt(first.get(g))}."
        lead = "Top" if plan.intent == "top_k" else "Largest"
        return (
            f"{len(recs)} {g} values for {what} ({when}); {lead.lower()}: {_fmt(first.get(g))} "
            f"with {_fmt(first.get('count'))}."
        )
    # search
    if not recs:
        return f"No {what} in {when}."
    users = {r.get("user") for r in recs if r.get("user")}
    extra = (
        f", all by {next(iter(users))}"
        if len(users) == 1
        else (f", by {len(users)} users" if users else "")
    )
    more = "+" if len(rows) >= plan.limit else ""
    return f"{len(rows)}{more} {what} ({when}){extra}."


def _apm_summary(plan: QueryPlan, recs: list[dict[str, Any]], when: str) -> str:
    svc = next(
        (str(f.value) for f in plan.filters if f.column == "service_name" and f.op == "eq"), "?"
    )
    if plan.intent == "traces":
        if not recs:
            return f"No traces with {describe(plan)} ({when})."
        more = "+" if len(recs) >= plan.limit else ""
        errs = sum(1 for r in recs if r.get("errors"))
        return (
            f"{len(recs)}{more} traces with {describe(plan)} ({when}), newest first; "
            f"{errs} of them with errors."
        )

    def one(r: dict[str, Any], name: str) -> str:
        err = f", {_fmt(r.get('errors'))} errors" if r.get("errors") else ""
        return f"{r.get(name)} ({_fmt(r.get('calls'))} calls, p99 {_fmt(r.get('p99_ms'))} ms{err})"

    if plan.intent == "slow":
        if not recs:
            return f"{svc} made no calls to other services or databases in the {when}."
        head = recs[0]
        rest = (
            "; then " + ", ".join(one(r, "dependency") for r in recs[1:3]) if len(recs) > 1 else ""
        )
        return f"{svc} waits longest on {one(head, 'dependency')} over the {when}{rest}."
    name = "caller" if plan.intent == "callers" else "callee"
    if not recs:
        verb = "is called by no other service" if name == "caller" else "calls no other service"
        return f"{svc} {verb} in the {when}."
    listed = ", ".join(one(r, name) for r in recs[:5]) + (" …" if len(recs) > 5 else "")
    verb = "is called by" if name == "caller" else "calls"
    return f"{svc} {verb} {listed} ({when})."
