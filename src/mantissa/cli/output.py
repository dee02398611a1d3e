"""Rendering results for people (rich tables) and programs (one JSON object, CSV)."""

from __future__ import annotations

import csv
import io
import sys
from typing import Any

import orjson
from rich.console import Console
from rich.table import Table

from mantissa.engines.base import to_jsonable

console = Console()
err_console = Console(stderr=True)


def print_json(obj: Any) -> None:
    """Exactly one JSON document on stdout."""
    sys.stdout.write(orjson.dumps(to_jsonable(obj), option=orjson.OPT_NON_STR_KEYS).decode() + "\n")
    sys.stdout.flush()


def print_csv(columns: list[str], rows: list[list[Any]]) -> None:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(columns)
    for row in rows:
        w.writerow(
            [
                orjson.dumps(to_jsonable(v)).decode()
                if isinstance(v, dict | list)
                else to_jsonable(v)
                for v in row
            ]
        )
    sys.stdout.write(buf.getvalue())


def print_table(
    columns: list[str], rows: list[list[Any]], title: str | None = None, max_width: int = 60
) -> None:
    table = Table(title=title, show_lines=False, header_style="bold cyan")
    for c in columns:
        table.add_column(c, overflow="fold", max_width=max_width)
    for row in rows:
        cells = []
        for v in row:
            j = to_jsonable(v)
            if isinstance(j, dict | list):
                j = orjson.dumps(j).decode()
            cells.append("" if j is None else str(j))
        table.add_row(*cells)
    console.print(table)
