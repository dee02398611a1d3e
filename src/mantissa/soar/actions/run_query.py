"""``run_query``: a read-only SQL query over the lake, through the query guard."""

from __future__ import annotations

from typing import Any

from mantissa.soar.actions import ActionContext, ActionError, DryRunStop, action


@action("run_query", idempotency="natural")
def run_query(
    ctx: ActionContext, query: str, store_results_as: str | None = None, max_rows: int = 1000
) -> dict[str, Any]:
    """Run ``query`` (one SELECT; the guard refuses anything else); rows go to the output."""
    from mantissa.engines.guard import guard
    from mantissa.errors import QueryError

    engine = ctx.runtime.engine
    try:
        guard(query, engine.tables())
    except QueryError as exc:
        raise ActionError(f"run_query: {exc.message}") from None
    if ctx.dry_run:
        ctx.requests.append({"query": query})
        raise DryRunStop()
    try:
        res = engine.execute(query)
    except QueryError as exc:
        raise ActionError(f"run_query: {exc.message}") from None
    out = res.to_dict()
    out["rows"] = out["rows"][: max(0, min(max_rows, 10000))]
    out["row_count"] = len(res.rows)
    if store_results_as:
        out["name"] = store_results_as
    return out
