"""``mantissa alerts list|show|ack|close|reopen|deliver|test-route|destinations|test-destination``."""

from __future__ import annotations

import datetime as dt
import getpass
import re
from typing import Any

import typer

from mantissa.cli.app import Format, app, runtime
from mantissa.cli.output import console, print_csv, print_json, print_table
from mantissa.errors import ConfigError

alerts_app = typer.Typer(
    help="Alerts: list, inspect, acknowledge, close, deliver, test routes.", no_args_is_help=True
)
app.add_typer(alerts_app, name="alerts")

_REL = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_when(value: str | None, now: dt.datetime | None = None) -> dt.datetime | None:
    """``24h``/``7d``/``30m`` ago, or an ISO-8601 time (UTC if no zone)."""
    if not value:
        return None
    now = now or dt.datetime.now(dt.UTC)
    m = _REL.match(value)
    if m:
        return now - dt.timedelta(seconds=int(m.group(1)) * _UNITS[m.group(2)])
    try:
        t = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(
            f"cannot read time {value!r}", hint="use e.g. 24h, 7d or 2026-01-31T12:00:00Z"
        ) from None
    return t.replace(tzinfo=dt.UTC) if t.tzinfo is None else t


def _service(ctx: typer.Context) -> Any:
    from mantissa.alerts.service import AlertService

    return AlertService(runtime(ctx))


def _actor(name: str | None) -> str:
    if name:
        return name
    try:
        return getpass.getuser()
    except Exception:
        return "cli"


def _row(a: Any) -> list[Any]:
    ents = " ".join(f"{k}={v}" for k, v in list(a.entities.items())[:3])
    dl = {d["status"] for d in a.deliveries}
    delivery = ",".join(sorted(dl)) if dl else "-"
    return [
        a.id,
        a.severity.value,
        a.status.value,
        a.rule_title,
        ents,
        a.count,
        a.last_seen.strftime("%m-%d %H:%M"),
        delivery,
    ]


_COLUMNS = ["id", "severity", "status", "rule", "entities", "count", "last_seen", "deliveries"]


@alerts_app.command("list")
def list_alerts(
    ctx: typer.Context,
    status: list[str] = typer.Option(
        None, "--status", help="open|acknowledged|closed|false_positive (repeatable)."
    ),
    severity: list[str] = typer.Option(None, "--severity", help="Exact severities (repeatable)."),
    min_severity: str | None = typer.Option(None, "--min-severity", help="This severity or worse."),
    rule: str | None = typer.Option(None, "--rule", help="Rule id (globs with *)."),
    since: str | None = typer.Option(None, "--since", help="last_seen after (24h, 7d, ISO time)."),
    until: str | None = typer.Option(None, "--until", help="last_seen before."),
    q: str | None = typer.Option(None, "-q", "--query", help="Text in rule, entities, tags."),
    sort: str = typer.Option("-last_seen", "--sort", help="Field, '-' for descending."),
    limit: int = typer.Option(50, "--limit"),
    offset: int = typer.Option(0, "--offset"),
    fmt: Format = typer.Option(Format.table, "--format", "-f"),
) -> None:
    """List alerts, newest activity first."""
    from mantissa.alerts.store import AlertStore

    rt = runtime(ctx)
    store = AlertStore(rt.state)
    items, total = store.list(
        status=status or None,
        severity=severity or None,
        rule_id=rule,
        since=parse_when(since),
        until=parse_when(until),
        q=q,
        sort=sort,
        limit=limit,
        offset=offset,
        min_severity=min_severity,
    )
    if fmt == Format.json:
        print_json(
            {
                "total": total,
                "limit": limit,
                "offset": offset,
                "alerts": [a.to_dict() for a in items],
            }
        )
        return
    rows = [_row(a) for a in items]
    if fmt == Format.csv:
        print_csv(_COLUMNS, rows)
        return
    from rich.table import Table

    # a narrow terminal gets the columns that identify an alert; a wide one gets them all
    cols = _COLUMNS if console.width >= 130 else ["id", "severity", "status", "rule", "last_seen"]
    table = Table(title=f"{len(items)} of {total} alerts", header_style="bold cyan")
    for col in cols:
        wrap = col in ("rule", "entities")
        table.add_column(
            col,
            no_wrap=not wrap,
            overflow="fold",
            ratio=1 if wrap else None,
            min_width=12 if wrap else None,
        )
    idx = [_COLUMNS.index(c) for c in cols]
    for r in rows:
        table.add_row(*[str(r[k]) for k in idx])
    console.print(table)


@alerts_app.command("show")
def show(
    ctx: typer.Context,
    alert_id: str = typer.Argument(...),
    fmt: Format = typer.Option(Format.table, "--format", "-f"),
) -> None:
    """One alert with its evidence, enrichment, history and delivery records."""
    from mantissa.alerts.store import AlertStore

    a = AlertStore(runtime(ctx).state).get(alert_id)
    if fmt == Format.json:
        print_json(a.to_dict())
        return
    _render(a)


