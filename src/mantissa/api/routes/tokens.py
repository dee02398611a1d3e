"""API tokens over HTTP (role admin): list, create (the secret is shown once), revoke."""

from __future__ import annotations

import datetime as dt

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, Field

from mantissa.api.auth import Principal, Role, TokenStore, require
from mantissa.api.errors import error_responses
from mantissa.api.middleware import audit_detail
from mantissa.api.paging import Paged, PageParams, check_sort, paged, paging
from mantissa.state.store import utcnow

router = APIRouter(prefix="/tokens", tags=["tokens"])
_ADMIN = require(Role.admin)


class TokenOut(BaseModel):
    id: str
    name: str
    role: str
    created_at: str | None
    created_by: str
    expires_at: str | None
    last_used_at: str | None
    revoked_at: str | None
    active: bool


class TokenCreate(BaseModel):
    role: Role
    name: str | None = Field(None, min_length=1, max_length=256)
    expires_in_days: int | None = Field(None, ge=1, le=3650)


class TokenCreated(BaseModel):
    id: str
    role: str
    token: str
    name: str
    expires_at: str | None


@router.get("", response_model=Paged[TokenOut])
def list_tokens(
    request: Request,
    include_revoked: bool = Query(False, description="Include revoked tokens."),
    page: PageParams = Depends(paging({"created_at", "name", "role"})),
    _: Principal = Depends(_ADMIN),
) -> dict:
    """Every token (never its secret)."""
    store: TokenStore = request.app.state.tokens
    items = [t.to_dict() for t in store.list(include_revoked)]
    sort = check_sort(page.sort, {"created_at", "name", "role"}, "created_at")
    items.sort(key=lambda t: (t[sort.lstrip("-")] or "", t["id"]), reverse=sort.startswith("-"))
    return paged(items[page.offset : page.offset + page.limit], len(items), page)


@router.post("", response_model=TokenCreated, status_code=201)
def create_token(
    body: TokenCreate, request: Request, who: Principal = Depends(_ADMIN)
) -> TokenCreated:
    """Create a token; the response is the only time its secret is shown."""
    expires = utcnow() + dt.timedelta(days=body.expires_in_days) if body.expires_in_days else None
    info, secret = request.app.state.tokens.create(
        body.role.value, body.name, created_by=who.actor, expires_at=expires
    )
    audit_detail(request, action="token.create", token_id=info.id, role=info.role)
    d = info.to_dict()
    return TokenCreated(
        id=info.id, role=info.role, token=secret, name=info.name, expires_at=d["expires_at"]
    )


@router.delete("/{token_id}", response_model=TokenOut, responses=error_responses(404))
def revoke_token(
    request: Request,
    token_id: str = Path(..., max_length=64),
    _: Principal = Depends(_ADMIN),
) -> dict:
    """Revoke a token; console sessions opened with it end too."""
    info = request.app.state.tokens.revoke(token_id)
    audit_detail(request, action="token.revoke", token_id=token_id)
    return info.to_dict()
