"""``type: teams``: a Microsoft Teams Workflows (Power Automate) webhook with an Adaptive Card.

Office 365 connectors are retired; Workflows webhooks accept only Adaptive Cards wrapped
in a message: ``{"type": "message", "attachments": [{"contentType":
"application/vnd.microsoft.card.adaptive", "contentUrl": null, "content": <card>}]}``
(https://learn.microsoft.com/microsoftteams/platform/webhooks-and-connectors/how-to/connectors-using).
The URL's ``sig`` query parameter is the credential, so the whole URL is a secret. The
trigger answers 202 Accepted; 429 carries ``Retry-After``.
"""

from __future__ import annotations

from typing import Any

from mantissa.alerts.destinations.base import (
    Delivery,
    Destination,
    DestinationConfig,
    alert_facts,
    alert_summary,
)

_COLOR = {
    "critical": "Attention",
    "high": "Attention",
    "medium": "Warning",
    "low": "Accent",
    "informational": "Default",
}


class TeamsConfig(DestinationConfig):
    webhook_url: str  # ${env:TEAMS_WEBHOOK_URL}
    card_version: str = "1.4"


def adaptive_card(delivery: Delivery, version: str = "1.4") -> dict[str, Any]:
    alert = delivery.alert
    body: list[dict[str, Any]] = [
        {
            "type": "TextBlock",
            "text": alert_summary(alert, delivery.kind, 300),
            "weight": "Bolder",
            "size": "Medium",
            "color": _COLOR.get(alert.severity.value, "Default"),
            "wrap": True,
        }
    ]
    if alert.description:
        body.append({"type": "TextBlock", "text": alert.description[:2000], "wrap": True})
    body.append(
        {
            "type": "FactSet",
            "facts": [{"title": k, "value": v[:500]} for k, v in alert_facts(alert)],
        }
    )
    card: dict[str, Any] = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": version,
        "body": body,
    }
    if delivery.console_url:
        card["actions"] = [
            {"type": "Action.OpenUrl", "title": "Open alert", "url": delivery.console_url}
        ]
    return card


class Teams(Destination):
    type = "teams"
    Config = TeamsConfig
    supports_updates = True
    config: TeamsConfig

    def send(self, delivery: Delivery) -> dict[str, Any]:
        message = {
            "type": "message",
            "attachments": [
                {
                    "contentType": "application/vnd.microsoft.card.adaptive",
                    "contentUrl": None,
                    "content": adaptive_card(delivery, self.config.card_version),
                }
            ],
        }
        resp = self.http("POST", self.secret(self.config.webhook_url) or "", json=message)
        return {"status": resp.status_code}
