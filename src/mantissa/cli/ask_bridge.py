"""Plain-English questions for ``mantissa query "..."`` (served by the ``ask`` module)."""

from __future__ import annotations

import importlib.util

import typer

from mantissa.cli.app import Format
from mantissa.errors import QueryError


def answer_question(ctx: typer.Context, question: str, fmt: Format, explain: bool) -> None:
    if importlib.util.find_spec("mantissa.ask") is None:
        raise QueryError(
            "plain-English questions are not available in this build",
            hint='use --sql "SELECT ..."',
        )
    from mantissa.ask.cli import run_question

    run_question(ctx, question, fmt, explain)
