"""Demo step "Detections" (order 40): run the rule library over the demo lake, show alerts."""

from __future__ import annotations

import datetime as dt

from rich.table import Table

from mantissa.demo import DemoContext, step


@step("Detections", 40)
def detections(ctx: DemoContext) -> None:
    """Run every enabled rule over the whole demo period and print what fired."""
    from mantissa.detect.engine import DetectionEngine

    rt = ctx.runtime
    console = ctx.console
    engine = DetectionEngine(rt)
    days = getattr(ctx.scenario, "days", 3) + 1
    since = dt.timedelta(days=days)
    alerts, ev = engine.run_window(since=since)
    ms = sum(u.elapsed_ms for u in ev.units)
    ran = len(set(ev.rules_run))
    console.print(
        f"  {ran} rules in {len(ev.units)} queries ({ms:.0f} ms engine time) over the last {days} days: "
        f"{len(alerts)} alerts"
    )
    table = Table(header_style="bold cyan")
    for col in ("severity", "rule", "entities", "count", "first seen", "tactics"):
        table.add_column(col, overflow="fold")
    order = ["critical", "high", "medium", "low", "informational"]
    for a in sorted(alerts, key=lambda a: (order.index(str(a.severity)), a.rule_title)):
        table.add_row(
            str(a.severity),
            a.rule_title,
            ", ".join(f"{k}={v}" for k, v in a.entities.items() if k in ("user", "ip")),
            str(a.count),
            f"{a.first_seen:%Y-%m-%d %H:%M}",
            ", ".join(t.removeprefix("attack.") for t in a.tags if t.startswith("attack.t")),
        )
    if alerts:
        console.print(table)
    unavailable = {rid: e for rid, e in ev.errors.items() if "not available" not in e}
    for rid, err in sorted(unavailable.items()):
        console.print(f"  [yellow]rule {rid}[/]: {err}", highlight=False)
    ctx.results["detections"] = {
        "rules": ran,
        "queries": len(ev.units),
        "alerts": len(alerts),
        "engine_ms": round(ms),
    }
    console.print(
        "  [dim]try: mantissa rules list · mantissa detect run --since 24h · "
        "mantissa rules convert --dialect athena[/]"
    )
