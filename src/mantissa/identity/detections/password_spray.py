"""Password spray: one source failing against many accounts with few attempts each (below
lockout), and the distributed variant — many source IPs new to the organisation failing
against many accounts within the hour (MITRE T1110.003)."""

from __future__ import annotations

from typing import Any

from mantissa.alerts.model import Severity
from mantissa.identity.detections.base import Context, Detection


class PasswordSpray(Detection):
    name = "password_spray"
    title = "Password spray"
    stage = "credential_access"
    attack = ("attack.credential_access", "attack.t1110.003")

    def find(self, ctx: Context) -> list[dict[str, Any]]:
        s = ctx.config.password_spray
        single = ctx.rows(
            f"""
WITH f AS (
  SELECT *,
    count(DISTINCT "user") OVER w AS w_users, count(*) OVER w AS w_n
  FROM ev WHERE action = 'login' AND outcome = 'failure' AND src_ip IS NOT NULL
  WINDOW w AS (PARTITION BY src_ip ORDER BY event_time
               RANGE BETWEEN INTERVAL {s.window_mins} MINUTE PRECEDING AND CURRENT ROW)),
peak AS (
  SELECT src_ip, max(event_time) FILTER (WHERE w_users >= {s.users} AND w_n >= {s.attempts})
    AS peak_at
  FROM f GROUP BY src_ip
  HAVING bool_or(w_users >= {s.users} AND w_n >= {s.attempts} AND in_window)),
burst AS (
  SELECT f.* FROM f JOIN peak p USING (src_ip)
  WHERE f.event_time BETWEEN p.peak_at - INTERVAL {s.window_mins} MINUTE AND p.peak_at),
pu AS (SELECT src_ip, "user", count(*) AS c FROM burst GROUP BY ALL),
hits AS (
  SELECT src_ip, count(*) AS n, count(DISTINCT "user") AS users, min(event_time) AS first_seen,
    max(event_time) AS last_seen, list(DISTINCT provider) AS providers,
    mode(user_agent) AS user_agent, list(event_id ORDER BY event_time)[1:50] AS ids,
    (SELECT max(c) FROM pu WHERE pu.src_ip = burst.src_ip) AS max_per_user
  FROM burst GROUP BY src_ip),
prior AS (
  SELECT h.src_ip, count(DISTINCT e."user") AS ok_users
  FROM hits h JOIN ev e ON e.src_ip = h.src_ip AND e.action = 'login' AND e.outcome = 'success'
    AND e.event_time < h.first_seen
  GROUP BY h.src_ip)
SELECT 'single' AS kind, h.*, coalesce(p.ok_users, 0) AS ok_users,
  (SELECT count(*) FROM known_ips k WHERE k.ip = h.src_ip) > 0 AS known_ip,
  h.providers[1] AS provider, NULL AS "user"
FROM hits h LEFT JOIN prior p USING (src_ip)
WHERE h.max_per_user <= {s.max_per_user} OR h.users >= 2 * {s.users}
"""
        )
        dist = ctx.rows(
            f"""
WITH f AS (
  SELECT e.*, k.ip IS NULL AS new_ip FROM ev e LEFT JOIN known_ips k ON k.ip = e.src_ip
  WHERE e.action = 'login' AND e.outcome = 'failure' AND e.src_ip IS NOT NULL),
g AS (
  SELECT provider, time_bucket(INTERVAL {s.window_mins} MINUTE, event_time) AS b,
    count(*) AS n, count(DISTINCT "user") AS users, count(DISTINCT src_ip) AS ips,
    count(DISTINCT src_ip) FILTER (WHERE new_ip) AS new_ips,
    min(event_time) AS first_seen, max(event_time) AS last_seen, bool_or(in_window) AS fresh,
    mode(user_agent) AS user_agent, mode(src_ip) AS src_ip,
    list(event_id ORDER BY event_time)[1:50] AS ids, list(DISTINCT "user")[1:10] AS sample
  FROM f GROUP BY ALL)
SELECT 'distributed' AS kind, * EXCLUDE (b, fresh), NULL AS "user" FROM g
WHERE fresh AND ips >= {s.distributed_ips} AND users >= {s.distributed_users}
  AND new_ips >= {s.distributed_new_ip_ratio} * ips
"""
        )
        return single + dist

    def dedup(self, row: dict[str, Any]) -> str:
        if row["kind"] == "single":
            return f"{self.id}|{row['src_ip']}"
        return f"{self.id}|distributed|{row['provider']}|{row['first_seen']:%Y-%m-%dT%H}"

    def explain(self, row: dict[str, Any], ctx: Context) -> tuple[str, Severity, dict[str, Any]]:
        mins = max(1, round((row["last_seen"] - row["first_seen"]).total_seconds() / 60))
        if row["kind"] == "single":
            base = {"users_signed_in_from_ip_before": row["ok_users"], "ip_known": row["known_ip"]}
            text = (
                f"{row['users']} accounts failed to sign in from {row['src_ip']} in {mins} min "
                f"({row['n']} attempts, {row['max_per_user']} max per account, user agent "
                f"{row['user_agent']!r}); {row['ok_users']} of them signed in from this IP "
                f"before; {'a known' if row['known_ip'] else 'an IP never seen in the baselines'}"
            )
            sev = Severity.high if not row["known_ip"] else Severity.medium
            return text, sev, base
        base = {"ips_new_to_org": row["new_ips"], "ips": row["ips"]}
        text = (
            f"Distributed spray on {row['provider']}: {row['users']} accounts failed from "
            f"{row['ips']} IPs in {mins} min ({row['n']} attempts); {row['new_ips']} of the "
            f"{row['ips']} IPs never signed anyone in before"
        )
        return text, Severity.high, base
