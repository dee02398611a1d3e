"""``GET /tables`` (role viewer): the lake's tables and their columns (for the Search page)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel

from mantissa.api.auth import Principal, Role, require
from mantissa.lake.catalog import EVENTS_VIEW, tables
from mantissa.sources.base import COMMON_COLUMNS

router = APIRouter(tags=["query"])


class Column(BaseModel):
    name: str
    type: str


class TableOut(BaseModel):
    name: str
    kind: str
    has_data: bool
    columns: list[Column]


@router.get("/tables", response_model=list[TableOut])
def list_tables(request: Request, _: Principal = Depends(require(Role.viewer))) -> list[TableOut]:
    """Every queryable table (and the cross-source ``events`` view) with its columns."""
    storage = request.app.state.runtime.storage
    out = []
    any_logs = False
    for name, spec in tables().items():
        has_data = any(True for _ in storage.list(spec.prefix, ".parquet"))
        any_logs = any_logs or (has_data and spec.kind == "logs")
        try:
            cols = [Column(name=c, type=t) for c, t in spec.schema()]
        except Exception:  # a source whose schema cannot be derived still lists its name
            cols = []
        out.append(TableOut(name=name, kind=spec.kind, has_data=has_data, columns=cols))
    out.sort(key=lambda t: (not t.has_data, t.name))
    view = TableOut(
        name=EVENTS_VIEW,
        kind="view",
        has_data=any_logs,
        columns=[Column(name=c, type=t) for c, t in COMMON_COLUMNS.items()],
    )
    return [view, *out]
