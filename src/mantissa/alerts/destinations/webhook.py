"""``type: webhook``: a signed JSON POST to any URL.

Each request carries ``X-Mantissa-Timestamp: <unix seconds>`` and
``X-Mantissa-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>" with the secret>``
(the receiver recomputes it over the raw body and rejects stale timestamps), plus
``Idempotency-Key`` / ``X-Mantissa-Delivery`` so a receiver can drop retried duplicates.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import Any

import orjson
from pydantic import Field

from mantissa.alerts.destinations.base import Delivery, Destination, DestinationConfig


class WebhookConfig(DestinationConfig):
    url: str
    secret: str | None = None  # ${env:VAR}
    headers: dict[str, str] = Field(default_factory=dict)  # values may be ${env:VAR}


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """``sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">``."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def alert_body(delivery: Delivery) -> dict[str, Any]:
    """The JSON document webhook and file destinations carry."""
    alert = delivery.alert.model_dump(mode="json", exclude={"deliveries"})
    return {
        "version": 1,
        "kind": delivery.kind,
        "delivery_id": delivery.idempotency_key,
        "destination": delivery.destination_id,
        "sent_at": int(time.time()),
        "alert": alert,
    }


class Webhook(Destination):
    type = "webhook"
    Config = WebhookConfig
    supports_updates = True
    delivery_guarantee = "at_least_once (receivers dedup on Idempotency-Key)"
    config: WebhookConfig

    def send(self, delivery: Delivery) -> dict[str, Any]:
        body = orjson.dumps(alert_body(delivery))
        ts = str(int(time.time()))
        headers = {k: self.secret(v) or "" for k, v in self.config.headers.items()}
        headers.update(
            {
                "Content-Type": "application/json",
                "X-Mantissa-Timestamp": ts,
                "X-Mantissa-Delivery": delivery.idempotency_key,
                "X-Mantissa-Event": delivery.kind,
                "Idempotency-Key": delivery.idempotency_key,
            }
        )
        secret = self.secret(self.config.secret)
        if secret:
            headers["X-Mantissa-Signature"] = sign(secret, ts, body)
        resp = self.http("POST", self.secret(self.config.url) or "", content=body, headers=headers)
        return {"status": resp.status_code}
