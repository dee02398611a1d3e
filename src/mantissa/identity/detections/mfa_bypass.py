"""MFA bypass / downgrade: a factor reset or MFA disabled (unless by a routine helpdesk
actor for someone else), a bypass code used, or a sign-in without the multi-factor the
user almost always uses (MITRE T1556.006)."""

from __future__ import annotations

from typing import Any

from mantissa.alerts.model import Severity
from mantissa.identity.detections.base import Context, Detection


class MfaBypass(Detection):
    name = "mfa_bypass"
    title = "MFA bypass or downgrade"
    stage = "defense_evasion"
    attack = ("attack.defense_evasion", "attack.t1556.006")

    def find(self, ctx: Context) -> list[dict[str, Any]]:
        s = ctx.config.mfa_bypass
        return ctx.rows(
            f"""
WITH ch AS (
  SELECT e.*, coalesce(a.resets, 0) AS actor_resets,
    (SELECT count(*) FROM known_ips k WHERE k.ip = e.src_ip) > 0 AS known_ip
  FROM ev e LEFT JOIN bl a ON a."user" = e.actor
  WHERE e.in_window AND e.action IN ('factor_reset', 'mfa_disable', 'mfa_bypass')),
changes AS (
  SELECT action AS kind, coalesce(target, "user") AS "user", any_value(actor) AS actor,
    any_value(provider) AS provider, any_value(src_ip) AS src_ip, any_value(user_id) AS user_id,
    min(event_time) AS first_seen, max(event_time) AS last_seen, count(*) AS n,
    list(event_id ORDER BY event_time)[1:20] AS ids, max(actor_resets) AS actor_resets,
    NULL::DOUBLE AS mfa_ratio
  FROM ch
  WHERE NOT (actor_resets >= {s.routine_resets} AND known_ip AND actor <> coalesce(target, actor)
             AND action <> 'mfa_bypass')
  GROUP BY ALL),
downgrade AS (
  SELECT 'single_factor' AS kind, e."user", NULL AS actor, any_value(e.provider) AS provider,
    any_value(e.src_ip) AS src_ip, any_value(e.user_id) AS user_id,
    min(e.event_time) AS first_seen, max(e.event_time) AS last_seen, count(*) AS n,
    list(e.event_id ORDER BY e.event_time)[1:20] AS ids, NULL AS actor_resets,
    any_value(b.mfa_ratio) AS mfa_ratio
  FROM ev e JOIN bl b USING ("user")
  WHERE e.in_window AND e.action = 'login' AND e.outcome = 'success' AND e.mfa IS FALSE
    AND NOT b.learning AND b.mfa_ratio >= {s.mfa_ratio}
  GROUP BY e."user")
SELECT * FROM changes UNION ALL BY NAME SELECT * FROM downgrade
"""
        )

    def dedup(self, row: dict[str, Any]) -> str:
        return f"{self.id}|{row['kind']}|{row['user']}"

    def explain(self, row: dict[str, Any], ctx: Context) -> tuple[str, Severity, dict[str, Any]]:
        k = row["kind"]
        if k == "single_factor":
            pct = 100 * (row["mfa_ratio"] or 0)
            text = (
                f"{row['user']} signed in {row['n']} time(s) on {row['provider']} with a single "
                f"factor from {row['src_ip']}, though {pct:.0f}% of their baseline sign-ins used MFA"
            )
            return text, Severity.high, {"mfa_ratio": round(row["mfa_ratio"] or 0, 3)}
        what = {
            "factor_reset": "MFA factor(s) reset",
            "mfa_disable": "MFA disabled or a bypass created",
            "mfa_bypass": "an MFA bypass code used",
        }[k]
        by = (
            f" by {row['actor']}"
            if row["actor"] and row["actor"] != row["user"]
            else " by the user"
        )
        text = (
            f"{what} for {row['user']}{by} on {row['provider']} from {row['src_ip'] or 'an unknown IP'}; the actor "
            f"made {row['actor_resets'] or 0} such changes in their baseline "
            f"(routine helpdesk threshold {ctx.config.mfa_bypass.routine_resets})"
        )
        return text, Severity.high, {"actor_resets": row["actor_resets"] or 0}
