"""Dormant account activation: no successful activity for ``dormant_account.days`` (30),
then a sign-in or a privilege change (MITRE T1078). A bare account (an IAM user, a Duo
username) is not dormant while the e-mail identity it resolves to was active."""

from __future__ import annotations

from typing import Any

from mantissa.alerts.model import Severity
from mantissa.identity.detections.base import Context, Detection


class DormantAccount(Detection):
    name = "dormant_account"
    title = "Dormant account activated"
    stage = "initial_access"
    attack = ("attack.initial_access", "attack.persistence", "attack.t1078")

    def find(self, ctx: Context) -> list[dict[str, Any]]:
        s = ctx.config.dormant_account
        return ctx.rows(
            f"""
WITH act AS (
  SELECT CASE WHEN action = 'priv_grant' THEN target ELSE "user" END AS "who", *
  FROM ev WHERE in_window AND ((action IN ('login', 'sso') AND outcome = 'success')
                               OR action = 'priv_grant'))
SELECT a.who AS "user", arg_min(a.provider, a.event_time) AS provider,
  any_value(a.user_id) AS user_id, arg_min(a.src_ip, a.event_time) AS src_ip,
  arg_min(a.session_id, a.event_time) AS session_id, list(DISTINCT a.action) AS actions,
  min(a.event_time) AS first_seen, max(a.event_time) AS last_seen, count(*) AS n,
  any_value(b.last_seen) AS dormant_since, list(a.event_id ORDER BY a.event_time)[1:20] AS ids
FROM act a JOIN bl b ON b."user" = a.who
WHERE b.last_seen < a.event_time - INTERVAL {s.days} DAY
  -- the person behind a bare account (IAM user alice = alice@corp) was active: not dormant
  AND NOT EXISTS (SELECT 1 FROM bl o WHERE strpos(a.who, '@') = 0
                  AND o."user" LIKE a.who || '@%'
                  AND o.last_seen >= a.event_time - INTERVAL {s.days} DAY)
GROUP BY a.who
"""
        )

    def explain(self, row: dict[str, Any], ctx: Context) -> tuple[str, Severity, dict[str, Any]]:
        idle = (row["first_seen"] - row["dormant_since"]).days
        what = " and ".join(
            {"login": "a sign-in", "sso": "app access", "priv_grant": "a privilege grant"}.get(a, a)
            for a in row["actions"]
        )
        text = (
            f"{row['user']} had no successful activity for {idle} days (last "
            f"{row['dormant_since']:%Y-%m-%d}), then {what} on {row['provider']} from "
            f"{row['src_ip']} (dormancy threshold {ctx.config.dormant_account.days} days)"
        )
        return (
            text,
            Severity.high,
            {"last_seen": row["dormant_since"].isoformat(), "idle_days": idle},
        )
