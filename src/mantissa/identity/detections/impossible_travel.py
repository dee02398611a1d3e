"""Impossible travel: two successful sign-ins of one user whose distance (haversine over
the events' own coordinates, else offline geo-IP) and time apart need a speed no airliner
flies (defaults: >= 500 km at >= 800 km/h). Same IP, VPN / cloud / proxy ranges
(``impossible_travel.relay_cidrs`` and AS-organisation keywords) and sign-ins without
coordinates are skipped explicitly (MITRE T1078)."""

from __future__ import annotations

from typing import Any

from mantissa.alerts.model import Severity
from mantissa.identity.detections.base import Context, Detection

HAVERSINE = (
    "2 * 6371 * asin(sqrt(pow(sin(radians(glat - p_lat) / 2), 2) + cos(radians(p_lat)) "
    "* cos(radians(glat)) * pow(sin(radians(glon - p_lon) / 2), 2)))"
)


class ImpossibleTravel(Detection):
    name = "impossible_travel"
    title = "Impossible travel"
    stage = "initial_access"
    attack = ("attack.initial_access", "attack.t1078")

    def find(self, ctx: Context) -> list[dict[str, Any]]:
        s = ctx.config.impossible_travel
        return ctx.rows(
            f"""
WITH s0 AS (
  SELECT * FROM ev WHERE action IN ('login', 'sso', 'mfa_accept') AND outcome = 'success'
    AND glat IS NOT NULL AND glon IS NOT NULL),
-- only users with a sign-in in the window can have a hit (a 5-minute window: a few)
s AS (SELECT * FROM s0 WHERE "user" IN (SELECT "user" FROM s0 WHERE in_window)),
p AS (
  SELECT *, lag(event_time) OVER w AS p_time, lag(src_ip) OVER w AS p_ip,
    lag(glat) OVER w AS p_lat, lag(glon) OVER w AS p_lon, lag(city) OVER w AS p_city,
    lag(country) OVER w AS p_country, lag(relay) OVER w AS p_relay,
    lag(event_id) OVER w AS p_id, lag(provider) OVER w AS p_provider
  FROM s WINDOW w AS (PARTITION BY "user" ORDER BY event_time)),
d AS (
  SELECT *, {HAVERSINE} AS km, greatest(epoch(event_time - p_time) / 3600.0, 1 / 60.0) AS hours
  FROM p WHERE p_time IS NOT NULL AND in_window AND src_ip IS DISTINCT FROM p_ip
    AND NOT relay AND NOT coalesce(p_relay, false)),
hits AS (SELECT *, km / hours AS kmh FROM d WHERE km >= {s.min_km} AND km / hours >= {s.min_kmh})
SELECT "user", arg_max(provider, kmh) AS provider, arg_max(user_id, kmh) AS user_id,
  arg_max(session_id, kmh) AS session_id, arg_max(src_ip, kmh) AS src_ip,
  arg_max(p_ip, kmh) AS p_ip, arg_max(city, kmh) AS city, arg_max(country, kmh) AS country,
  arg_max(p_city, kmh) AS p_city, arg_max(p_country, kmh) AS p_country,
  arg_max(p_provider, kmh) AS p_provider,
  max(kmh) AS kmh, arg_max(km, kmh) AS km, arg_max(hours, kmh) AS hours,
  min(p_time) AS first_seen, max(event_time) AS last_seen, count(*) AS n,
  flatten(list([p_id, event_id] ORDER BY event_time))[1:20] AS ids
FROM hits GROUP BY "user"
"""
        )

    def explain(self, row: dict[str, Any], ctx: Context) -> tuple[str, Severity, dict[str, Any]]:
        s = ctx.config.impossible_travel
        here = ", ".join(x for x in (row["city"], row["country"]) if x) or "?"
        there = ", ".join(x for x in (row["p_city"], row["p_country"]) if x) or "?"
        mins = row["hours"] * 60
        text = (
            f"{row['user']} signed in from {there} ({row['p_ip']}, {row['p_provider']}) and "
            f"{mins:.0f} min later from {here} ({row['src_ip']}, {row['provider']}): "
            f"{row['km']:.0f} km apart, {row['kmh']:.0f} km/h needed "
            f"(thresholds {s.min_km:.0f} km, {s.min_kmh:.0f} km/h); neither IP is a known "
            f"VPN/cloud/relay range"
        )
        return text, Severity.high, {"min_km": s.min_km, "min_kmh": s.min_kmh}
