"""``block_ip``: add an address to an AWS WAFv2 IP set or a Cloudflare block rule."""

from __future__ import annotations

from typing import Any

from mantissa.soar.actions import ActionContext, action
from mantissa.soar.actions._network import VENDORS, cf_change, cidr, waf_change


@action("block_ip", idempotency="verify-first", vendors=VENDORS)
def block_ip(
    ctx: ActionContext,
    ip_address: str,
    duration: int | None = None,
    zones: list[str] | None = None,
    connection: str | None = None,
    reason: str = "blocked by a Mantissa playbook",
) -> dict[str, Any]:
    """Block ``ip_address`` (``duration`` seconds is recorded; unblock with ``unblock_ip``)."""
    conn = ctx.connection(connection, VENDORS)
    ip = cidr(ip_address)
    if conn.type == "aws_waf":
        out = waf_change(ctx, conn, ip, True)
    else:
        out = cf_change(ctx, conn, ip, zones or [], True, reason)
    return {**out, "duration": duration}
