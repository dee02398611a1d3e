"""``mantissa tokens create|list|revoke``: API tokens (stored hashed, shown once)."""

from __future__ import annotations

import datetime as dt

import typer

from mantissa.cli.app import Format, app, runtime
from mantissa.cli.output import console, err_console, print_csv, print_json, print_table

tokens_app = typer.Typer(help="API tokens for the HTTP API and the console.", no_args_is_help=True)
app.add_typer(tokens_app, name="tokens")

_ROLES = "viewer, analyst, engineer, responder, admin or ingest"


def _store(ctx: typer.Context):
    from mantissa.api.auth import TokenStore

    return TokenStore(runtime(ctx).state)


@tokens_app.command("create")
def create(
    ctx: typer.Context,
    role: str = typer.Option(..., "--role", help=f"One of {_ROLES}."),
    name: str | None = typer.Option(None, "--name", help="A name to recognise the token by."),
    expires_days: int | None = typer.Option(
        None, "--expires-days", min=1, help="Expire after this many days (default: never)."
    ),
    fmt: Format = typer.Option(Format.table, "--format", "-f"),
) -> None:
    """Create a token; its secret is printed once and never stored."""
    from mantissa.api.auth import Role
    from mantissa.errors import ConfigError
    from mantissa.state.store import utcnow

    try:
        role_ = Role(role.strip().lower())
    except ValueError:
        raise ConfigError(f"unknown role {role!r}", hint=f"use {_ROLES}") from None
    expires = utcnow() + dt.timedelta(days=expires_days) if expires_days else None
    info, secret = _store(ctx).create(role_.value, name, created_by="cli", expires_at=expires)
    if fmt == Format.json:
        print_json({"id": info.id, "role": info.role, "token": secret})
        return
    console.print(f"token id: {info.id}   role: {info.role}   name: {info.name}")
    console.print(secret, highlight=False, soft_wrap=True)
    err_console.print("[dim]Store it now: it is not shown again (only its hash is kept).[/]")


@tokens_app.command("list")
def list_(
    ctx: typer.Context,
    all_: bool = typer.Option(False, "--all", help="Include revoked tokens."),
    fmt: Format = typer.Option(Format.table, "--format", "-f"),
) -> None:
    """List tokens (never their secrets)."""
    rows = [t.to_dict() for t in _store(ctx).list(include_revoked=all_)]
    if fmt == Format.json:
        print_json(rows)
        return
    cols = ["id", "name", "role", "created_at", "last_used_at", "expires_at", "revoked_at"]
    table = [[r[c] for c in cols] for r in rows]
    if fmt == Format.csv:
        print_csv(cols, table)
    else:
        print_table(cols, table, title="API tokens")


@tokens_app.command("revoke")
def revoke(
    ctx: typer.Context,
    token_id: str = typer.Argument(..., help="The token id (tok_...), see `tokens list`."),
    fmt: Format = typer.Option(Format.table, "--format", "-f"),
) -> None:
    """Revoke a token and the console sessions opened with it (a running server notices
    within 5 seconds)."""
    info = _store(ctx).revoke(token_id)
    if fmt == Format.json:
        print_json(info.to_dict())
    else:
        console.print(f"revoked {info.id} ({info.name}, role {info.role})")
