"""``mantissa ingest``: files, directories, .gz and stdin into the lake."""

from __future__ import annotations

import os
import sys

import typer
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from mantissa.cli.app import Format, app, runtime
from mantissa.cli.output import console, err_console, print_json, print_table
from mantissa.lake.ingest import Pipeline
from mantissa.lake.reader import expand_paths
from mantissa.sources.base import get_source
from mantissa.sources.detect import detect_source


@app.command()
def ingest(
    ctx: typer.Context,
    paths: list[str] = typer.Argument(
        ..., help="Files, directories (recursive), .gz files, or - for stdin."
    ),
    source: str | None = typer.Option(
        None, "--source", "-s", help="Source id (see `mantissa sources`); detected when omitted."
    ),
    fmt: Format = typer.Option(Format.table, "--format", "-f", help="table or json."),
    strict: bool = typer.Option(False, "--strict", help="Exit non-zero if any record is rejected."),
) -> None:
    """Parse log files and write them to the lake (dedup, dead-letter, atomic)."""
    rt = runtime(ctx)
    if source is None:
        found = detect_source(paths)
        source = found.source
        err_console.print(
            f"detected source: [bold]{source}[/] ({found.score:.0%} of sampled records)"
        )
    src = get_source(source, {"timestamp_fields": rt.config.ingest.timestamp_fields})
    pipeline = Pipeline(rt.storage, src, rt.config.ingest)
    files = expand_paths(paths)
    total = sum(os.path.getsize(f) for f in files if f != "-")
    show_bar = fmt != Format.json and sys.stderr.isatty()
    if show_bar:
        with Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=err_console,
            transient=True,
        ) as bar:
            task = bar.add_task(f"ingest {source}", total=total or None)
            summary = pipeline.ingest_paths(files, progress=lambda n: bar.advance(task, n))
    else:
        summary = pipeline.ingest_paths(files)
    out = summary.to_dict()
    if fmt == Format.json:
        print_json(out)
    else:
        rows = [[k, v] for k, v in out.items() if k not in ("dead_letter_files", "reject_reasons")]
        print_table(["", "value"], rows, title=f"ingest {source}")
        for reason, n in summary.reasons.items():
            console.print(f"  rejected {n:>6}  {reason}")
        if summary.dead_letter_keys:
            console.print(f"dead letters: {rt.storage.uri('deadletter/' + source)}")
    if strict and summary.rejected:
        raise typer.Exit(1)
