"""``unblock_ip``: undo ``block_ip``."""

from __future__ import annotations

from typing import Any

from mantissa.soar.actions import ActionContext, action
from mantissa.soar.actions._network import VENDORS, cf_change, cidr, waf_change


@action("unblock_ip", idempotency="verify-first", vendors=VENDORS)
def unblock_ip(
    ctx: ActionContext,
    ip_address: str,
    zones: list[str] | None = None,
    connection: str | None = None,
) -> dict[str, Any]:
    """Remove ``ip_address`` from the WAF IP set / Cloudflare block rules."""
    conn = ctx.connection(connection, VENDORS)
    ip = cidr(ip_address)
    if conn.type == "aws_waf":
        return waf_change(ctx, conn, ip, False)
    return cf_change(ctx, conn, ip, zones or [], False, "")
