"""``type: pagerduty``: Events API v2 (https://developer.pagerduty.com/docs/events-api-v2/).

``POST /v2/enqueue`` with ``routing_key``, ``event_action`` (trigger | acknowledge |
resolve) and ``dedup_key``. The dedup key is the alert id, so a retried or re-sent
trigger never pages twice: PagerDuty folds events with an open incident's dedup key into
it. Success is HTTP 202 ``{"status": "success", "dedup_key": ...}``; 400 is a bad event
(permanent), 429 and 5xx are retried.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from mantissa.alerts.destinations.base import (
    Delivery,
    Destination,
    DestinationConfig,
    alert_summary,
)

# Events API v2 severities are critical | error | warning | info
SEVERITY_MAP = {
    "critical": "critical",
    "high": "error",
    "medium": "warning",
    "low": "info",
    "informational": "info",
}

_ACTIONS = {
    "trigger": "trigger",
    "escalate": "trigger",
    "update": "trigger",
    "test": "trigger",
    "acknowledge": "acknowledge",
    "resolve": "resolve",
}


class PagerDutyConfig(DestinationConfig):
    routing_key: str  # ${env:PD_ROUTING_KEY}: the integration key of an Events v2 service
    url: str = "https://events.pagerduty.com/v2/enqueue"
    source: str = "mantissa-log"
    component: str | None = None
    group: str | None = None
    severity_map: dict[str, str] = Field(default_factory=lambda: dict(SEVERITY_MAP))
    client_url: str | None = None


class PagerDuty(Destination):
    type = "pagerduty"
    Config = PagerDutyConfig
    supports_updates = True
    delivery_guarantee = "effectively_once (dedup_key = alert id)"
    config: PagerDutyConfig

    def event(self, delivery: Delivery) -> dict[str, Any]:
        alert = delivery.alert
        action = _ACTIONS.get(delivery.kind, "trigger")
        event: dict[str, Any] = {
            "routing_key": self.secret(self.config.routing_key),
            "event_action": action,
            "dedup_key": alert.id,
        }
        if action != "trigger":
            return event  # acknowledge/resolve need only the key
        details: dict[str, Any] = {
            "rule_id": alert.rule_id,
            "status": alert.status.value,
            "count": alert.count,
            "first_seen": alert.first_seen.isoformat(),
            "last_seen": alert.last_seen.isoformat(),
            "tags": alert.tags,
            **{f"entity.{k}": v for k, v in alert.entities.items()},
        }
        if alert.description:
            details["description"] = alert.description
        if alert.enrichment:
            details["enrichment"] = alert.enrichment
        payload: dict[str, Any] = {
            # summary is limited to 1024 characters by the API
            "summary": alert_summary(alert, delivery.kind, 1024),
            "source": alert.entities.get("host") or alert.source or self.config.source,
            "severity": self.config.severity_map.get(alert.severity.value, "warning"),
            "timestamp": alert.last_seen.isoformat(),
            "class": alert.rule_id,
            "custom_details": details,
        }
        if self.config.component:
            payload["component"] = self.config.component
        if self.config.group:
            payload["group"] = self.config.group
        event["payload"] = payload
        event["client"] = "Mantissa Log"
        if delivery.console_url or self.config.client_url:
            event["client_url"] = delivery.console_url or self.config.client_url
        return event

    def send(self, delivery: Delivery) -> dict[str, Any]:
        resp = self.http("POST", self.config.url, json=self.event(delivery))
        try:
            data = resp.json()
        except ValueError:
            data = {}
        return {
            "status": resp.status_code,
            "event_action": _ACTIONS.get(delivery.kind, "trigger"),
            "dedup_key": data.get("dedup_key", delivery.alert.id),
        }
