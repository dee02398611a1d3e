"""Self-granted privilege: the actor of a role / privilege grant is its target (same
account, or the same person by e-mail local part) (MITRE T1098)."""

from __future__ import annotations

from typing import Any

from mantissa.alerts.model import Severity
from mantissa.identity.detections.base import Context, Detection


class SelfGrant(Detection):
    name = "self_grant"
    title = "Privilege granted to oneself"
    stage = "privilege_escalation"
    attack = ("attack.privilege_escalation", "attack.t1098")

    def find(self, ctx: Context) -> list[dict[str, Any]]:
        return ctx.rows(
            """
SELECT actor AS "user", any_value(provider) AS provider, any_value(user_id) AS user_id,
  any_value(session_id) AS session_id, any_value(src_ip) AS src_ip, list(DISTINCT role) AS roles,
  min(event_time) AS first_seen, max(event_time) AS last_seen, count(*) AS n,
  list(event_id ORDER BY event_time)[1:20] AS ids
FROM ev
WHERE in_window AND action = 'priv_grant' AND outcome IS DISTINCT FROM 'failure'
  AND actor IS NOT NULL AND target IS NOT NULL
  AND (actor = target OR split_part(actor, '@', 1) = split_part(target, '@', 1))
GROUP BY actor
"""
        )

    def explain(self, row: dict[str, Any], ctx: Context) -> tuple[str, Severity, dict[str, Any]]:
        roles = ", ".join(r for r in row["roles"] if r) or "a privilege"
        text = (
            f"{row['user']} granted {roles} to their own account on {row['provider']} "
            f"from {row['src_ip']}"
        )
        return text, Severity.critical, {}
