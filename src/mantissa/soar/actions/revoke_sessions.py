"""``revoke_sessions``: end a user's sessions (and refresh tokens)."""

from __future__ import annotations

from typing import Any

from mantissa.soar.actions import ActionContext, action
from mantissa.soar.actions._identity import VENDORS
from mantissa.soar.actions._identity import revoke_sessions as _revoke


@action("revoke_sessions", idempotency="natural", vendors=VENDORS)
def revoke_sessions(
    ctx: ActionContext,
    user_id: str,
    include_refresh_tokens: bool = True,
    connection: str | None = None,
) -> dict[str, Any]:
    """Revoke a user's sessions at the identity provider."""
    return _revoke(ctx, ctx.connection(connection, VENDORS), user_id, include_refresh_tokens)
