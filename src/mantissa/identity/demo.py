"""Demo step "Identity threats" (order 42): the demo's identity attacks, caught and explained."""

from __future__ import annotations

import datetime as dt

from mantissa.demo import DemoContext, step


@step("Identity threats", 42)
def identity_threats(ctx: DemoContext) -> None:
    """Run the identity detections over the demo period; print each alert's explanation,
    the kill-chain incidents and the riskiest identities."""
    from mantissa.identity import risk
    from mantissa.identity.run import IdentityRun

    rt, console = ctx.runtime, ctx.console
    days = getattr(ctx.scenario, "days", 3) + 1
    end = dt.datetime.now(dt.UTC)
    results = IdentityRun(rt).catch_up(end - dt.timedelta(days=days), end)
    alerts = [a for r in results for a in r.alerts]
    events = sum(r.events for r in results)
    secs = sum(r.seconds for r in results)
    console.print(
        f"  {events} identity events from Okta, Entra ID, Workspace, Duo, Microsoft 365 and "
        f"CloudTrail → {len(alerts)} identity alerts ({secs:.1f} s)"
    )
    order = ["critical", "high", "medium", "low", "informational"]
    for a in sorted(alerts, key=lambda a: (order.index(str(a.severity)), a.rule_id)):
        colour = {"critical": "red", "high": "magenta", "medium": "yellow"}.get(
            str(a.severity), "white"
        )
        console.print(f"  [{colour}]{a.severity:<8}[/] [bold]{a.rule_title}[/]", highlight=False)
        console.print(f"           {a.description}", highlight=False, soft_wrap=True)
    top = risk.top(rt, 5)
    if top:
        console.print("  riskiest identities:")
        for r in top:
            reasons = ", ".join(x["rule_id"].removeprefix("identity.") for x in r["reasons"][:4])
            console.print(
                f"    {r['score']:5.0f}/100  {r['identity']}  ({reasons})", highlight=False
            )
    ctx.results["identity"] = {
        "events": events,
        "alerts": len(alerts),
        "rules": sorted({a.rule_id for a in alerts}),
        "seconds": round(secs, 1),
    }
    console.print(
        "  [dim]try: mantissa identity risky · mantissa identity show niaj@example.com · "
        "mantissa identity run --since 24h --format json[/]"
    )
