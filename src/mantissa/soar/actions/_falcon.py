"""CrowdStrike Falcon API client for the host actions: OAuth2 client credentials,
device actions (contain/lift_containment) and Real Time Response."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import quote

from mantissa.soar.actions import ActionContext, ActionError

_TOKENS: dict[str, tuple[str, float]] = {}


def headers(ctx: ActionContext, conn: Any) -> dict[str, str]:
    # falcon.crowdstrike.com/documentation/page/a2a7fc0e/crowdstrike-oauth2-based-apis
    base = str(conn.base_url).rstrip("/")
    cid = str(conn.option("client_id"))
    hit = _TOKENS.get(base + cid)
    if hit and hit[1] > time.time() + 60:
        token = hit[0]
    else:
        secret = conn.secret("client_secret") or ""
        ctx.secrets.append(secret)
        if ctx.dry_run:
            token = "dry-run"
        else:
            r = ctx.http(
                "POST",
                f"{base}/oauth2/token",
                headers={"Content-Type": "application/x-www-form-urlencoded"},
                content=f"client_id={quote(cid)}&client_secret={quote(secret)}",
                ok=(200, 201),
            )
            body = r.json()
            token = body["access_token"]
            _TOKENS[base + cid] = (token, time.time() + float(body.get("expires_in", 1799)))
    ctx.secrets.append(token)
    return {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}


def device_action(ctx: ActionContext, conn: Any, host_id: str, action: str) -> dict[str, Any]:
    base = str(conn.base_url).rstrip("/")
    r = ctx.http(
        "POST",
        f"{base}/devices/entities/devices-actions/v2",
        params={"action_name": action},
        headers=headers(ctx, conn),
        json={"ids": [host_id]},
        ok=(200, 202),
    )
    body = r.json()
    errs = body.get("errors") or []
    if errs:
        raise ActionError(f"falcon {action}: {errs[0].get('message', errs[0])}")
    return {
        "provider": "crowdstrike",
        "host_id": host_id,
        "action": action,
        "resources": [x.get("id") for x in body.get("resources") or []],
    }


def host_state(ctx: ActionContext, conn: Any, host_id: str) -> str | None:
    base = str(conn.base_url).rstrip("/")
    if ctx.dry_run:
        return None
    r = ctx.http(
        "GET",
        f"{base}/devices/entities/devices/v2",
        params={"ids": host_id},
        headers=headers(ctx, conn),
    )
    res = r.json().get("resources") or []
    return res[0].get("status") if res else None
