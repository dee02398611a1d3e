"""MFA fatigue / push bombing: repeated denied or unanswered MFA prompts for one user;
critical when a prompt is then accepted (MITRE T1621)."""

from __future__ import annotations

from typing import Any

from mantissa.alerts.model import Severity
from mantissa.identity.detections.base import Context, Detection


class MfaFatigue(Detection):
    name = "mfa_fatigue"
    title = "MFA fatigue (push bombing)"
    stage = "credential_access"
    attack = ("attack.credential_access", "attack.t1621")

    def find(self, ctx: Context) -> list[dict[str, Any]]:
        s = ctx.config.mfa_fatigue
        return ctx.rows(
            f"""
WITH d AS (
  SELECT *, count(*) OVER (PARTITION BY "user" ORDER BY event_time
         RANGE BETWEEN INTERVAL {s.window_mins} MINUTE PRECEDING AND CURRENT ROW) AS burst
  FROM ev WHERE action = 'mfa_deny'),
peak AS (SELECT "user", max(burst) AS peak,
    max(event_time) FILTER (WHERE burst >= {s.denies}) AS last_deny FROM d
  GROUP BY "user" HAVING bool_or(burst >= {s.denies} AND in_window)),
g AS (
  SELECT d."user", min(d.event_time) AS first_seen, max(d.event_time) AS last_seen,
    count(*) AS n, any_value(p.peak) AS peak, list(DISTINCT d.provider) AS providers,
    list(DISTINCT d.reason) AS reasons, list(d.event_id ORDER BY d.event_time)[1:50] AS ids,
    any_value(d.user_id) AS user_id
  FROM d JOIN peak p USING ("user")
  WHERE d.event_time BETWEEN p.last_deny - INTERVAL {s.window_mins * 3} MINUTE AND p.last_deny
  GROUP BY d."user"),
pushes AS (
  SELECT g."user", count(*) AS pushes, mode(e.src_ip) AS push_ip
  FROM g JOIN ev e ON e."user" = g."user" AND e.action = 'mfa_push'
    AND e.event_time BETWEEN g.first_seen - INTERVAL 5 MINUTE AND g.last_seen
  GROUP BY g."user"),
acc AS (
  SELECT g."user", min(e.event_time) AS accepted_at, arg_min(e.event_id, e.event_time) AS accept_id,
    arg_min(e.src_ip, e.event_time) AS accept_ip, arg_min(e.session_id, e.event_time) AS session_id
  FROM g JOIN ev e ON e."user" = g."user" AND e.action = 'mfa_accept'
    AND e.event_time > g.last_seen - INTERVAL {s.window_mins} MINUTE
    AND e.event_time <= g.last_seen + INTERVAL {s.accepted_within_mins} MINUTE
    AND e.event_time > g.first_seen
  GROUP BY g."user")
SELECT g.*, g.providers[1] AS provider, coalesce(pushes.pushes, 0) AS pushes, pushes.push_ip,
  acc.accepted_at, acc.accept_id, acc.accept_ip, acc.session_id,
  coalesce(acc.accept_ip, pushes.push_ip) AS src_ip, bl.fail_rate
FROM g LEFT JOIN pushes USING ("user") LEFT JOIN acc USING ("user") LEFT JOIN bl USING ("user")
"""
        )

    def explain(self, row: dict[str, Any], ctx: Context) -> tuple[str, Severity, dict[str, Any]]:
        win = ctx.config.mfa_fatigue.window_mins
        reasons = ", ".join(r for r in (row["reasons"] or []) if r) or "denied"
        text = (
            f"{row['n']} MFA prompts denied or unanswered for {row['user']} "
            f"({row['peak']} within {win} min; {reasons})"
        )
        if row["pushes"]:
            text += (
                f"; {row['pushes']} pushes were sent, mostly for a sign-in from {row['push_ip']}"
            )
        if row.get("accepted_at"):
            text += f"; then a prompt was ACCEPTED at {row['accepted_at']:%H:%M} UTC" + (
                f" for {row['accept_ip']}" if row["accept_ip"] else ""
            )
            row["ids"] = [*(row["ids"] or []), row["accept_id"]]
            return text, Severity.critical, {"threshold": ctx.config.mfa_fatigue.denies}
        return text, Severity.high, {"threshold": ctx.config.mfa_fatigue.denies}