def _render(a: Any) -> None:
    console.print(f"[bold]{a.rule_title}[/]  [dim]{a.id}[/]", highlight=False)
    facts = [
        ("severity", a.severity.value),
        ("status", a.status.value),
        ("rule", a.rule_id),
        ("count", a.count),
        ("first_seen", a.first_seen.isoformat()),
        ("last_seen", a.last_seen.isoformat()),
        ("dedup_key", a.dedup_key),
        ("tags", ", ".join(a.tags)),
        ("source", a.source or ""),
    ]
    facts += [(f"entity.{k}", v) for k, v in a.entities.items()]
    if a.description:
        facts.append(("description", a.description))
    print_table(["field", "value"], [list(f) for f in facts], max_width=100)
    if a.enrichment:
        rows = []
        for ip, g in (a.enrichment.get("geoip") or {}).items():
            where = g.get("label") or ", ".join(
                str(x) for x in (g.get("city"), g.get("country"), g.get("as_org")) if x
            )
            rows.append(["geoip", ip, where])
        for m in (a.enrichment.get("threat_intel") or {}).get("matches", []):
            rows.append(
                [
                    "threat_intel",
                    m["observable"],
                    f"{m['feed']}: {m.get('description') or m['type']}",
                ]
            )
        for u, c in (a.enrichment.get("users") or {}).items():
            lake = c.get("lake") or {}
            usual = ",".join(lake.get("usual_countries", []))
            rows.append(
                [
                    "user",
                    u,
                    f"{lake.get('events', 0)} events, {lake.get('failures', 0)} failures, usual: {usual}",
                ]
            )
        if rows:
            print_table(["enrichment", "observable", "value"], rows, max_width=80)
    if a.evidence_rows:
        keys: list[str] = []
        for r in a.evidence_rows[:5]:
            keys += [k for k in r if k not in keys and k != "raw"]
        # what an analyst reads first, then whatever else the rule selected
        first = ["event_time", "event_type", "eventName", "user", "src_ip", "outcome"]
        cols = ([k for k in first if k in keys] + [k for k in keys if k not in first])[:6]
        print_table(
            cols,
            [[r.get(c) for c in cols] for r in a.evidence_rows[:5]],
            title=f"evidence ({len(a.evidence_event_ids)} event ids, "
            f"{len(a.evidence_rows)} sample rows)",
            max_width=40,
        )
    if a.deliveries:
        print_table(
            ["destination", "kind", "status", "attempts", "error / receipt"],
            [
                [
                    d["destination"],
                    d["kind"],
                    d["status"],
                    f"{d['attempts']}/{d['max_attempts']}",
                    d["last_error"] or d["response"] or "",
                ]
                for d in a.deliveries
            ],
            title="deliveries",
        )
    print_table(
        ["at", "actor", "action", "detail"],
        [
            [
                h.get("at", ""),
                h.get("actor", ""),
                h.get("action", ""),
                {k: v for k, v in h.items() if k not in ("at", "actor", "action")},
            ]
            for h in a.history
        ],
        title="history",
    )


def _status_cmd(
    ctx: typer.Context,
    alert_id: str,
    status: str,
    actor: str | None,
    reason: str | None,
    fmt: Format,
) -> None:
    svc = _service(ctx)
    a = svc.set_status(alert_id, status, _actor(actor), reason)
    if fmt == Format.json:
        print_json(a.to_dict())
    else:
        console.print(f"{a.id} is now [bold]{a.status.value}[/]", highlight=False)


@alerts_app.command("ack")
def ack(
    ctx: typer.Context,
    alert_id: str = typer.Argument(...),
    actor: str | None = typer.Option(None, "--as", help="Who acknowledges (default: $USER)."),
    reason: str | None = typer.Option(None, "--reason"),
    fmt: Format = typer.Option(Format.table, "--format", "-f"),
) -> None:
    """Acknowledge an alert (stops escalations; PagerDuty is acknowledged too)."""
    _status_cmd(ctx, alert_id, "acknowledged", actor, reason, fmt)


@alerts_app.command("close")
def close(
    ctx: typer.Context,
    alert_id: str = typer.Argument(...),
    false_positive: bool = typer.Option(
        False, "--false-positive", help="Close as a false positive."
    ),
    actor: str | None = typer.Option(None, "--as"),
    reason: str | None = typer.Option(None, "--reason"),
    fmt: Format = typer.Option(Format.table, "--format", "-f"),
) -> None:
    """Close an alert (resolves PagerDuty, transitions Jira, resolves ServiceNow)."""
    _status_cmd(ctx, alert_id, "false_positive" if false_positive else "closed", actor, reason, fmt)


@alerts_app.command("reopen")
def reopen(
    ctx: typer.Context,
    alert_id: str = typer.Argument(...),
    actor: str | None = typer.Option(None, "--as"),
    reason: str | None = typer.Option(None, "--reason"),
    fmt: Format = typer.Option(Format.table, "--format", "-f"),
) -> None:
    """Open a closed or acknowledged alert again."""
    _status_cmd(ctx, alert_id, "open", actor, reason, fmt)


