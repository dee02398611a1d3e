"""New network: a sign-in from an ASN / AS organisation the user never used, on a new
device, in a country they know (new countries are :mod:`.new_country`)."""

from __future__ import annotations

from typing import Any

from mantissa.alerts.model import Severity
from mantissa.identity.detections.base import Context, Detection
from mantissa.identity.detections.novelty import novel_signins


class NewAsn(Detection):
    name = "new_asn"
    title = "Sign-in from a new network (ASN) on a new device"
    stage = "initial_access"
    attack = ("attack.initial_access", "attack.t1078")

    def find(self, ctx: Context) -> list[dict[str, Any]]:
        return novel_signins(
            ctx,
            "e.net IS NOT NULL AND len(b.nets) > 0 AND NOT list_contains(b.nets, e.net) "
            "AND e.dev IS NOT NULL AND NOT list_contains(b.devices, e.dev) "
            "AND (e.country IS NULL OR list_contains(b.countries, e.country))",
            ctx.config.new_asn.min_logins,
        )

    def explain(self, row: dict[str, Any], ctx: Context) -> tuple[str, Severity, dict[str, Any]]:
        text = (
            f"{row['user']} signed in from network {row['net']} ({row['src_ip']}) on a new "
            f"device ({row['device']!r}); baseline networks: {', '.join(row['b_nets'] or [])}"
        )
        return text, Severity.medium, {"networks": row["b_nets"], "devices": row["b_devices"]}
