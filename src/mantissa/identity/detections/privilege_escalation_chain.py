"""Privilege escalation chain: an account is granted a role and then uses privileged
operations (grants, tokens, MFA changes, directory/IAM writes) within the window
(MITRE T1098.003)."""

from __future__ import annotations

from typing import Any

from mantissa.alerts.model import Severity
from mantissa.identity.detections.base import Context, Detection

PRIVILEGED = "('priv_grant', 'token_create', 'factor_reset', 'mfa_disable', 'admin')"


class PrivilegeEscalationChain(Detection):
    name = "privilege_escalation_chain"
    title = "Role granted, then used"
    stage = "privilege_escalation"
    attack = ("attack.privilege_escalation", "attack.t1098.003")

    def find(self, ctx: Context) -> list[dict[str, Any]]:
        s = ctx.config.privilege_escalation_chain
        return ctx.rows(
            f"""
SELECT g.target AS "user", any_value(g.provider) AS provider, any_value(g.actor) AS actor,
  any_value(g.role) AS role, min(g.event_time) AS first_seen, max(u.event_time) AS last_seen,
  count(DISTINCT u.event_id) AS n, list(DISTINCT u.action) AS used,
  list(DISTINCT u.provider) AS used_on, any_value(g.src_ip) AS src_ip,
  any_value(u.session_id) AS session_id,
  list(DISTINCT g.event_id) || list(DISTINCT u.event_id)[1:19] AS ids
FROM ev g JOIN ev u ON u."user" = g.target AND u.event_time > g.event_time
  AND u.event_time <= g.event_time + INTERVAL {s.window_mins} MINUTE
  AND u.action IN {PRIVILEGED} AND u.event_id <> g.event_id
WHERE g.action = 'priv_grant' AND g.outcome IS DISTINCT FROM 'failure' AND g.target IS NOT NULL
  AND (g.in_window OR u.in_window)
GROUP BY g.target
"""
        )

    def explain(self, row: dict[str, Any], ctx: Context) -> tuple[str, Severity, dict[str, Any]]:
        mins = (row["last_seen"] - row["first_seen"]).total_seconds() / 60
        text = (
            f"{row['user']} was granted {row['role'] or 'a role'} by {row['actor']} on "
            f"{row['provider']} and within {mins:.0f} min performed {row['n']} privileged "
            f"operation(s) ({', '.join(row['used'])} on {', '.join(row['used_on'])})"
        )
        return (
            text,
            Severity.high,
            {"window_mins": ctx.config.privilege_escalation_chain.window_mins},
        )
