"""Rendering an :class:`Answer` for ``mantissa query "QUESTION"``."""

from __future__ import annotations

from typing import Any

import typer
from rich.markup import escape

from mantissa.ask.service import Answer, answer
from mantissa.cli.app import Format, runtime
from mantissa.cli.output import console, print_csv, print_json, print_table


def run_question(
    ctx: typer.Context,
    question: str,
    fmt: Any,
    explain: bool,
    dialect: str | None = None,
    session: str | None = None,
) -> Answer:
    """Answer ``question`` and print it as a table (with SQL, summary, cost), JSON or CSV.

    ``--dialect`` and ``--session`` arrive through ``ctx.meta["ask"]`` (set by
    ``mantissa query``) unless given here."""
    opts = ctx.meta.get("ask") or {}
    dialect = dialect or opts.get("dialect") or "duckdb"
    session = session or opts.get("session")
    rt = runtime(ctx)
    ans = answer(rt, question, session=session, dialect=dialect, explain=explain)
    fmt = Format(str(fmt.value if hasattr(fmt, "value") else fmt))
    if fmt == Format.json:
        print_json(ans.to_dict())
    elif fmt == Format.csv:
        print_csv(ans.columns, ans.rows)
    else:
        _print_human(ans)
    return ans


def _print_human(ans: Answer) -> None:
    if not ans.answered:
        console.print(f"[yellow]{escape(ans.summary)}[/]")
        for s in ans.suggestions[1:]:
            console.print(f"  [dim]• {s}[/]")
        return
    if ans.columns and not ans.explain:
        print_table(ans.columns, ans.rows)
    console.print(f"[bold]{escape(ans.summary)}[/]")
    tr = ans.time_range or {}
    console.print(
        f"[dim]tier {ans.tier} · {', '.join(ans.tables)} · {tr.get('start')} → {tr.get('end')}"
        f"{' · cached' if ans.cached else ''}{' · repaired: ' + '; '.join(ans.repaired) if ans.repaired else ''}[/]"
    )
    # T-SQL quotes [like].[this]: text, not console markup
    console.print(f"[cyan]{escape(ans.sql or '')}[/]", soft_wrap=True, highlight=False)
    if ans.cost:
        c = ans.cost
        console.print(
            f"[dim]cost: {c.get('bytes_scanned', 0):,} bytes in {c.get('files', 0)} files "
            f"({c.get('partitions', 0)} partitions), ${c.get('price_usd', 0):.6f} on {c.get('engine', '?')}[/]"
        )
