"""``mantissa engines``: the query engines this build has, and a deployment check."""

from __future__ import annotations

import datetime as dt
import re

import typer

from mantissa.cli.app import Format, app, runtime
from mantissa.cli.output import console, print_json, print_table
from mantissa.errors import ConfigError

engines_app = typer.Typer(
    help="Query engines: list them, check a deployment.", no_args_is_help=True
)
app.add_typer(engines_app, name="engines")

KNOWN = ("duckdb", "athena", "bigquery", "synapse", "spark")
_DUR = re.compile(r"^(\d+)\s*([mhdw])$")


def _duration(text: str) -> dt.timedelta | None:
    if text in ("all", "0"):
        return None
    m = _DUR.match(text.strip())
    if not m:
        raise ConfigError(f"bad duration {text!r}", hint="use e.g. 30m, 24h, 7d, 2w or all")
    n, unit = int(m.group(1)), m.group(2)
    return {
        "m": dt.timedelta(minutes=n),
        "h": dt.timedelta(hours=n),
        "d": dt.timedelta(days=n),
        "w": dt.timedelta(weeks=n),
    }[unit]


def _missing(module: str) -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec(module) is None
    except ModuleNotFoundError:
        return True


@engines_app.command("list")
def list_cmd(
    ctx: typer.Context, fmt: Format = typer.Option(Format.table, "--format", "-f")
) -> None:
    """Engines and whether their client libraries are installed."""
    import importlib

    rt = runtime(ctx)
    out = []
    for name in KNOWN:
        try:
            mod = importlib.import_module(f"mantissa.engines.{name}")
            available, why = True, ""
            # engines import their client library lazily: check that it is installed
            for requirement, extra in getattr(mod, "REQUIRES", {}).items():
                if _missing(requirement):
                    available, why = False, f"pip install 'mantissa-log[{extra}]'"
        except ImportError as exc:
            available, why = False, str(exc)
        out.append(
            {
                "engine": name,
                "available": available,
                "configured": rt.config.engine.type == name,
                "note": why,
            }
        )
    if fmt == Format.json:
        print_json(out)
        return
    print_table(
        ["engine", "available", "configured", "note"],
        [[o[k] for k in ("engine", "available", "configured", "note")] for o in out],
    )


@engines_app.command("check")
def check_cmd(
    ctx: typer.Context,
    engine: str | None = typer.Option(
        None, "--engine", "-e", help="Engine to check (default: the configured one)."
    ),
    since: str = typer.Option("7d", "--since", help="Check partitions this recent (or 'all')."),
    deep: bool = typer.Option(False, "--deep", help="Also read every file's Parquet magic bytes."),
    fmt: Format = typer.Option(Format.table, "--format", "-f"),
) -> None:
    """Verify connectivity, permissions, and that every table and partition is visible."""
    from mantissa.engines.check import run_checks

    rt = runtime(ctx)
    eng = rt.make_engine(engine) if engine else rt.engine
    out = run_checks(rt.storage, eng, _duration(since), deep)
    if fmt == Format.json:
        print_json(out)
    else:
        rows = [[c["check"], c["status"], c["detail"], c["hint"] or ""] for c in out["checks"]]
        print_table(
            ["check", "status", "detail", "fix"], rows, title=f"{out['engine']} over {out['lake']}"
        )
        console.print("[green]all checks passed[/]" if out["ok"] else "[red]some checks failed[/]")
    if not out["ok"]:
        raise typer.Exit(1)
