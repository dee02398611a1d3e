"""The demo's last step: plain-English questions over the freshly ingested sample."""

from __future__ import annotations

from mantissa.demo import DemoContext, step

QUESTIONS = [
    "When was the last time root was used?",
    "Show me all failed logins from outside the US this week",
    "Which IPs had the most failed logins today?",
    "Who created IAM users in the last 24 hours?",
    "Was CloudTrail logging stopped today?",
    "Compare failed logins today vs yesterday",
    "How many events per source today?",
]


@step("Questions", 60)
def ask_questions(ctx: DemoContext) -> None:
    """Answer a few analyst questions offline and show answer, summary, SQL and cost."""
    from mantissa.ask import answer

    out = []
    for q in QUESTIONS:
        ans = answer(ctx.runtime, q)
        out.append(ans.to_dict())
        ctx.console.print(f"[bold cyan]? {q}[/]")
        ctx.console.print(f"  {ans.summary}")
        if ans.answered:
            rows = len(ans.rows)
            cost = ans.cost or {}
            ctx.console.print(
                f"  [dim]{ans.tier} · {rows} row{'s' if rows != 1 else ''} · "
                f"{cost.get('bytes_scanned', 0):,} bytes in {cost.get('files', 0)} files[/]"
            )
            sql = ans.sql or ""
            ctx.console.print(
                f"  [dim]{sql[:160]}{'…' if len(sql) > 160 else ''}[/]", highlight=False
            )
    ctx.results["questions"] = out
    ctx.console.print('  try: mantissa query "failed logins this week" --format json')
