"""Running the demo: generate → ingest → show the lake → every module's step."""

from __future__ import annotations

import datetime as dt
import shutil
import time
from pathlib import Path

from rich.console import Console

from mantissa.demo import DemoContext, generators, steps
from mantissa.demo.scenario import Scenario
from mantissa.lake.ingest import Pipeline, ingest_connection
from mantissa.runtime import Runtime
from mantissa.sources.base import get_source


def run_demo(
    rt: Runtime,
    console: Console,
    seed: int = 7,
    days: int = 3,
    keep_input: bool = True,
    end: dt.datetime | None = None,
) -> DemoContext:
    """Generate, ingest and run every step; ``end`` pins the sample's last instant (now)."""
    t0 = time.perf_counter()
    sc = Scenario(seed=seed, days=days, **({"end": end} if end else {}))
    input_dir = rt.data_dir / "demo-input"
    shutil.rmtree(input_dir, ignore_errors=True)
    input_dir.mkdir(parents=True)
    ctx = DemoContext(runtime=rt, scenario=sc, console=console, results={"ingest": {}})
    console.rule("[bold]1. Generating a realistic sample")
    produced: dict[str, list[Path]] = {}
    for source, gen in generators().items():
        files = gen(sc, input_dir)
        produced[source] = files
        console.print(f"  {source:<18} {len(files):>4} files")
    console.rule("[bold]2. Ingesting into the lake")
    con = ingest_connection()
    for source, files in produced.items():
        pipe = Pipeline(rt.storage, get_source(source), rt.config.ingest, con=con)
        summary = pipe.ingest_paths([str(f) for f in files])
        ctx.results["ingest"][source] = summary.to_dict()
        console.print(
            f"  {source:<18} {summary.events:>7} events  {summary.rejected:>4} rejected  "
            f"{summary.partitions:>3} partitions  {summary.seconds:6.2f}s"
        )
    console.rule("[bold]3. What is in the lake")
    from mantissa.lake.catalog import table_stats, tables

    for name, spec in tables().items():
        st = table_stats(rt.storage, spec)
        if st.rows:
            console.print(
                f"  {name:<18} {st.rows:>7} rows  {st.first_event:%Y-%m-%d %H:%M} → "
                f"{st.last_event:%Y-%m-%d %H:%M}  {st.files} files"
            )
    ctx.results["seconds"] = {"generate+ingest": round(time.perf_counter() - t0, 1)}
    for s in steps():
        console.rule(f"[bold]{s.name}")
        t = time.perf_counter()
        s.fn(ctx)
        ctx.results["seconds"][s.name] = round(time.perf_counter() - t, 1)
    if not keep_input:
        shutil.rmtree(input_dir, ignore_errors=True)
    return ctx