@alerts_app.command("deliver")
def deliver(
    ctx: typer.Context,
    timeout: float | None = typer.Option(
        None,
        "--timeout",
        help="Seconds to keep retrying (default alerts.delivery.flush_timeout_secs).",
    ),
    retry_dead: bool = typer.Option(
        False, "--retry-dead", help="Queue dead deliveries again first."
    ),
    fmt: Format = typer.Option(Format.table, "--format", "-f"),
) -> None:
    """Deliver queued notifications now (what failed stays queued, dead after N attempts)."""
    svc = _service(ctx)
    res = svc.deliver(timeout, retry_dead).to_dict()
    res["queue"] = svc.outbox.counts()
    if fmt == Format.json:
        print_json(res)
        return
    console.print(
        f"delivered {res['delivered']}, retried {res['retried']}, dead {res['dead']}, "
        f"skipped {res['skipped']}, still pending {res['pending']} ({res['seconds']}s)",
        highlight=False,
    )
    for e in res["errors"]:
        console.print(
            f"  [red]{e['destination']}[/] {e['alert_id']}: {e['error']}", highlight=False
        )


@alerts_app.command("test-route")
def test_route(
    ctx: typer.Context,
    alert_id: str = typer.Argument(...),
    fmt: Format = typer.Option(Format.table, "--format", "-f"),
) -> None:
    """Show which routes fire for an alert and why (sends nothing)."""
    out = _service(ctx).test_route(alert_id)
    if fmt == Format.json:
        print_json(out)
        return
    rows = []
    for r in out["routes"]:
        why = (
            "; ".join(
                f"{'✓' if c['ok'] else '✗'} {c['criterion']}: {c['actual']} vs {c['expected']}"
                for c in r["checks"]
            )
            or "matches everything"
        )
        verdict = (
            "suppressed until " + r["suppressed_until"]
            if r["suppressed"]
            else ("fires" if r["matched"] else "no match")
        )
        rows.append([r["route"], verdict, ", ".join(r["to"]), why])
    print_table(
        ["route", "verdict", "to", "why"], rows, title=f"routes for {alert_id}", max_width=80
    )
    dests = (
        ", ".join(
            f"{d['id']} ({d['type']}{', redacted' if d['external'] else ''})"
            for d in out["destinations"]
        )
        or "none"
    )
    console.print(f"destinations: {dests}", highlight=False)


@alerts_app.command("destinations")
def destinations(
    ctx: typer.Context, fmt: Format = typer.Option(Format.table, "--format", "-f")
) -> None:
    """The configured destinations (secrets are never shown) and the known types."""
    from mantissa.alerts.destinations import destination_types

    svc = _service(ctx)
    out = {
        "destinations": [
            {
                "id": i,
                "type": d.type,
                "external": d.external,
                "max_attempts": d.config.max_attempts,
                "guarantee": d.delivery_guarantee,
            }
            for i, d in svc.router.destinations.items()
        ],
        "routes": [r.model_dump(exclude_none=True) for r in svc.router.routes],
        "types": list(destination_types()),
        "queue": svc.outbox.counts(),
    }
    if fmt == Format.json:
        print_json(out)
        return
    print_table(
        ["id", "type", "external", "max_attempts", "guarantee"],
        [list(d.values()) for d in out["destinations"]],
        title="destinations",
    )
    console.print(f"types: {', '.join(out['types'])}; queue: {out['queue']}", highlight=False)


@alerts_app.command("test-destination")
def test_destination(
    ctx: typer.Context,
    destination: str = typer.Argument(...),
    fmt: Format = typer.Option(Format.table, "--format", "-f"),
) -> None:
    """Send a synthetic test alert to one destination, now, once."""
    import uuid

    from mantissa.alerts.destinations.base import Delivery
    from mantissa.alerts.model import Alert, Severity
    from mantissa.errors import DeliveryError

    svc = _service(ctx)
    dest = svc.router.destinations.get(destination)
    if dest is None:
        raise ConfigError(
            f"unknown destination {destination!r}",
            hint="known: " + (", ".join(svc.router.destinations) or "none"),
        )
    now = dt.datetime.now(dt.UTC)
    alert = Alert(
        id="test_" + uuid.uuid4().hex[:12],
        rule_id="mantissa.test",
        rule_title="Mantissa Log test alert",
        severity=Severity.informational,
        dedup_key="mantissa.test",
        first_seen=now,
        last_seen=now,
        created_at=now,
        updated_at=now,
        description="A test notification sent by `mantissa alerts test-destination`.",
    )
    try:
        receipt = dest.send(
            Delivery(
                alert=alert,
                kind="test",
                idempotency_key=f"{alert.id}:{destination}:test",
                destination_id=destination,
            )
        )
        out: dict[str, Any] = {"destination": destination, "ok": True, "receipt": receipt}
    except DeliveryError as exc:
        out = {
            "destination": destination,
            "ok": False,
            "error": exc.message,
            "retryable": exc.code == "delivery_retryable",
        }
    if fmt == Format.json:
        print_json(out)
    else:
        console.print(out, highlight=False)
    if not out["ok"]:
        raise typer.Exit(1)
