"""New device: a sign-in on a device / client the user never used (user agent without
version numbers, so browser updates do not count) from an IP they never used; a new laptop
at the usual office or home IP is not an alert."""

from __future__ import annotations

from typing import Any

from mantissa.alerts.model import Severity
from mantissa.identity.detections.base import Context, Detection
from mantissa.identity.detections.novelty import novel_signins


class NewDevice(Detection):
    name = "new_device"
    title = "Sign-in on a new device from a new IP"
    stage = "initial_access"
    severity = "low"
    attack = ("attack.initial_access", "attack.t1078")

    def find(self, ctx: Context) -> list[dict[str, Any]]:
        return novel_signins(
            ctx,
            "e.dev IS NOT NULL AND NOT list_contains(b.devices, e.dev) "
            "AND e.src_ip IS NOT NULL AND NOT list_contains(b.ips, e.src_ip) "
            "AND (e.country IS NULL OR list_contains(b.countries, e.country)) "
            "AND (e.net IS NULL OR list_contains(b.nets, e.net) OR len(b.nets) = 0)",
            ctx.config.new_device.min_logins,
        )

    def explain(self, row: dict[str, Any], ctx: Context) -> tuple[str, Severity, dict[str, Any]]:
        text = (
            f"{row['user']} signed in on a device never seen for them ({row['device']!r}) from "
            f"{row['src_ip']}, an IP not among their {row['b_ips']} known IPs; baseline "
            f"devices: {', '.join(row['b_devices'] or [])}"
        )
        return text, Severity.low, {"devices": row["b_devices"], "known_ips": row["b_ips"]}
