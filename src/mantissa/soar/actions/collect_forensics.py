"""``collect_forensics``: run read-only Real Time Response commands on a Falcon host."""

from __future__ import annotations

from typing import Any

from mantissa.soar.actions import ActionContext, ActionError, action
from mantissa.soar.actions._falcon import headers

# read-only RTR commands per collection type (no put/run: nothing changes on the host)
COMMANDS = {
    "triage": ["ps", "netstat", "ipconfig"],
    "processes": ["ps"],
    "network": ["netstat", "ipconfig"],
    "users": ["users"],
}


@action("collect_forensics", idempotency="natural", vendors=("crowdstrike",))
def collect_forensics(
    ctx: ActionContext,
    host_id: str,
    collection_type: str = "triage",
    connection: str | None = None,
) -> dict[str, Any]:
    """Open an RTR session and run the ``collection_type`` commands; returns their output
    (falcon.crowdstrike.com/documentation: Real Time Response APIs)."""
    if collection_type not in COMMANDS:
        raise ActionError(f"collection_type is one of {', '.join(COMMANDS)}")
    conn = ctx.connection(connection, ("crowdstrike",))
    base = str(conn.base_url).rstrip("/")
    h = headers(ctx, conn)
    r = ctx.http(
        "POST",
        f"{base}/real-time-response/entities/sessions/v1",
        headers=h,
        json={"device_id": host_id, "origin": "mantissa", "queue_offline": False},
        ok=(200, 201),
    )
    session_id = r.json()["resources"][0]["session_id"]
    results = {}
    for cmd in COMMANDS[collection_type]:
        r = ctx.http(
            "POST",
            f"{base}/real-time-response/entities/command/v1",
            headers=h,
            json={"base_command": cmd, "command_string": cmd, "session_id": session_id},
            ok=(200, 201),
        )
        res = (r.json().get("resources") or [{}])[0]
        results[cmd] = {
            "stdout": str(res.get("stdout", ""))[:20000],
            "stderr": str(res.get("stderr", ""))[:2000],
            "complete": res.get("complete"),
        }
    ctx.http(
        "DELETE",
        f"{base}/real-time-response/entities/sessions/v1",
        params={"session_id": session_id},
        headers=h,
        ok=(200, 204, 404),
    )
    return {
        "provider": "crowdstrike",
        "host_id": host_id,
        "session_id": session_id,
        "results": results,
    }
