"""``manual_task``: a step a person does by hand (from-plan's unmapped steps). Gated by an
approval, it records who confirmed it and when; it calls nothing."""

from __future__ import annotations

from typing import Any

from mantissa.soar.actions import ActionContext, DryRunStop, action


@action("manual_task", idempotency="natural")
def manual_task(ctx: ActionContext, instructions: str) -> dict[str, Any]:
    """Record that the manual task ``instructions`` was confirmed (via its approval)."""
    if ctx.dry_run:
        ctx.requests.append({"manual": instructions})
        raise DryRunStop()
    return {"instructions": instructions, "confirmed": True}
