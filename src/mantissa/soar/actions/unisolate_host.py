"""``unisolate_host``: lift CrowdStrike Falcon network containment."""

from __future__ import annotations

from typing import Any

from mantissa.soar.actions import ActionContext, action
from mantissa.soar.actions._falcon import device_action, host_state


@action("unisolate_host", idempotency="verify-first", vendors=("crowdstrike",))
def unisolate_host(
    ctx: ActionContext, host_id: str, connection: str | None = None
) -> dict[str, Any]:
    """Lift containment of ``host_id`` (Falcon ``lift_containment``)."""
    conn = ctx.connection(connection, ("crowdstrike",))
    if host_state(ctx, conn, host_id) == "normal":
        return {"provider": "crowdstrike", "host_id": host_id, "changed": False}
    return {**device_action(ctx, conn, host_id, "lift_containment"), "changed": True}
