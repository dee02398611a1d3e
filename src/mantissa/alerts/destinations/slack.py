"""``type: slack``: an incoming webhook, or ``chat.postMessage`` with a bot token, with
Block Kit blocks and a plain ``text`` fallback.

Docs: https://api.slack.com/messaging/webhooks (errors are HTTP statuses with a text body
such as ``invalid_payload``/``no_service``), https://api.slack.com/methods/chat.postMessage
(HTTP 200 with ``{"ok": false, "error": ...}`` on failure, ``Authorization: Bearer``,
JSON bodies need ``charset=utf-8``), https://api.slack.com/docs/rate-limits (HTTP 429
with ``Retry-After`` seconds). With a token, later updates of the alert (acknowledged,
resolved) are posted as replies in the alert's thread.
"""

from __future__ import annotations

from typing import Any

from pydantic import model_validator

from mantissa.alerts.destinations.base import (
    SEVERITY_EMOJI,
    Delivery,
    Destination,
    DestinationConfig,
    alert_facts,
    alert_summary,
)
from mantissa.errors import PermanentDeliveryError, RetryableDeliveryError

# chat.postMessage errors worth retrying; every other ``error`` is permanent
_RETRYABLE = {
    "ratelimited",
    "rate_limited",
    "internal_error",
    "fatal_error",
    "service_unavailable",
    "request_timeout",
}


class SlackConfig(DestinationConfig):
    webhook_url: str | None = None  # ${env:SLACK_WEBHOOK_URL}: the URL is the secret
    token: str | None = None  # ${env:SLACK_BOT_TOKEN} (xoxb-...)
    channel: str | None = None  # channel id or name, with token
    api_url: str = "https://slack.com/api"
    username: str | None = None

    @model_validator(mode="after")
    def _one_mode(self) -> SlackConfig:
        if bool(self.webhook_url) == bool(self.token):
            raise ValueError("set exactly one of webhook_url or token (with channel)")
        if self.token and not self.channel:
            raise ValueError("channel is required with token")
        return self


def blocks(delivery: Delivery) -> list[dict[str, Any]]:
    """Block Kit: header, description, fields (max 10 per section), context, button."""
    alert = delivery.alert
    title = (
        f"{SEVERITY_EMOJI.get(alert.severity.value, '')} {alert_summary(alert, delivery.kind, 148)}"
    )
    out: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": title[:150], "emoji": True}}
    ]
    if alert.description:
        out.append(
            {"type": "section", "text": {"type": "mrkdwn", "text": _esc(alert.description)[:2900]}}
        )
    facts = alert_facts(alert)
    for i in range(0, min(len(facts), 20), 10):
        out.append(
            {
                "type": "section",
                "fields": [
                    {"type": "mrkdwn", "text": f"*{_esc(k)}*\n{_esc(v)[:1900]}"}
                    for k, v in facts[i : i + 10]
                ],
            }
        )
    out.append(
        {
            "type": "context",
            "elements": [
                {"type": "mrkdwn", "text": f"Mantissa Log · {delivery.kind} · `{alert.id}`"}
            ],
        }
    )
    if delivery.console_url:
        out.append(
            {
                "type": "actions",
                "elements": [
                    {
                        "type": "button",
                        "text": {"type": "plain_text", "text": "Open alert"},
                        "url": delivery.console_url,
                    }
                ],
            }
        )
    return out


def _esc(text: str) -> str:
    # Slack mrkdwn control characters (https://api.slack.com/reference/surfaces/formatting#escaping)
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class Slack(Destination):
    type = "slack"
    Config = SlackConfig
    supports_updates = True
    config: SlackConfig

    def send(self, delivery: Delivery) -> dict[str, Any]:
        body: dict[str, Any] = {
            "text": alert_summary(delivery.alert, delivery.kind, 3000),
            "blocks": blocks(delivery),
        }
        if self.config.username:
            body["username"] = self.config.username
        if self.config.webhook_url:
            url = self.secret(self.config.webhook_url) or ""
            resp = self.http("POST", url, json=body)
            return {"status": resp.status_code, "mode": "webhook"}
        body["channel"] = self.config.channel
        thread_ts = (delivery.previous or {}).get("ts")
        if thread_ts and delivery.kind != "trigger":
            body["thread_ts"] = thread_ts
        resp = self.http(
            "POST",
            self.config.api_url.rstrip("/") + "/chat.postMessage",
            json=body,
            headers={"Authorization": f"Bearer {self.secret(self.config.token)}"},
        )
        try:
            data = resp.json()
        except ValueError:
            raise RetryableDeliveryError("slack: chat.postMessage answered non-JSON") from None
        if not data.get("ok"):
            err = str(data.get("error") or "unknown_error")
            if err in _RETRYABLE:
                raise RetryableDeliveryError(f"slack: chat.postMessage failed: {err}")
            raise PermanentDeliveryError(f"slack: chat.postMessage failed: {err}")
        return {
            "status": resp.status_code,
            "mode": "chat.postMessage",
            "channel": data.get("channel"),
            "ts": thread_ts or data.get("ts"),
            "message_ts": data.get("ts"),
        }
