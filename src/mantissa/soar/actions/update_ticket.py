"""``update_ticket``: comment on (and optionally transition) a Jira issue or ServiceNow
incident through a destination of the alerts config."""

from __future__ import annotations

from typing import Any

from mantissa.soar.actions import ActionContext, ActionError, DryRunStop, action


@action("update_ticket", idempotency="unsafe")
def update_ticket(
    ctx: ActionContext,
    system: str,
    ticket_id: str,
    comment: str = "",
    status: str | None = None,
) -> dict[str, Any]:
    """Add ``comment`` to ticket ``ticket_id`` (Jira key / ServiceNow sys_id); set ``status``
    (a Jira transition name, a ServiceNow state number)."""
    from mantissa.alerts.routing import load_destination
    from mantissa.errors import DeliveryError

    dest: Any = load_destination(ctx.runtime, system)
    if ctx.dry_run:
        ctx.requests.append(
            {
                "destination": system,
                "type": dest.type,
                "ticket_id": ticket_id,
                "comment": comment,
                "status": status,
            }
        )
        raise DryRunStop()
    out: dict[str, Any] = {"system": system, "ticket_id": ticket_id}
    try:
        if dest.type == "jira":
            if comment:
                dest.comment(ticket_id, comment)
                out["commented"] = True
            if status:
                out["transition"] = dest.transition(ticket_id, status)
        elif dest.type == "servicenow":
            patch: dict[str, Any] = {}
            if comment:
                patch["work_notes"] = comment
            if status:
                patch["state"] = status
            dest.http("PATCH", dest._url(f"/{ticket_id}"), json=patch, headers=dest._headers())
            out["updated"] = True
        else:
            raise ActionError(f"update_ticket: destination {system!r} is {dest.type}")
    except DeliveryError as exc:
        raise ActionError(f"update_ticket via {system}: {ctx.mask(exc.message)}") from None
    finally:
        dest.close()
    ctx.audit(
        {"event": "call", "method": "SEND", "host": system, "path": dest.type, "status": "ok"}
    )
    return out
