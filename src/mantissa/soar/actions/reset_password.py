"""``reset_password``: force a password reset."""

from __future__ import annotations

from typing import Any

from mantissa.soar.actions import ActionContext, action
from mantissa.soar.actions._identity import VENDORS
from mantissa.soar.actions._identity import reset_password as _reset


@action("reset_password", idempotency="unsafe", vendors=VENDORS)
def reset_password(
    ctx: ActionContext,
    user_id: str,
    send_notification: bool = True,
    connection: str | None = None,
) -> dict[str, Any]:
    """Reset (or force a change of) a user's password; each call sends a new email."""
    return _reset(ctx, ctx.connection(connection, VENDORS), user_id, send_notification)
