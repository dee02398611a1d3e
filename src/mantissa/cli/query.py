"""``mantissa query``: SQL (``--sql``) or a plain-English question against the lake."""

from __future__ import annotations

import typer

from mantissa.cli.app import Format, app, runtime
from mantissa.cli.output import console, print_csv, print_json, print_table
from mantissa.errors import QueryError


@app.command()
def query(
    ctx: typer.Context,
    question: str | None = typer.Argument(None, help="A question in plain English."),
    sql: str | None = typer.Option(None, "--sql", help="SQL to run (DuckDB dialect)."),
    fmt: Format = typer.Option(Format.table, "--format", "-f"),
    explain: bool = typer.Option(
        False, "--explain", help="Show the SQL and cost estimate without running."
    ),
    dialect: str = typer.Option(
        "duckdb", "--dialect", help="SQL dialect to show: duckdb, athena, bigquery, synapse, spark."
    ),
    session: str | None = typer.Option(
        None, "--session", help="Conversation id: follow-up questions refine the previous one."
    ),
) -> None:
    """Run SQL against the lake, read-only and sandboxed."""
    rt = runtime(ctx)
    if sql is None and question is None:
        raise QueryError('give --sql "SELECT ..." or a question')
    if sql is None:
        from mantissa.cli.ask_bridge import answer_question

        ctx.meta["ask"] = {"dialect": dialect, "session": session}
        answer_question(ctx, question or "", fmt, explain)
        return
    engine = rt.engine
    if explain:
        est = engine.estimate_cost(sql)
        prepared = engine.prepare(sql) if hasattr(engine, "prepare") else sql
        out = {"sql": prepared, "cost": est.to_dict()}
        if fmt == Format.json:
            print_json(out)
        else:
            console.print(out["sql"])
            console.print(out["cost"])
        return
    result = engine.execute(sql)
    if fmt == Format.json:
        print_json(result.to_dict())
    elif fmt == Format.csv:
        print_csv(result.columns, result.rows)
    else:
        print_table(result.columns, result.rows)
        note = " (truncated)" if result.truncated else ""
        console.print(f"[dim]{len(result.rows)} rows in {result.elapsed_ms:.0f} ms{note}[/]")
