"""``mantissa demo``: generate, ingest and run every module on a realistic sample."""

from __future__ import annotations

import typer

from mantissa.cli.app import app, runtime
from mantissa.cli.output import console


@app.command()
def demo(
    ctx: typer.Context,
    seed: int = typer.Option(7, help="Random seed of the generated company."),
    days: int = typer.Option(3, help="Days of activity to generate."),
) -> None:
    """Generate a realistic sample with planted attacks, ingest it, and show the product."""
    from mantissa.demo.run import run_demo

    rt = runtime(ctx)
    run_demo(rt, console, seed=seed, days=days)
    console.rule("[bold]Next")
    console.print(f"  data dir: {rt.data_dir.resolve()}")
    console.print(
        f"  try:      mantissa --data-dir {rt.data_dir} query --sql "
        '"SELECT event_type, count(*) FROM events GROUP BY 1 ORDER BY 2 DESC LIMIT 10"'
    )
