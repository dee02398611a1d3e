"""``disable_user``: suspend an account (Okta suspend, Entra accountEnabled=false,
Google suspended=true, AWS IAM access keys Inactive)."""

from __future__ import annotations

from typing import Any

from mantissa.soar.actions import ActionContext, action
from mantissa.soar.actions._identity import VENDORS, set_enabled


@action("disable_user", idempotency="verify-first", vendors=VENDORS)
def disable_user(
    ctx: ActionContext, user_id: str, reason: str = "", connection: str | None = None
) -> dict[str, Any]:
    """Disable a user account at the identity provider."""
    conn = ctx.connection(connection, VENDORS)
    out = set_enabled(ctx, conn, user_id, False)
    return {**out, "reason": reason}
