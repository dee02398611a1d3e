"""Admin role assignment outside the change window (``off_hours_grant.weekdays``,
``start_hour``–``end_hour`` UTC; default Monday–Friday 07–19)."""

from __future__ import annotations

from typing import Any

from mantissa.alerts.model import Severity
from mantissa.identity.detections.base import Context, Detection


class OffHoursGrant(Detection):
    name = "off_hours_grant"
    title = "Privilege granted outside the change window"
    stage = "persistence"
    attack = ("attack.persistence", "attack.t1098")

    def find(self, ctx: Context) -> list[dict[str, Any]]:
        s = ctx.config.off_hours_grant
        days = ", ".join(str(d) for d in s.weekdays) or "-1"
        return ctx.rows(
            f"""
SELECT coalesce(target, "user") AS "user", any_value(actor) AS actor,
  any_value(provider) AS provider, any_value(src_ip) AS src_ip, list(DISTINCT role) AS roles,
  min(event_time) AS first_seen, max(event_time) AS last_seen, count(*) AS n,
  list(event_id ORDER BY event_time)[1:20] AS ids
FROM ev
WHERE in_window AND action = 'priv_grant' AND outcome IS DISTINCT FROM 'failure'
  AND NOT (isodow(event_time) - 1 IN ({days})
           AND hour(event_time) >= {s.start_hour} AND hour(event_time) < {s.end_hour})
GROUP BY ALL
"""
        )

    def explain(self, row: dict[str, Any], ctx: Context) -> tuple[str, Severity, dict[str, Any]]:
        s = ctx.config.off_hours_grant
        roles = ", ".join(r for r in row["roles"] if r) or "a privilege"
        text = (
            f"{row['actor']} granted {roles} to {row['user']} on {row['provider']} at "
            f"{row['first_seen']:%a %H:%M} UTC, outside the change window "
            f"(weekdays {s.weekdays}, {s.start_hour:02d}:00–{s.end_hour:02d}:00 UTC)"
        )
        return text, Severity.medium, {"weekdays": s.weekdays, "hours": [s.start_hour, s.end_hour]}
