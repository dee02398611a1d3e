"""``enable_user``: undo ``disable_user``."""

from __future__ import annotations

from typing import Any

from mantissa.soar.actions import ActionContext, action
from mantissa.soar.actions._identity import VENDORS, set_enabled


@action("enable_user", idempotency="verify-first", vendors=VENDORS)
def enable_user(ctx: ActionContext, user_id: str, connection: str | None = None) -> dict[str, Any]:
    """Re-enable a user account at the identity provider."""
    return set_enabled(ctx, ctx.connection(connection, VENDORS), user_id, True)
