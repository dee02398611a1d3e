"""``revoke_api_keys``: deactivate a user's API keys/tokens."""

from __future__ import annotations

from typing import Any

from mantissa.soar.actions import ActionContext, action
from mantissa.soar.actions._identity import VENDORS
from mantissa.soar.actions._identity import revoke_api_keys as _revoke


@action("revoke_api_keys", idempotency="verify-first", vendors=VENDORS)
def revoke_api_keys(
    ctx: ActionContext, user_id: str, scope: str = "all", connection: str | None = None
) -> dict[str, Any]:
    """Deactivate a user's API keys (AWS IAM access keys to Inactive, Okta API tokens)."""
    return _revoke(ctx, ctx.connection(connection, VENDORS), user_id, scope)
