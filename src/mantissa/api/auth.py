"""API tokens, console sessions, roles and the audit log.

* **Tokens** (``mantissa tokens create``) are random 256-bit secrets shown once; the
  state store keeps only their SHA-256 (a token has full entropy, so a fast hash is the
  right tool: nothing to brute-force, lookups stay one indexed read).
* **Roles** are ordered ``viewer < analyst < engineer < responder < admin``; ``ingest``
  stands apart: it writes data (OTLP, collectors) and reads nothing. ``admin`` may do
  everything, ``ingest`` included.
* **Sessions**: the console signs in with a token and gets an HttpOnly, SameSite=Strict
  cookie (``Secure`` over https) naming a server-side session, plus a CSRF token that
  every unsafe request made with the cookie must echo in ``X-CSRF-Token``.
* **Audit**: every mutating call (who, what, when, outcome) is appended to ``api_audit``.

Routes declare what they need with ``Depends(require("analyst"))``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import inspect
import secrets
import time
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from mantissa.errors import Forbidden, NotFound, StateError, Unauthorized
from mantissa.state.store import StateStore, as_utc, metadata, utcnow

if TYPE_CHECKING:
    from starlette.requests import Request


class Role(StrEnum):
    """What a token may do; the first five are ordered, ``ingest`` only writes data."""

    viewer = "viewer"
    analyst = "analyst"
    engineer = "engineer"
    responder = "responder"
    admin = "admin"
    ingest = "ingest"


ORDERED_ROLES = (Role.viewer, Role.analyst, Role.engineer, Role.responder, Role.admin)
_RANK = {r: i for i, r in enumerate(ORDERED_ROLES)}

TOKEN_PREFIX = "mnt_"
SESSION_COOKIE = "mantissa_session"
CSRF_HEADER = "X-CSRF-Token"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# last_used_at is written at most this often per token (a read per request, not a write)
_TOUCH_SECS = 60.0
# a verified token or session is trusted this long without another database read; a
# revocation in this process applies at once, one made elsewhere (the CLI) within this
CACHE_SECS = 5.0

api_tokens = sa.Table(
    "api_tokens",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("name", sa.String(256), nullable=False),
    sa.Column("role", sa.String(32), nullable=False),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("created_by", sa.String(256), nullable=False),
    sa.Column("expires_at", sa.DateTime(timezone=True)),
    sa.Column("last_used_at", sa.DateTime(timezone=True)),
    sa.Column("revoked_at", sa.DateTime(timezone=True)),
)

api_sessions = sa.Table(
    "api_sessions",
    metadata,
    sa.Column("session_hash", sa.String(64), primary_key=True),
    sa.Column("token_id", sa.String(32), nullable=False, index=True),
    sa.Column("csrf_token", sa.String(64), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False, index=True),
)

api_audit = sa.Table(
    "api_audit",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("actor", sa.String(256), nullable=False),
    sa.Column("token_id", sa.String(32), index=True),
    sa.Column("role", sa.String(32)),
    sa.Column("via", sa.String(16)),
    sa.Column("method", sa.String(8), nullable=False),
    sa.Column("path", sa.String(2048), nullable=False),
    sa.Column("route", sa.String(512)),
    sa.Column("status", sa.Integer, nullable=False),
    sa.Column("client", sa.String(64)),
    sa.Column("request_id", sa.String(64)),
    sa.Column("detail", sa.JSON),
)


def role_allows(have: str, need: str) -> bool:
    """True when a principal with role ``have`` may call something that needs ``need``."""
    if have == Role.admin:
        return True
    if need == Role.ingest or have == Role.ingest:
        return have == need
    return _RANK[Role(have)] >= _RANK[Role(need)]


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True)
class Principal:
    """Who is calling: the token (directly or through a console session) and its role."""

    token_id: str
    name: str
    role: str
    via: str  # "token" | "session"
    csrf_token: str | None = None

    @property
    def actor(self) -> str:
        return f"{self.name} ({self.token_id})"


@dataclass
class TokenInfo:
    id: str
    name: str
    role: str
    created_at: dt.datetime
    created_by: str
    expires_at: dt.datetime | None
    last_used_at: dt.datetime | None
    revoked_at: dt.datetime | None

    @property
    def active(self) -> bool:
        if self.revoked_at is not None:
            return False
        return self.expires_at is None or self.expires_at > utcnow()

    def to_dict(self) -> dict[str, Any]:
        def iso(v: dt.datetime | None) -> str | None:
            return v.isoformat().replace("+00:00", "Z") if v else None

        return {
            "id": self.id,
            "name": self.name,
            "role": self.role,
            "created_at": iso(self.created_at),
            "created_by": self.created_by,
            "expires_at": iso(self.expires_at),
            "last_used_at": iso(self.last_used_at),
            "revoked_at": iso(self.revoked_at),
            "active": self.active,
        }


def _info(row: Any) -> TokenInfo:
    return TokenInfo(
        id=row["id"],
        name=row["name"],
        role=row["role"],
        created_at=as_utc(row["created_at"]),  # type: ignore[arg-type]
        created_by=row["created_by"],
        expires_at=as_utc(row["expires_at"]),
        last_used_at=as_utc(row["last_used_at"]),
        revoked_at=as_utc(row["revoked_at"]),
    )


class TokenStore:
    """API tokens and console sessions in the state store."""

    def __init__(self, state: StateStore, session_ttl_secs: int = 12 * 3600) -> None:
        self.state = state
        self.session_ttl_secs = session_ttl_secs
        self._touched: dict[str, float] = {}
        # digest → (principal, token expiry, monotonic time it was read)
        self._cache: dict[str, tuple[Principal, dt.datetime | None, float]] = {}

    def _cached(self, digest: str) -> Principal | None:
        hit = self._cache.get(digest)
        if hit is None:
            return None
        principal, expires_at, read_at = hit
        if time.monotonic() - read_at > CACHE_SECS or (
            expires_at is not None and expires_at <= utcnow()
        ):
            self._cache.pop(digest, None)
            return None
        return principal

    def _remember(self, digest: str, principal: Principal, expires_at: dt.datetime | None) -> None:
        if len(self._cache) > 10_000:
            self._cache.clear()  # bounded: a flood of distinct credentials cannot grow it
        self._cache[digest] = (principal, expires_at, time.monotonic())

    def forget(self, token_id: str | None = None) -> None:
        """Drop cached credentials (of one token, or all)."""
        if token_id is None:
            self._cache.clear()
            return
        for k in [k for k, v in self._cache.items() if v[0].token_id == token_id]:
            self._cache.pop(k, None)

    # -- tokens ---------------------------------------------------------------
    def create(
        self,
        role: str,
        name: str | None = None,
        created_by: str = "cli",
        expires_at: dt.datetime | None = None,
    ) -> tuple[TokenInfo, str]:
        """A new token of ``role``; returns its record and the secret (shown only now)."""
        role = Role(role).value
        token_id = "tok_" + secrets.token_hex(6)
        secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
        now = utcnow()
        values = {
            "id": token_id,
            "name": (name or f"{role}-{token_id[4:]}")[:256],
            "role": role,
            "token_hash": hash_secret(secret),
            "created_at": now,
            "created_by": created_by[:256],
            "expires_at": expires_at,
            "last_used_at": None,
            "revoked_at": None,
        }
        with self.state.begin() as conn:
            conn.execute(api_tokens.insert().values(**values))
        return _info(values), secret

    def list(self, include_revoked: bool = False) -> list[TokenInfo]:
        q = sa.select(api_tokens).order_by(api_tokens.c.created_at, api_tokens.c.id)
        if not include_revoked:
            q = q.where(api_tokens.c.revoked_at.is_(None))
        with self.state.engine.connect() as conn:
            return [_info(r) for r in conn.execute(q).mappings()]

    def get(self, token_id: str) -> TokenInfo:
        with self.state.engine.connect() as conn:
            row = (
                conn.execute(sa.select(api_tokens).where(api_tokens.c.id == token_id))
                .mappings()
                .first()
            )
        if row is None:
            raise NotFound(f"token {token_id} not found", hint="see `mantissa tokens list`")
        return _info(row)

    def revoke(self, token_id: str) -> TokenInfo:
        """Revoke a token and end every console session opened with it (idempotent)."""
        now = utcnow()
        with self.state.begin() as conn:
            res = conn.execute(
                api_tokens.update()
                .where(api_tokens.c.id == token_id, api_tokens.c.revoked_at.is_(None))
                .values(revoked_at=now)
            )
            if not res.rowcount:
                exists = conn.execute(
                    sa.select(api_tokens.c.id).where(api_tokens.c.id == token_id)
                ).first()
                if exists is None:
                    raise NotFound(f"token {token_id} not found", hint="see `mantissa tokens list`")
            conn.execute(api_sessions.delete().where(api_sessions.c.token_id == token_id))
        self.forget(token_id)
        return self.get(token_id)

    def authenticate(self, secret: str) -> Principal:
        """The principal of a bearer token; :class:`Unauthorized` when unknown or not active."""
        if not secret or len(secret) > 512:
            raise Unauthorized("invalid API token")
        digest = hash_secret(secret)
        cached = self._cached(digest)
        if cached is not None:
            return cached
        try:
            with self.state.engine.connect() as conn:
                row = (
                    conn.execute(sa.select(api_tokens).where(api_tokens.c.token_hash == digest))
                    .mappings()
                    .first()
                )
        except sa.exc.SQLAlchemyError as exc:
            raise StateError(f"cannot read tokens: {type(exc).__name__}") from None
        # compare again in constant time: the lookup itself found it by hash
        if row is None or not hmac.compare_digest(row["token_hash"], digest):
            raise Unauthorized("invalid API token", hint="create one with `mantissa tokens create`")
        info = _info(row)
        if info.revoked_at is not None:
            raise Unauthorized("this API token was revoked")
        if info.expires_at is not None and info.expires_at <= utcnow():
            raise Unauthorized("this API token has expired")
        self._touch(info.id)
        principal = Principal(info.id, info.name, info.role, "token")
        self._remember(digest, principal, info.expires_at)
        return principal

    def _touch(self, token_id: str) -> None:
        now = time.monotonic()
        if now - self._touched.get(token_id, -1e9) < _TOUCH_SECS:
            return
        self._touched[token_id] = now
        try:
            with self.state.begin() as conn:
                conn.execute(
                    api_tokens.update()
                    .where(api_tokens.c.id == token_id)
                    .values(last_used_at=utcnow())
                )
        except sa.exc.OperationalError:
            pass  # a busy database must not fail a read; last_used_at is informational

    # -- console sessions ------------------------------------------------------
    def open_session(self, principal: Principal) -> tuple[str, str, dt.datetime]:
        """A console session for ``principal``: (cookie value, CSRF token, expiry)."""
        sid = secrets.token_urlsafe(32)
        csrf = secrets.token_urlsafe(32)
        now = utcnow()
        expires = now + dt.timedelta(seconds=self.session_ttl_secs)
        with self.state.begin() as conn:
            conn.execute(api_sessions.delete().where(api_sessions.c.expires_at < now))
            conn.execute(
                api_sessions.insert().values(
                    session_hash=hash_secret(sid),
                    token_id=principal.token_id,
                    csrf_token=csrf,
                    created_at=now,
                    expires_at=expires,
                )
            )
        return sid, csrf, expires

    def session(self, sid: str) -> Principal:
        """The principal behind a session cookie (its token must still be active)."""
        if not sid or len(sid) > 256:
            raise Unauthorized("invalid session", hint="sign in again")
        digest = "session:" + hash_secret(sid)
        cached = self._cached(digest)
        if cached is not None:
            return cached
        with self.state.engine.connect() as conn:
            row = (
                conn.execute(
                    sa.select(api_sessions, api_tokens)
                    .join(api_tokens, api_tokens.c.id == api_sessions.c.token_id)
                    .where(api_sessions.c.session_hash == hash_secret(sid))
                )
                .mappings()
                .first()
            )
        if row is None:
            raise Unauthorized("your session has ended", hint="sign in again")
        expires = as_utc(row["expires_at"])
        if expires is None or expires <= utcnow():
            raise Unauthorized("your session has expired", hint="sign in again")
        info = _info(row)
        if not info.active:
            raise Unauthorized("the token behind this session is no longer valid")
        self._touch(info.id)
        principal = Principal(info.id, info.name, info.role, "session", row["csrf_token"])
        soonest = min(expires, info.expires_at) if info.expires_at else expires
        self._remember(digest, principal, soonest)
        return principal

    def close_session(self, sid: str) -> None:
        self._cache.pop("session:" + hash_secret(sid), None)
        with self.state.begin() as conn:
            conn.execute(
                api_sessions.delete().where(api_sessions.c.session_hash == hash_secret(sid))
            )


class AuditLog:
    """Append-only record of mutating API calls."""

    def __init__(self, state: StateStore) -> None:
        self.state = state

    def record(
        self,
        *,
        principal: Principal | None,
        method: str,
        path: str,
        route: str | None,
        status: int,
        client: str | None,
        request_id: str | None,
        detail: dict[str, Any] | None = None,
    ) -> None:
        with self.state.begin() as conn:
            conn.execute(
                api_audit.insert().values(
                    at=utcnow(),
                    actor=principal.actor if principal else "anonymous",
                    token_id=principal.token_id if principal else None,
                    role=principal.role if principal else None,
                    via=principal.via if principal else None,
                    method=method,
                    path=path[:2048],
                    route=route,
                    status=status,
                    client=client,
                    request_id=request_id,
                    detail=detail,
                )
            )

    def list(
        self,
        *,
        actor: str | None = None,
        token_id: str | None = None,
        method: str | None = None,
        since: dt.datetime | None = None,
        until: dt.datetime | None = None,
        limit: int = 50,
        offset: int = 0,
        sort: str = "-at",
    ) -> tuple[list[dict[str, Any]], int]:
        conds: list[Any] = []
        if actor:
            conds.append(api_audit.c.actor.like(f"%{actor}%"))
        if token_id:
            conds.append(api_audit.c.token_id == token_id)
        if method:
            conds.append(api_audit.c.method == method.upper())
        if since:
            conds.append(api_audit.c.at >= since)
        if until:
            conds.append(api_audit.c.at < until)
        where = sa.and_(sa.true(), *conds)
        order = api_audit.c.id.desc() if sort.startswith("-") else api_audit.c.id.asc()
        with self.state.engine.connect() as conn:
            total = int(
                conn.execute(
                    sa.select(sa.func.count()).select_from(api_audit).where(where)
                ).scalar_one()
            )
            rows = (
                conn.execute(
                    sa.select(api_audit).where(where).order_by(order).limit(limit).offset(offset)
                )
                .mappings()
                .all()
            )
        out = []
        for r in rows:
            d = dict(r)
            at = as_utc(d["at"])
            d["at"] = at.isoformat().replace("+00:00", "Z") if at else None
            out.append(d)
        return out, total


# -- FastAPI dependencies ---------------------------------------------------------


def current_principal(request: Request) -> Principal:
    """Authenticate the request (bearer token, else console session cookie)."""
    cached = getattr(request.state, "principal", None)
    if isinstance(cached, Principal):
        return cached
    tokens: TokenStore = request.app.state.tokens
    header = request.headers.get("authorization")
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise Unauthorized(
                "the Authorization header must be 'Bearer <token>'",
                hint="create a token with `mantissa tokens create --role viewer`",
            )
        principal = tokens.authenticate(value.strip())
    else:
        sid = request.cookies.get(SESSION_COOKIE)
        if not sid:
            raise Unauthorized(
                "authentication required",
                hint="send 'Authorization: Bearer <token>' or sign in to the console",
            )
        principal = tokens.session(sid)
        if request.method in UNSAFE_METHODS:
            sent = request.headers.get(CSRF_HEADER, "")
            if not principal.csrf_token or not hmac.compare_digest(sent, principal.csrf_token):
                # state-changing calls riding on the cookie must prove they come from our page
                raise Forbidden(
                    "missing or wrong CSRF token", hint=f"send the {CSRF_HEADER} header"
                )
    request.state.principal = principal
    return principal


def require(role: str | Role) -> Any:
    """A dependency that authenticates the caller and checks it has ``role`` (or better)."""
    need = Role(role)

    def dependency(request: Request) -> Principal:
        principal = current_principal(request)
        if not role_allows(principal.role, need):
            raise Forbidden(
                f"this needs role {need.value}; your token has role {principal.role}",
                hint="ask an admin for a token with the right role",
            )
        return principal

    # this module is imported by every CLI command (its tables): the web stack is
    # imported only when an app asks for a dependency, and handed to FastAPI this way
    from starlette.requests import Request

    dependency.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [inspect.Parameter("request", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=Request)],
        return_annotation=Principal,
    )
    dependency.required_role = need  # type: ignore[attr-defined]
    dependency.__name__ = f"require_{need.value}"
    return dependency
