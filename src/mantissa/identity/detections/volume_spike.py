"""Volume spike: a user's sign-ins/app accesses over the last 24 h far above their own
daily history (robust z-score on median/MAD, and a multiple of the median) and above their
peer group's (department/group, else the organisation) typical day."""

from __future__ import annotations

from typing import Any

from mantissa.alerts.model import Severity
from mantissa.identity.detections.base import Context, Detection


class VolumeSpike(Detection):
    name = "volume_spike"
    title = "Sign-in volume spike"
    stage = "impact"
    attack = ("attack.collection", "attack.t1530")

    def find(self, ctx: Context) -> list[dict[str, Any]]:
        s = ctx.config.volume_spike
        return ctx.rows(
            f"""
WITH c AS (
  SELECT "user", count(*) AS n, min(event_time) AS first_seen, max(event_time) AS last_seen,
    bool_or(in_window) AS fresh, mode(src_ip) AS src_ip, mode(provider) AS provider,
    any_value(user_id) AS user_id, list(event_id ORDER BY event_time DESC)[1:20] AS ids
  FROM ev WHERE action IN ('login', 'sso') AND outcome = 'success'
    AND event_time >= ?::TIMESTAMPTZ - INTERVAL 24 HOUR
    AND "user" IN (SELECT "user" FROM ev WHERE in_window AND action IN ('login', 'sso')
                   AND outcome = 'success')
  GROUP BY "user"),
peer AS (SELECT * FROM blpeer)
SELECT c.*, b.daily_median, b.daily_mad, b.days, p.peer_group, p.peer_median
FROM c JOIN bl b USING ("user")
LEFT JOIN peer p ON p.peer_group = coalesce(b.department, 'organisation')
WHERE c.fresh AND NOT b.learning AND b.days >= {s.min_days} AND c.n >= {s.min_events}
  AND c.n >= {s.factor} * greatest(b.daily_median, 1)
  AND c.n >= b.daily_median + {s.mad_z} * 1.4826 * greatest(b.daily_mad, 1)
  AND c.n >= {s.peer_factor} * greatest(coalesce(p.peer_median, 1), 1)
""",
            [ctx.end],
        )

    def dedup(self, row: dict[str, Any]) -> str:
        return f"{self.id}|{row['user']}|{row['last_seen']:%Y-%m-%d}"

    def explain(self, row: dict[str, Any], ctx: Context) -> tuple[str, Severity, dict[str, Any]]:
        z = (row["n"] - row["daily_median"]) / (1.4826 * max(row["daily_mad"], 1))
        text = (
            f"{row['user']} had {row['n']} sign-ins/app accesses in 24 h; their median day is "
            f"{row['daily_median']:.0f} (MAD {row['daily_mad']:.0f}, robust z {z:.1f}, "
            f"{row['days']} days of history) and the {row['peer_group']} peer group's median "
            f"day is {row['peer_median'] or 0:.0f}"
        )
        base = {"daily_median": row["daily_median"], "daily_mad": row["daily_mad"],
                "peer_median": row["peer_median"], "robust_z": round(z, 1)}  # fmt: skip
        return text, Severity.medium, base
