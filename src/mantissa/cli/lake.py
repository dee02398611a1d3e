"""``mantissa sources``, ``tables`` and ``stats``: what the lake can hold and holds."""

from __future__ import annotations

import typer

from mantissa.cli.app import Format, app, runtime
from mantissa.cli.output import print_csv, print_json, print_table
from mantissa.lake.catalog import source_schema, table_stats, tables
from mantissa.lake.deadletter import DeadLetterStore
from mantissa.sources.base import registry


@app.command()
def sources(
    fmt: Format = typer.Option(Format.table, "--format", "-f"),
    columns: bool = typer.Option(True, "--columns/--no-columns", help="Include column lists."),
) -> None:
    """List the log sources with their table and columns."""
    out = []
    for name, cls in registry().items():
        schema = source_schema(name)
        out.append(
            {
                "source": name,
                "table": name,
                "title": cls.title,
                "category": cls.category,
                "variants": list(cls.variants),
                "columns": [{"name": c, "type": t} for c, t in schema],
            }
        )
    if fmt == Format.json:
        print_json(out)
        return
    rows = [
        [
            o["source"],
            o["table"],
            o["title"],
            o["category"],
            ", ".join(c["name"] for c in o["columns"]) if columns else len(o["columns"]),
        ]
        for o in out
    ]
    if fmt == Format.csv:
        print_csv(["source", "table", "title", "category", "columns"], rows)
    else:
        print_table(["source", "table", "title", "category", "columns"], rows, max_width=90)


def _stats_rows(ctx: typer.Context, all_tables: bool) -> list[dict[str, object]]:
    rt = runtime(ctx)
    dl = DeadLetterStore(rt.storage).counts()
    out = []
    for name, spec in tables().items():
        st = table_stats(rt.storage, spec)
        if not all_tables and st.files == 0 and not dl.get(name):
            continue
        out.append(
            {
                "table": name,
                "rows": st.rows,
                "first_event": st.first_event,
                "last_event": st.last_event,
                "partitions": st.partitions,
                "files": st.files,
                "bytes": st.bytes,
                "max_files_per_partition": st.max_files_per_partition,
                "dead_letter": dl.get(name, 0),
            }
        )
    return out


@app.command()
def stats(
    ctx: typer.Context,
    fmt: Format = typer.Option(Format.table, "--format", "-f"),
    all_tables: bool = typer.Option(False, "--all", help="Include empty tables."),
) -> None:
    """Rows, time range, partitions, files and bytes per table."""
    out = _stats_rows(ctx, all_tables)
    if fmt == Format.json:
        print_json(out)
        return
    cols = [
        "table",
        "rows",
        "first_event",
        "last_event",
        "partitions",
        "files",
        "bytes",
        "max_files_per_partition",
        "dead_letter",
    ]
    rows = [[o[c] for c in cols] for o in out]
    if fmt == Format.csv:
        print_csv(cols, rows)
    else:
        print_table(cols, rows, title=f"lake: {runtime(ctx).storage.uri()}")


@app.command("tables")
def tables_cmd(
    ctx: typer.Context,
    fmt: Format = typer.Option(Format.table, "--format", "-f"),
    all_tables: bool = typer.Option(False, "--all", help="Include empty tables."),
) -> None:
    """The lake's tables with row counts (alias of `stats`)."""
    stats(ctx, fmt, all_tables)
