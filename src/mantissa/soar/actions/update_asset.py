"""``update_asset``: record an asset's status and tags in the state store."""

from __future__ import annotations

from typing import Any

from mantissa.soar.actions import ActionContext, ActionError, DryRunStop, action
from mantissa.state.store import utcnow


@action("update_asset", idempotency="natural")
def update_asset(
    ctx: ActionContext, asset_id: str, status: str | None = None, tags: list[str] | None = None
) -> dict[str, Any]:
    """Set ``status`` and add ``tags`` on asset ``asset_id`` (namespace ``assets``)."""
    if not asset_id or len(asset_id) > 256:
        raise ActionError("update_asset: asset_id must be 1-256 characters")
    if ctx.dry_run:
        ctx.requests.append({"asset_id": asset_id, "status": status, "tags": tags})
        raise DryRunStop()
    doc = dict(ctx.runtime.state.get("assets", asset_id) or {"id": asset_id, "tags": []})
    if status is not None:
        doc["status"] = status
    doc["tags"] = sorted(set(doc.get("tags", [])) | set(tags or []))
    doc["updated_at"] = utcnow().isoformat()
    doc["updated_by"] = f"execution {ctx.execution_id}"
    ctx.runtime.state.put("assets", asset_id, doc)
    return doc
