"""``send_notification``: a message through a destination of the alerts config."""

from __future__ import annotations

from typing import Any

from mantissa.soar.actions import ActionContext, ActionError, DryRunStop, action


def deliver(
    ctx: ActionContext, destination: str, title: str, message: str, kind: str, extra: dict[str, Any]
) -> dict[str, Any]:
    from mantissa.alerts.destinations.base import Delivery, message_alert
    from mantissa.alerts.routing import load_destination
    from mantissa.errors import DeliveryError

    dest = load_destination(ctx.runtime, destination)
    if ctx.dry_run:
        ctx.requests.append(
            {
                "destination": destination,
                "type": dest.type,
                "title": title,
                "message": message,
                "kind": kind,
                **extra,
            }
        )
        raise DryRunStop()
    alert = message_alert(title, message, source="mantissa-soar")
    try:
        receipt = dest.send(
            Delivery(
                alert=alert,
                kind=kind,
                idempotency_key=ctx.idempotency_key,
                destination_id=destination,
                extra=extra,
            )
        )
    except DeliveryError as exc:
        raise ActionError(f"{destination}: {ctx.mask(exc.message)}") from None
    finally:
        dest.close()
    ctx.audit(
        {"event": "call", "method": "SEND", "host": destination, "path": dest.type, "status": "ok"}
    )
    return {"destination": destination, "type": dest.type, "receipt": ctx.mask(receipt or {})}


@action("send_notification", idempotency="keyed")
def send_notification(
    ctx: ActionContext,
    message: str,
    channel: str | None = None,
    service: str | None = None,
    destination: str | None = None,
    title: str = "Mantissa playbook",
) -> dict[str, Any]:
    """Send ``message`` to a configured destination (Slack, Teams, PagerDuty, email, webhook)."""
    dest = destination or channel or service
    if not dest:
        raise ActionError("send_notification: set destination (or channel/service)")
    return deliver(ctx, dest, title, message, "trigger", {"channel": channel} if channel else {})
