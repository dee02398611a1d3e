"""``POST /query`` (role analyst): SQL or a plain-English question against the lake.

SQL goes through the same guard and sandboxed engine as ``mantissa query --sql``
(``runtime.engine``); questions go through ``mantissa.ask.answer``, which plans,
guards and runs them the same way. ``explain: true`` returns the SQL and its cost
estimate without running it; ``format: "csv"`` returns the rows as a CSV download.
"""

from __future__ import annotations

import csv
import io
import time
from typing import Any, Literal

import orjson
import sqlglot.errors
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field, model_validator

from mantissa.api.auth import Principal, Role, require
from mantissa.api.errors import error_responses
from mantissa.api.middleware import audit_detail
from mantissa.engines.base import to_jsonable
from mantissa.errors import QueryRejected, Unavailable

router = APIRouter(tags=["query"])


class QueryIn(BaseModel):
    """Exactly one of ``sql`` or ``question``."""

    model_config = ConfigDict(extra="forbid")

    sql: str | None = Field(None, min_length=1, max_length=100_000, description="DuckDB SQL.")
    question: str | None = Field(
        None, min_length=1, max_length=2_000, description="A question in plain English."
    )
    explain: bool = Field(False, description="Return the SQL and cost estimate; do not run.")
    session: str | None = Field(
        None, max_length=128, pattern=r"^[A-Za-z0-9._:-]+$", description="Follow-up session."
    )
    dialect: Literal["duckdb", "athena", "trino", "bigquery", "tsql", "spark"] = "duckdb"
    max_rows: int | None = Field(None, ge=1, le=100_000, description="Cap on returned rows.")
    format: Literal["json", "csv"] = "json"

    @model_validator(mode="after")
    def _one_of(self) -> QueryIn:
        if (self.sql is None) == (self.question is None):
            raise ValueError('give exactly one of "sql" or "question"')
        if self.sql is not None and not self.sql.strip():
            raise ValueError("sql is empty")
        if self.question is not None and not self.question.strip():
            raise ValueError("question is empty")
        return self


class QueryOut(BaseModel):
    """The answer: rows, the SQL that ran, a summary, the cost estimate, who answered."""

    model_config = ConfigDict(extra="allow")

    question: str | None = None
    sql: str | None
    columns: list[str]
    rows: list[list[Any]]
    summary: str
    cost: dict[str, Any] | None
    tier: str
    time_range: Any = None
    elapsed_ms: float | None = None
    truncated: bool = False
    explain: bool = False


def _summary_for(n: int, truncated: bool, elapsed_ms: float) -> str:
    more = " (truncated)" if truncated else ""
    return f"{n} row{'s' if n != 1 else ''}{more} in {elapsed_ms:.0f} ms"


def _run_sql(request: Request, body: QueryIn) -> dict[str, Any]:
    rt = request.app.state.runtime
    cap = request.app.state.config.query_max_rows
    max_rows = min(body.max_rows or cap, cap)
    engine = (
        rt.engine if max_rows == rt.config.engine.max_rows else rt.make_engine(max_rows=max_rows)
    )
    sql = body.sql or ""
    try:
        cost = engine.estimate_cost(sql).to_dict()
        if body.explain:
            prepared = engine.prepare(sql) if hasattr(engine, "prepare") else sql
            return {
                "sql": prepared,
                "columns": [],
                "rows": [],
                "summary": "not run (explain)",
                "cost": cost,
                "tier": "sql",
                "explain": True,
            }
        result = engine.execute(sql)
    except (sqlglot.errors.SqlglotError, RecursionError) as exc:
        # the guard parses with sqlglot; a tokenizer error is still "this is not valid SQL"
        raise QueryRejected(f"could not parse SQL: {str(exc).splitlines()[0][:300]}") from None
    out = result.to_dict()
    out.update(
        summary=_summary_for(len(result.rows), result.truncated, result.elapsed_ms),
        cost=cost,
        tier="sql",
    )
    return out


def _ask(request: Request, body: QueryIn) -> dict[str, Any]:
    try:
        from mantissa.ask import answer
    except ImportError:
        raise Unavailable(
            "plain-English questions are not available in this build",
            hint='send {"sql": "SELECT ..."} instead',
        ) from None
    ans = answer(
        request.app.state.runtime,
        body.question or "",
        session=body.session,
        dialect=body.dialect,
        explain=body.explain,
    )
    out = to_jsonable(ans.to_dict())
    out.setdefault("question", body.question)
    out.setdefault("columns", [])
    out.setdefault("rows", [])
    out.setdefault("summary", "")
    out.setdefault("cost", None)
    out.setdefault("tier", "unknown")
    out.setdefault("sql", None)
    if body.max_rows is not None and len(out["rows"]) > body.max_rows:
        out["rows"] = out["rows"][: body.max_rows]
        out["truncated"] = True
    out["explain"] = body.explain
    return out


_CSV_RISKY = ("=", "+", "-", "@", "\t", "\r")


def _csv_cell(v: Any) -> Any:
    v = to_jsonable(v)
    if isinstance(v, dict | list):
        return orjson.dumps(v).decode()
    if isinstance(v, str) and v.startswith(_CSV_RISKY):
        # log data is attacker-controlled: keep spreadsheets from running it as a formula
        # (OWASP "CSV Injection")
        return "'" + v
    return v


def to_csv(columns: list[str], rows: list[list[Any]]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(columns)
    for row in rows:
        w.writerow([_csv_cell(v) for v in row])
    return buf.getvalue()


@router.post(
    "/query",
    response_model=QueryOut,
    responses={
        200: {"content": {"text/csv": {}}, "description": "The answer (JSON, or CSV)"},
        **error_responses(400, 408, 503),
    },
)
def run_query(
    body: QueryIn, request: Request, _: Principal = Depends(require(Role.analyst))
) -> Any:
    """Run SQL or answer a question; the SQL always passes the read-only guard and sandbox."""
    start = time.perf_counter()
    kind = "sql" if body.sql is not None else "question"
    # who searched for what is part of a SIEM's own audit trail (bounded in size)
    audit_detail(request, action="query", kind=kind, text=(body.sql or body.question or "")[:500])
    try:
        out = _run_sql(request, body) if body.sql is not None else _ask(request, body)
    finally:
        request.app.state.metrics.query_seconds.labels(kind).observe(time.perf_counter() - start)
    if body.format == "csv":
        return Response(
            to_csv(out["columns"], out["rows"]),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": 'attachment; filename="mantissa-query.csv"'},
        )
    return out
