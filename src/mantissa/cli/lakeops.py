"""``mantissa lake compact`` and ``mantissa lake register``: operating the lake at scale."""

from __future__ import annotations

import os
import socket
from typing import Any

import typer

from mantissa.cli.app import Format, app, runtime
from mantissa.cli.output import console, print_json, print_table
from mantissa.errors import ConfigError, MantissaError

lake_app = typer.Typer(
    help="Operate the lake: compact small files, register tables in cloud engines.",
    no_args_is_help=True,
)
app.add_typer(lake_app, name="lake")

COMPACT_LEASE = "lake.compact"


def _specs(names: list[str] | None) -> list[Any]:
    from mantissa.lake.catalog import tables

    specs = tables()
    if not names:
        return list(specs.values())
    unknown = [n for n in names if n not in specs]
    if unknown:
        raise ConfigError(
            f"unknown table(s): {', '.join(unknown)}", hint="see `mantissa tables --all`"
        )
    return [specs[n] for n in names]


@lake_app.command("compact")
def compact_cmd(
    ctx: typer.Context,
    table: list[str] = typer.Option(None, "--table", "-t", help="Only these tables (repeatable)."),
    partition: str | None = typer.Option(
        None,
        "--partition",
        help="Only partitions under this key prefix, e.g. logs/okta/year=2026/month=11.",
    ),
    target_mb: int = typer.Option(
        256, "--target-mb", help="Size of merged files (128–512 MB advised)."
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Show what would be merged."),
    grace_secs: float = typer.Option(
        3600, "--orphan-grace-secs", help="Uncommitted files older than this are removed."
    ),
    fmt: Format = typer.Option(Format.table, "--format", "-f"),
) -> None:
    """Merge each partition's small files into large ones, atomically."""
    from mantissa.lake.compact import MIN_TARGET_BYTES, compact

    rt = runtime(ctx)
    target = target_mb * 1024 * 1024
    if target < MIN_TARGET_BYTES:
        raise ConfigError("--target-mb must be at least 1")
    owner = f"{socket.gethostname()}:{os.getpid()}"
    # One compactor per lake: two merging the same partition would both retire its files.
    if not dry_run and not rt.state.acquire_lease(COMPACT_LEASE, owner, ttl_secs=6 * 3600):
        raise MantissaError(
            "another `mantissa lake compact` holds the compaction lease",
            hint="wait for it to finish (the lease expires after 6 h if it died)",
        )
    try:
        res = compact(
            rt.storage,
            _specs(table),
            target_bytes=target,
            partition_filter=partition,
            dry_run=dry_run,
            grace_secs=grace_secs,
        )
    finally:
        if not dry_run:
            rt.state.release_lease(COMPACT_LEASE, owner)
    out = res.to_dict()
    if fmt == Format.json:
        print_json(out)
        return
    cols = ["partition", "files_before", "files_after", "bytes_before", "bytes_after", "rows"]
    print_table(cols, [[p[c] for c in cols] for p in out["partitions"]], title="compaction")
    console.print(
        f"[dim]{out['compacted']} partitions, {out['files_removed']} files merged away, "
        f"{out['orphans_removed']} orphans removed in {out['seconds']} s"
        f"{' (dry run)' if dry_run else ''}[/]"
    )


@lake_app.command("register")
def register_cmd(
    ctx: typer.Context,
    engine: str = typer.Option(..., "--engine", "-e", help="athena | bigquery | synapse | spark."),
    table: list[str] = typer.Option(None, "--table", "-t", help="Only these tables (repeatable)."),
    fmt: Format = typer.Option(Format.table, "--format", "-f"),
) -> None:
    """Create or update the engine's external tables / views over the lake (idempotent)."""
    rt = runtime(ctx)
    eng = rt.make_engine(engine)
    register = getattr(eng, "register", None)
    if engine == "athena":
        from mantissa.engines.athena import register_athena

        actions = register_athena(eng, table or None)  # type: ignore[arg-type]
    elif callable(register):
        actions = register(table or None)
    else:
        raise ConfigError(
            f"engine {engine!r} has no catalog to register in",
            hint="duckdb reads the lake directly; use athena, bigquery, synapse or spark",
        )
    if fmt == Format.json:
        print_json({"engine": engine, "lake": rt.storage.describe(), "actions": actions})
        return
    print_table(
        ["object", "action"],
        [[a["object"], a["action"]] for a in actions],
        title=f"registered on {engine}",
    )
