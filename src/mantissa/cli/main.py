"""Entry point: global options, then every command module of this package."""

from __future__ import annotations

import importlib
import pkgutil
import sys
from pathlib import Path

import typer

from mantissa import __version__
from mantissa.cli.app import app
from mantissa.cli.output import err_console
from mantissa.errors import MantissaError

_NOT_COMMANDS = {"app", "main", "output"}


def _version(value: bool) -> None:
    if value:
        typer.echo(f"mantissa {__version__}")
        raise typer.Exit()


@app.callback()
def _global(
    ctx: typer.Context,
    data_dir: Path | None = typer.Option(
        None,
        "--data-dir",
        envvar="MANTISSA_HOME",
        help="Data directory (lake, state, config). Default ./mantissa-data or $MANTISSA_HOME.",
    ),
    config: Path | None = typer.Option(
        None, "--config", help="Config file (default <data-dir>/mantissa.yaml)."
    ),
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Mantissa Log: collect → parse → lake → query → detect → alert → respond."""
    ctx.obj = {"data_dir": data_dir, "config": config}


def _load_commands() -> None:
    from mantissa import cli

    for mod in pkgutil.iter_modules(cli.__path__):
        if mod.name not in _NOT_COMMANDS and not mod.name.startswith("_"):
            importlib.import_module(f"mantissa.cli.{mod.name}")


def run(argv: list[str] | None = None) -> int:
    """Run the CLI with ``argv`` and return the exit code (tests call this in-process)."""
    _load_commands()
    try:
        rv = app(args=argv, standalone_mode=False)
        return rv if isinstance(rv, int) else 0
    except MantissaError as exc:
        err_console.print(f"[bold red]error:[/] {exc.message}", highlight=False)
        if exc.hint:
            err_console.print(f"[dim]hint: {exc.hint}[/]", highlight=False)
        return 2
    except typer.Exit as exc:
        return int(exc.exit_code)
    except typer.Abort:
        err_console.print("aborted")
        return 130
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        # usage errors of the CLI framework (unknown option, bad value) know how to show
        # themselves; anything else is a bug and keeps its traceback
        if hasattr(exc, "show") and hasattr(exc, "exit_code"):
            exc.show()
            return int(exc.exit_code)
        raise


def main() -> None:
    sys.exit(run())


if __name__ == "__main__":
    main()
