"""``type: servicenow``: incidents through the Table API with ``correlation_id``.

The alert id goes into ``correlation_id``: before creating, ``GET
/api/now/table/incident?sysparm_query=correlation_id=<id>`` finds an incident made by an
earlier, interrupted attempt, so retries never open a second ticket. Create is ``POST``
(201 ``{"result": {"sys_id", "number", ...}}``), updates are ``PATCH
/api/now/table/incident/{sys_id}``; closing sets ``state`` 6 (Resolved) with a close code
and notes. Docs: https://developer.servicenow.com/dev.do#!/reference/api/latest/rest/c_TableAPI
Auth: HTTP Basic (``username``/``password``) or an OAuth bearer ``token``.
"""

from __future__ import annotations

import base64
from typing import Any

from pydantic import Field, model_validator

from mantissa.alerts.destinations.base import (
    Delivery,
    Destination,
    DestinationConfig,
    alert_facts,
    alert_summary,
)
from mantissa.errors import PermanentDeliveryError

# ServiceNow urgency/impact: 1 = High, 2 = Medium, 3 = Low
_URGENCY = {"critical": "1", "high": "1", "medium": "2", "low": "3", "informational": "3"}
_IMPACT = {"critical": "1", "high": "2", "medium": "2", "low": "3", "informational": "3"}


class ServiceNowConfig(DestinationConfig):
    instance_url: str  # https://your-instance.service-now.com
    username: str | None = None
    password: str | None = None  # ${env:SNOW_PASSWORD}
    token: str | None = None  # ${env:SNOW_TOKEN}
    table: str = "incident"
    category: str | None = "security"
    assignment_group: str | None = None
    caller_id: str | None = None
    urgency_map: dict[str, str] = Field(default_factory=lambda: dict(_URGENCY))
    impact_map: dict[str, str] = Field(default_factory=lambda: dict(_IMPACT))
    resolved_state: str = "6"
    close_code: str = "Solution provided"

    @model_validator(mode="after")
    def _auth(self) -> ServiceNowConfig:
        if not self.token and not (self.username and self.password):
            raise ValueError("set username and password, or token")
        return self


class ServiceNow(Destination):
    type = "servicenow"
    Config = ServiceNowConfig
    supports_updates = True
    delivery_guarantee = "effectively_once (correlation_id looked up before create)"
    config: ServiceNowConfig

    def _headers(self) -> dict[str, str]:
        if self.config.token:
            auth = f"Bearer {self.secret(self.config.token)}"
        else:
            raw = f"{self.config.username}:{self.secret(self.config.password)}"
            auth = "Basic " + base64.b64encode(raw.encode()).decode()
        return {
            "Authorization": auth,
            "Accept": "application/json",
            "Content-Type": "application/json",
        }

    def _url(self, suffix: str = "") -> str:
        return f"{self.config.instance_url.rstrip('/')}/api/now/table/{self.config.table}{suffix}"

    def find(self, alert_id: str) -> dict[str, Any] | None:
        resp = self.http(
            "GET",
            self._url(),
            params={
                "sysparm_query": f"correlation_id={alert_id}",
                "sysparm_limit": "1",
                "sysparm_fields": "sys_id,number,state",
            },
            headers=self._headers(),
        )
        result = resp.json().get("result") or []
        return result[0] if result else None

    def record(self, delivery: Delivery) -> dict[str, Any]:
        alert = delivery.alert
        text = "\n".join(f"{k}: {v}" for k, v in alert_facts(alert))
        if alert.description:
            text = alert.description + "\n\n" + text
        rec: dict[str, Any] = {
            "short_description": alert_summary(alert, "trigger", 160),
            "description": text,
            "correlation_id": alert.id,
            "correlation_display": "Mantissa Log",
            "urgency": self.config.urgency_map.get(alert.severity.value, "2"),
            "impact": self.config.impact_map.get(alert.severity.value, "2"),
        }
        for k in ("category", "assignment_group", "caller_id"):
            v = getattr(self.config, k)
            if v:
                rec[k] = v
        return rec

    def send(self, delivery: Delivery) -> dict[str, Any]:
        alert = delivery.alert
        existing = None
        prev = delivery.previous or {}
        if prev.get("sys_id"):
            existing = {"sys_id": prev["sys_id"], "number": prev.get("number")}
        else:
            existing = self.find(alert.id)
        if delivery.kind in ("trigger", "escalate", "test"):
            if existing:
                return {
                    "sys_id": existing["sys_id"],
                    "number": existing.get("number"),
                    "created": False,
                }
            resp = self.http(
                "POST", self._url(), json=self.record(delivery), headers=self._headers()
            )
            res = resp.json().get("result") or {}
            return {"sys_id": res.get("sys_id"), "number": res.get("number"), "created": True}
        if not existing:
            raise PermanentDeliveryError(f"servicenow: no incident with correlation_id {alert.id}")
        patch: dict[str, Any] = {
            "work_notes": f"Mantissa alert {alert.id} is now {alert.status.value}."
        }
        if delivery.kind == "resolve":
            patch.update(
                state=self.config.resolved_state,
                close_code=self.config.close_code,
                close_notes=f"Closed in Mantissa Log as {alert.status.value}.",
            )
        self.http("PATCH", self._url(f"/{existing['sys_id']}"), json=patch, headers=self._headers())
        return {"sys_id": existing["sys_id"], "number": existing.get("number"), "updated": True}
