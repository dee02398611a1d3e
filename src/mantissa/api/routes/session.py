"""Console sign-in: ``POST /auth/login`` trades a token for a session cookie plus a CSRF
token; ``POST /auth/logout`` ends it; ``GET /auth/me`` says who is signed in."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, Field

from mantissa.api.auth import SESSION_COOKIE, Principal, Role, TokenStore, require
from mantissa.api.middleware import audit_detail
from mantissa.errors import Forbidden

router = APIRouter(prefix="/auth", tags=["auth"])


class LoginIn(BaseModel):
    token: str = Field(..., min_length=1, max_length=512)


class Me(BaseModel):
    id: str
    name: str
    role: str
    via: str


class SessionOut(BaseModel):
    csrf_token: str
    expires_at: str
    principal: Me


def _me(p: Principal) -> Me:
    return Me(id=p.token_id, name=p.name, role=p.role, via=p.via)


@router.post("/login", response_model=SessionOut)
def login(body: LoginIn, request: Request, response: Response) -> SessionOut:
    """Sign in to the console with an API token; sets an HttpOnly session cookie."""
    tokens: TokenStore = request.app.state.tokens
    principal = tokens.authenticate(body.token.strip())
    request.state.principal = principal
    if principal.role == Role.ingest:
        raise Forbidden("ingest tokens only send data; they cannot sign in to the console")
    sid, csrf, expires = tokens.open_session(principal)
    secure = request.app.state.config.cookie_secure
    if secure is None:
        secure = request.url.scheme == "https"
    response.set_cookie(
        SESSION_COOKIE,
        sid,
        max_age=tokens.session_ttl_secs,
        httponly=True,
        secure=secure,
        samesite="strict",
        path="/",
    )
    audit_detail(request, action="login")
    return SessionOut(
        csrf_token=csrf,
        expires_at=expires.isoformat().replace("+00:00", "Z"),
        principal=_me(principal),
    )


@router.post("/logout", status_code=204, response_class=Response)
def logout(request: Request, _: Principal = Depends(require(Role.viewer))) -> Response:
    """End the console session (its cookie is cleared)."""
    sid = request.cookies.get(SESSION_COOKIE)
    if sid:
        request.app.state.tokens.close_session(sid)
    response = Response(status_code=204)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/me", response_model=Me)
def me(who: Principal = Depends(require(Role.viewer))) -> Me:
    """The caller's token id, name and role."""
    return _me(who)
