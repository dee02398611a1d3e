"""The Typer application every command module adds itself to, and shared CLI plumbing."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

import typer

from mantissa.runtime import Runtime

app = typer.Typer(
    name="mantissa",
    help="Mantissa Log: logs into a Parquet lake, Sigma detections, alerts, questions in English.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


class Format(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"


def runtime(ctx: typer.Context) -> Runtime:
    """The runtime built from the global options (created once per invocation)."""
    root = ctx.find_root()
    obj: dict[str, Any] = root.obj if isinstance(root.obj, dict) else {}
    root.obj = obj
    if "runtime" not in obj:
        obj["runtime"] = Runtime(obj.get("data_dir"), obj.get("config"))
    return obj["runtime"]
