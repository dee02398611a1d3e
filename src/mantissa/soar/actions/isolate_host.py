"""``isolate_host``: network-contain a host with CrowdStrike Falcon."""

from __future__ import annotations

from typing import Any

from mantissa.soar.actions import ActionContext, action
from mantissa.soar.actions._falcon import device_action, host_state


@action("isolate_host", idempotency="verify-first", vendors=("crowdstrike",))
def isolate_host(
    ctx: ActionContext,
    host_id: str,
    isolation_level: str = "full",
    connection: str | None = None,
) -> dict[str, Any]:
    """Contain ``host_id`` (Falcon ``contain``); a host already contained is left as is."""
    conn = ctx.connection(connection, ("crowdstrike",))
    if host_state(ctx, conn, host_id) in ("contained", "containment_pending"):
        return {"provider": "crowdstrike", "host_id": host_id, "changed": False}
    return {
        **device_action(ctx, conn, host_id, "contain"),
        "changed": True,
        "isolation_level": isolation_level,
    }
