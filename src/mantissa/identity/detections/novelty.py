"""Shared SQL for the new-device / new-country / new-ASN detections: a user's successful
sign-ins in the window whose property is missing from their baseline."""

from __future__ import annotations

from typing import Any

from mantissa.identity.detections.base import Context


def novel_signins(ctx: Context, condition: str, min_logins: int) -> list[dict[str, Any]]:
    """One row per user with a sign-in matching ``condition`` (over ``e`` and baseline ``b``)."""
    return ctx.rows(
        f"""
SELECT e."user", arg_min(e.provider, e.event_time) AS provider,
  any_value(e.user_id) AS user_id, arg_min(e.src_ip, e.event_time) AS src_ip,
  arg_min(e.session_id, e.event_time) AS session_id, arg_min(e.country, e.event_time) AS country,
  arg_min(e.city, e.event_time) AS city, arg_min(e.net, e.event_time) AS net,
  arg_min(e.device, e.event_time) AS device,
  min(e.event_time) AS first_seen, max(e.event_time) AS last_seen, count(*) AS n,
  any_value(b.countries) AS b_countries, any_value(b.nets)[1:10] AS b_nets,
  any_value(b.devices)[1:5] AS b_devices, len(any_value(b.ips)) AS b_ips,
  any_value(b.logins) AS logins, list(e.event_id ORDER BY e.event_time)[1:20] AS ids
FROM ev e JOIN bl b USING ("user")
WHERE e.in_window AND e.action IN ('login', 'sso') AND e.outcome = 'success'
  AND NOT b.learning AND b.logins >= {min_logins} AND ({condition})
GROUP BY e."user"
"""
    )
