"""``GET /audit`` (role admin): the append-only record of mutating API calls."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel

from mantissa.api.auth import Principal, Role, require
from mantissa.api.paging import Paged, PageParams, check_sort, paged, paging, parse_time, time_param

router = APIRouter(tags=["audit"])


class AuditEntry(BaseModel):
    id: int
    at: str | None
    actor: str
    token_id: str | None
    role: str | None
    via: str | None
    method: str
    path: str
    route: str | None
    status: int
    client: str | None
    request_id: str | None
    detail: dict[str, Any] | None


@router.get("/audit", response_model=Paged[AuditEntry])
def list_audit(
    request: Request,
    actor: str | None = Query(None, max_length=256, description="Substring of the actor."),
    token_id: str | None = Query(None, max_length=64),
    method: str | None = Query(None, pattern="^(POST|PUT|PATCH|DELETE|post|put|patch|delete)$"),
    since: str | None = time_param("ISO-8601; entries at or after."),
    until: str | None = time_param("ISO-8601; entries before."),
    page: PageParams = Depends(paging({"at"})),
    _: Principal = Depends(require(Role.admin)),
) -> dict:
    """Who did what, when, and how it ended (newest first by default)."""
    sort = check_sort(page.sort, {"at"}, "-at")
    items, total = request.app.state.audit.list(
        actor=actor,
        token_id=token_id,
        method=method,
        since=parse_time(since, "since"),
        until=parse_time(until, "until"),
        limit=page.limit,
        offset=page.offset,
        sort=sort,
    )
    return paged(items, total, page)
