"""New country: a sign-in from a country the user never signed in from, on a device they
never used (a trip with the usual laptop is not an alert) (MITRE T1078)."""

from __future__ import annotations

from typing import Any

from mantissa.alerts.model import Severity
from mantissa.identity.detections.base import Context, Detection
from mantissa.identity.detections.novelty import novel_signins


class NewCountry(Detection):
    name = "new_country"
    title = "Sign-in from a new country on a new device"
    stage = "initial_access"
    attack = ("attack.initial_access", "attack.t1078")

    def find(self, ctx: Context) -> list[dict[str, Any]]:
        return novel_signins(
            ctx,
            "e.country IS NOT NULL AND NOT list_contains(b.countries, e.country) "
            "AND e.dev IS NOT NULL AND NOT list_contains(b.devices, e.dev)",
            ctx.config.new_country.min_logins,
        )

    def explain(self, row: dict[str, Any], ctx: Context) -> tuple[str, Severity, dict[str, Any]]:
        text = (
            f"{row['user']} signed in from {row['city'] or '?'}, {row['country']} "
            f"({row['src_ip']}) on a device never seen for them ({row['device']!r}); their "
            f"{row['logins']} baseline sign-ins came from {', '.join(row['b_countries'] or [])}"
        )
        return text, Severity.medium, {"countries": row["b_countries"], "devices": row["b_devices"]}
