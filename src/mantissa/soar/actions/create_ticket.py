"""``create_ticket``: open a ticket through a Jira or ServiceNow destination of the alerts
config. Keyed: the ticket carries a label/correlation id derived from the execution and
step, and the destination looks it up before creating, so a re-run finds it."""

from __future__ import annotations

import hashlib
from typing import Any

from mantissa.soar.actions import ActionContext, ActionError, DryRunStop, action


def ticket_alert(ctx: ActionContext, title: str, description: str, severity: str) -> Any:
    from mantissa.alerts.destinations.base import message_alert

    alert = message_alert(title, description, severity=severity, source="mantissa-soar")
    # a stable id: the destination's find-before-create makes the call idempotent
    alert.id = "soar_" + hashlib.sha256(ctx.idempotency_key.encode()).hexdigest()[:16]
    return alert


@action("create_ticket", idempotency="verify-first")
def create_ticket(
    ctx: ActionContext,
    system: str,
    title: str,
    description: str = "",
    project: str | None = None,
    severity: str = "high",
) -> dict[str, Any]:
    """Create a ticket in destination ``system`` (a jira or servicenow destination id)."""
    from mantissa.alerts.destinations.base import Delivery
    from mantissa.alerts.routing import load_destination
    from mantissa.errors import DeliveryError

    dest = load_destination(ctx.runtime, system)
    if dest.type not in ("jira", "servicenow"):
        raise ActionError(
            f"create_ticket: destination {system!r} is {dest.type}, not jira/servicenow"
        )
    if project and dest.type == "jira":
        dest.config.project = project  # type: ignore[attr-defined]
    if ctx.dry_run:
        ctx.requests.append(
            {
                "destination": system,
                "type": dest.type,
                "title": title,
                "project": project,
                "description": description,
            }
        )
        raise DryRunStop()
    try:
        receipt = dest.send(
            Delivery(
                alert=ticket_alert(ctx, title, description, severity),
                kind="trigger",
                idempotency_key=ctx.idempotency_key,
                destination_id=system,
            )
        )
    except DeliveryError as exc:
        raise ActionError(f"create_ticket via {system}: {ctx.mask(exc.message)}") from None
    finally:
        dest.close()
    ctx.audit(
        {
            "event": "call",
            "method": "SEND",
            "host": system,
            "path": dest.type,
            "status": "created" if receipt.get("created") else "found",
        }
    )
    return {"system": system, "type": dest.type, **receipt}
