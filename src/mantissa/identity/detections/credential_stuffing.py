"""Credential stuffing: leaked username/password pairs replayed — many accounts (some that
do not exist), at most a couple of attempts each, from many IPs, with one tool's user
agent (MITRE T1110.004)."""

from __future__ import annotations

from typing import Any

from mantissa.alerts.model import Severity
from mantissa.identity.detections.base import Context, Detection

# failure reasons that mean "no such user" (Okta, Entra ID AADSTS50034, Workspace)
UNKNOWN_USER = ("UNKNOWN_USER", "VERIFICATION_ERROR", "50034", "invalid_user", "USER_NOT_FOUND")


class CredentialStuffing(Detection):
    name = "credential_stuffing"
    title = "Credential stuffing"
    stage = "credential_access"
    attack = ("attack.credential_access", "attack.t1110.004")

    def find(self, ctx: Context) -> list[dict[str, Any]]:
        s = ctx.config.credential_stuffing
        codes = ", ".join(f"'{c}'" for c in UNKNOWN_USER)
        return ctx.rows(
            f"""
WITH f AS (
  SELECT e.*, (e.reason IN ({codes}) OR b."user" IS NULL) AS unknown_user
  FROM ev e LEFT JOIN bl b ON b."user" = e."user"
  WHERE e.action = 'login' AND e.outcome = 'failure' AND e.user_agent IS NOT NULL),
pu AS (
  SELECT provider, user_agent, time_bucket(INTERVAL {s.window_mins} MINUTE, event_time) AS b,
    "user", count(*) AS c, bool_or(unknown_user) AS unknown_user
  FROM f GROUP BY ALL),
g AS (
  SELECT provider, user_agent, time_bucket(INTERVAL {s.window_mins} MINUTE, event_time) AS b,
    count(*) AS n, count(DISTINCT "user") AS users, count(DISTINCT src_ip) AS ips,
    min(event_time) AS first_seen, max(event_time) AS last_seen, bool_or(in_window) AS fresh,
    mode(src_ip) AS src_ip, list(event_id ORDER BY event_time)[1:50] AS ids
  FROM f GROUP BY ALL),
u AS (
  SELECT provider, user_agent, b, max(c) AS max_per_user,
    count(*) FILTER (WHERE unknown_user) AS unknown_users
  FROM pu GROUP BY ALL)
SELECT g.* EXCLUDE (b, fresh), u.max_per_user, u.unknown_users, NULL AS "user"
FROM g JOIN u USING (provider, user_agent, b)
WHERE g.fresh AND g.users >= {s.users} AND u.max_per_user <= {s.max_per_user}
  AND g.ips >= {s.ips} AND u.unknown_users >= {s.unknown_users}
"""
        )

    def dedup(self, row: dict[str, Any]) -> str:
        return f"{self.id}|{row['provider']}|{row['user_agent']}"

    def explain(self, row: dict[str, Any], ctx: Context) -> tuple[str, Severity, dict[str, Any]]:
        mins = max(1, round((row["last_seen"] - row["first_seen"]).total_seconds() / 60))
        text = (
            f"{row['users']} accounts failed on {row['provider']} in {mins} min from "
            f"{row['ips']} IPs with one user agent {row['user_agent']!r}; at most "
            f"{row['max_per_user']} attempts per account; {row['unknown_users']} of the "
            f"accounts do not exist or have no sign-in history"
        )
        return text, Severity.high, {"accounts_without_history": row["unknown_users"]}
