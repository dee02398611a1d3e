"""Tuning: false-positive filters per rule, applied in SQL, and rule health.

A filter excludes matches whose field equals a value (``*`` wildcards allowed, matched
case-insensitively like Sigma) or whose IP is inside a CIDR; it records why, who and until
when (an expired filter stops applying). Filters live in the state store (namespace
``detect.tuning``), so every process of a fleet applies the same ones, and are compiled
into the rule's WHERE clause as ``AND NOT (...)`` — excluded events are never read back.
Marking an alert false-positive proposes filters from its entities (:func:`propose`).
``rules health`` flags rules that went silent for ``detect.silent_days`` or fire more than
``detect.noisy_per_day`` alerts a day, and rules that fail to run.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import uuid
from typing import Any

from sigma.types import SigmaString
from sqlglot import exp

from mantissa.detect.backend import TableSchema, string_match
from mantissa.detect.correlation import parse_duration
from mantissa.detect.pipelines import detect_config
from mantissa.errors import ConfigError, NotFound

TUNING_NS = "detect.tuning"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def parse_exclude(text: str) -> tuple[str, str]:
    """``field=value`` → (field, value)."""
    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise ConfigError(
            f"invalid --exclude {text!r}", hint="write field=value, e.g. user=svc-backup"
        )
    return name.strip(), value.strip()


def is_cidr(value: str) -> bool:
    if "/" not in value:
        return False
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError:
        return False
    return True


def filters(runtime: Any, rule_id: str, include_expired: bool = True) -> list[dict[str, Any]]:
    items = list(runtime.state.get(TUNING_NS, rule_id, []) or [])
    if include_expired:
        return items
    now = _now()
    return [f for f in items if not f.get("expires_at") or _parse(f["expires_at"]) > now]


def _parse(v: str) -> dt.datetime:
    t = dt.datetime.fromisoformat(v.replace("Z", "+00:00"))
    return t if t.tzinfo else t.replace(tzinfo=dt.UTC)


def add_filter(
    runtime: Any,
    rule_id: str,
    field: str,
    value: str,
    reason: str,
    who: str,
    expires: str | None = None,
) -> dict[str, Any]:
    """Store a filter for ``rule_id``; ``expires`` is a duration (``30d``) or an ISO date."""
    if not reason.strip():
        raise ConfigError("a filter needs a reason", hint="--reason 'backup job runs nightly'")
    exp_at = None
    if expires:
        try:
            exp_at = (_now() + dt.timedelta(seconds=parse_duration(expires))).isoformat()
        except ConfigError:
            exp_at = _parse(expires).isoformat()
    item = {
        "id": uuid.uuid4().hex[:12],
        "field": field,
        "value": value,
        "kind": "cidr" if is_cidr(value) else "value",
        "reason": reason,
        "who": who,
        "created_at": _now().isoformat(),
        "expires_at": exp_at,
    }
    with runtime.state.begin() as conn:
        items = list(runtime.state.get(TUNING_NS, rule_id, []) or [])
        items.append(item)
        runtime.state.put(TUNING_NS, rule_id, items, conn)
    return item


def remove_filter(runtime: Any, rule_id: str, filter_id: str) -> None:
    items = filters(runtime, rule_id)
    left = [f for f in items if f["id"] != filter_id]
    if len(left) == len(items):
        raise NotFound(f"rule {rule_id} has no filter {filter_id}")
    runtime.state.put(TUNING_NS, rule_id, left)


def filter_predicate(schema: TableSchema, flt: dict[str, Any]) -> exp.Expression:
    """SQL that is true for the events ``flt`` excludes."""
    res = schema.resolve(flt["field"])
    value = str(flt["value"])
    if flt.get("kind") == "cidr":
        net = ipaddress.ip_network(value, strict=False)
        from sigma.types import SigmaCIDRExpression

        pats = [SigmaString(p) for p in SigmaCIDRExpression(str(net)).expand(wildcard="*")]
        return res.predicate(
            lambda e, k: exp.Paren(
                this=exp.or_(*[string_match(e, k, p, cased=False) for p in pats])
            )
        )
    s = SigmaString(value)
    return res.predicate(lambda e, k: string_match(e, k, s, cased=False))


def exclusions_for(
    runtime: Any, compiled: list[Any], extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    """rule id → callable(schema) giving the excluded-events predicate for that table."""
    out: dict[str, Any] = {}
    for c in compiled:
        active = filters(runtime, c.rule.id, include_expired=False) if runtime is not None else []
        seen = (extra or {}).get(c.rule.id)
        if not active and seen is None:
            continue

        def build(
            schema: TableSchema, active: list[dict[str, Any]] = active, seen: Any = seen
        ) -> exp.Expression | None:
            parts = [filter_predicate(schema, f) for f in active]
            if seen is not None:
                wm, last_run = seen
                from mantissa.detect.engine import seen_predicate
                from mantissa.detect.query import time_column

                tcol = time_column(schema.table)
                if "ingested_at" in schema.columns:
                    pred = seen_predicate(tcol, wm, last_run)
                    parts.append(exp.Not(this=exp.Paren(this=pred)))
            if not parts:
                return None
            return exp.Paren(this=exp.or_(*parts)) if len(parts) > 1 else parts[0]

        out[c.rule.id] = build
    return out


def propose(alert: Any) -> list[dict[str, str]]:
    """Filters that would have suppressed ``alert`` (one per entity it names)."""
    fields = {"user": "user", "ip": "src_ip", "host": "host", "service": "service_name"}
    out = []
    for key, value in (alert.entities or {}).items():
        if key in fields and value:
            out.append(
                {
                    "rule_id": alert.rule_id,
                    "field": fields[key],
                    "value": value,
                    "command": f"mantissa rules tune {alert.rule_id} --exclude {fields[key]}={value} "
                    f"--reason 'false positive: alert {alert.id}'",
                }
            )
    return out


def health(runtime: Any, index: Any, now: dt.datetime | None = None) -> list[dict[str, Any]]:
    """One entry per enabled rule: ok | silent | noisy | failing | never_run."""
    from mantissa.detect.engine import STATS_NS

    cfg = detect_config(runtime)
    now = now or _now()
    stats = runtime.state.items(STATS_NS)
    out = []
    for rule in index.rules:
        if not rule.enabled:
            continue
        st = stats.get(rule.id) or {}
        per_day = st.get("alerts_per_day") or {}
        recent = [
            int(n)
            for d, n in per_day.items()
            if dt.date.fromisoformat(d) >= (now - dt.timedelta(days=7)).date()
        ]
        rate = max(recent) if recent else 0
        status, reason = "ok", ""
        if st.get("last_error"):
            status, reason = "failing", st["last_error"]
        elif not st.get("last_run"):
            status, reason = "never_run", "the rule has not run yet"
        elif rate > cfg.noisy_per_day:
            status, reason = "noisy", f"{rate} alerts in one day (> {cfg.noisy_per_day})"
        else:
            ref = st.get("last_match") or st.get("first_run")
            if ref and now - _parse(ref) > dt.timedelta(days=cfg.silent_days):
                status = "silent"
                reason = (
                    f"no match since {ref[:10]}"
                    if st.get("last_match")
                    else f"never matched in {cfg.silent_days}+ days of runs"
                )
        out.append(
            {
                "rule_id": rule.id,
                "title": rule.title,
                "status": status,
                "reason": reason,
                "last_run": st.get("last_run"),
                "last_match": st.get("last_match"),
                "runs": int(st.get("runs", 0)),
                "max_alerts_per_day_7d": rate,
                "filters": len(filters(runtime, rule.id, include_expired=False)),
            }
        )
    return out
