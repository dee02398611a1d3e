"""Brute force: many failed sign-ins on one account from few sources; worse if one of
those sources then signs in (MITRE T1110.001)."""

from __future__ import annotations

from typing import Any

from mantissa.alerts.model import Severity
from mantissa.identity.detections.base import Context, Detection


class BruteForce(Detection):
    name = "brute_force"
    title = "Brute force against an account"
    stage = "credential_access"
    attack = ("attack.credential_access", "attack.t1110.001")

    def find(self, ctx: Context) -> list[dict[str, Any]]:
        s = ctx.config.brute_force
        return ctx.rows(
            f"""
WITH f AS (
  SELECT *, count(*) OVER (PARTITION BY "user" ORDER BY event_time
         RANGE BETWEEN INTERVAL {s.window_mins} MINUTE PRECEDING AND CURRENT ROW) AS burst
  FROM ev WHERE action = 'login' AND outcome = 'failure'),
peak AS (
  SELECT "user", max(burst) AS peak,
    max(event_time) FILTER (WHERE burst >= {s.failures}) AS last_fail
  FROM f GROUP BY "user" HAVING bool_or(burst >= {s.failures} AND in_window)),
g AS (
  SELECT f."user", any_value(f.provider) AS provider, any_value(f.user_id) AS user_id,
    min(f.event_time) AS first_seen, max(f.event_time) AS last_seen, count(*) AS n,
    any_value(p.peak) AS peak, count(DISTINCT f.src_ip) AS ips, mode(f.src_ip) AS src_ip,
    list(DISTINCT f.src_ip) AS ip_list, list(f.event_id ORDER BY f.event_time)[1:50] AS ids
  FROM f JOIN peak p USING ("user")
  WHERE f.event_time BETWEEN p.last_fail - INTERVAL {s.window_mins * 3} MINUTE AND p.last_fail
  GROUP BY f."user" HAVING count(DISTINCT f.src_ip) <= {s.max_ips}),
succ AS (
  SELECT g."user", min(e.event_time) AS success_at,
    arg_min(e.event_id, e.event_time) AS success_id,
    arg_min(e.src_ip, e.event_time) AS success_ip,
    arg_min(e.session_id, e.event_time) AS session_id
  FROM g JOIN ev e ON e."user" = g."user" AND e.action = 'login' AND e.outcome = 'success'
    AND e.event_time > g.first_seen
    AND e.event_time <= g.last_seen + INTERVAL {s.success_within_mins} MINUTE
    AND list_contains(g.ip_list, e.src_ip)
  GROUP BY g."user")
SELECT g.* EXCLUDE (ip_list), succ.success_at, succ.success_id, succ.success_ip,
  succ.session_id, bl.fail_rate
FROM g LEFT JOIN succ USING ("user") LEFT JOIN bl ON bl."user" = g."user"
"""
        )

    def explain(self, row: dict[str, Any], ctx: Context) -> tuple[str, Severity, dict[str, Any]]:
        win = ctx.config.brute_force.window_mins
        base = {"failures_per_day": round(row["fail_rate"] or 0.0, 2)}
        text = (
            f"{row['n']} failed sign-ins for {row['user']} ({row['peak']} within {win} min) "
            f"from {row['ips']} IP(s), mostly {row['src_ip']}; the account's usual rate is "
            f"{base['failures_per_day']} failures/day"
        )
        if row.get("success_at"):
            text += (
                f"; then a successful sign-in at {row['success_at']:%Y-%m-%d %H:%M} UTC "
                f"from {row['success_ip']}"
            )
            row["ids"] = [*(row["ids"] or []), row["success_id"]]
            return text, Severity.high, base
        return text, Severity.medium, base
