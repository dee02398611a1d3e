"""Unusual sign-in time: a successful sign-in at an hour of day when the user's own
histogram has no sign-in within ``quiet_hours``, by default also from an IP the user never
used (alone, odd hours are too common to alert on). Users in learning are skipped."""

from __future__ import annotations

from typing import Any

from mantissa.alerts.model import Severity
from mantissa.identity.detections.base import Context, Detection


class UnusualTime(Detection):
    name = "unusual_time"
    title = "Sign-in at an unusual time for the user"
    stage = "initial_access"
    severity = "low"
    attack = ("attack.initial_access", "attack.t1078")

    def find(self, ctx: Context) -> list[dict[str, Any]]:
        s = ctx.config.unusual_time
        q = s.quiet_hours
        new_ip = "AND NOT list_contains(b.ips, e.src_ip)" if s.require_new_ip else ""
        return ctx.rows(
            f"""
SELECT e."user", any_value(e.provider) AS provider, any_value(e.user_id) AS user_id,
  arg_min(e.src_ip, e.event_time) AS src_ip, arg_min(e.session_id, e.event_time) AS session_id,
  min(e.event_time) AS first_seen, max(e.event_time) AS last_seen, count(*) AS n,
  arg_min(hour(e.event_time), e.event_time) AS hour, any_value(b.hod) AS hod,
  any_value(b.logins) AS logins, list(e.event_id ORDER BY e.event_time)[1:20] AS ids
FROM ev e JOIN bl b USING ("user")
WHERE e.in_window AND e.action = 'login' AND e.outcome = 'success' AND NOT b.learning
  AND b.logins >= {s.min_logins}
  AND list_sum([b.hod[((hour(e.event_time) + d + 24) % 24) + 1] FOR d IN range({-q}, {q + 1})]) = 0
  {new_ip}
GROUP BY e."user"
"""
        )

    def explain(self, row: dict[str, Any], ctx: Context) -> tuple[str, Severity, dict[str, Any]]:
        hod = row["hod"] or []
        busy = [h for h, c in enumerate(hod) if c]
        span = f"{min(busy):02d}:00–{max(busy):02d}:59 UTC" if busy else "none"
        text = (
            f"{row['user']} signed in at {row['hour']:02d}:xx UTC from {row['src_ip']}; none of "
            f"their {row['logins']} baseline sign-ins fell within "
            f"{ctx.config.unusual_time.quiet_hours} h of that hour (usual hours {span})"
            + (" and the IP is new for them" if ctx.config.unusual_time.require_new_ip else "")
        )
        return text, Severity.low, {"hour_of_day_histogram": hod}
