"""Jamf Pro webhook events (JSON) and Jamf Pro audit events.

Webhooks as Jamf Pro POSTs them: ``{"webhook": {id, name, webhookEvent, eventTimestamp},
"event": {...}}`` where ``event`` depends on ``webhookEvent`` (ComputerAdded,
ComputerCheckIn with ``event.computer``, ComputerInventoryCompleted,
ComputerPolicyFinished, MobileDeviceEnrolled, RestAPIOperation, SCEPChallenge, JSSStartup,
SmartGroupComputerMembershipChange ...). ``eventTimestamp`` is epoch milliseconds. Jamf
Developer Portal, "Webhooks": https://developer.jamf.com/jamf-pro/docs/webhooks-1
``event`` is kept as JSON (its shape is per event type); ``event->>'serialNumber'``,
``event->'computer'->>'udid'`` query it.

Audit events (``GET /api/v1/jamf-pro-server-... /history`` and the computer history
``{"username", "date", "note", "details"}`` objects) are accepted too.
"""

from __future__ import annotations

from typing import Any, ClassVar

from mantissa.sources._expr import event_time, first, ip, sample_records, score
from mantissa.sources.base import JsonSource


def _ev(path: str) -> str:
    return f"nullif(json_extract_string(event, '$.{path}'), '')"


class Jamf(JsonSource):
    name = "jamf"
    title = "Jamf Pro"
    category = "endpoint"
    variants = (
        "webhook events (JSON): computer, mobile device, policy, REST API, SCEP, JSS, "
        "smart group events",
        "object history / audit entries (username, date, note, details)",
    )
    wrapper_keys = ("results", "history")
    signature = ("webhook", "event")
    structure: ClassVar[dict[str, Any]] = {
        "webhook": {
            "id": "BIGINT",
            "name": "VARCHAR",
            "webhookEvent": "VARCHAR",
            "eventTimestamp": "VARCHAR",
        },
        "event": "JSON",
        # object history (audit) entries
        "id": "VARCHAR",
        "username": "VARCHAR",
        "date": "VARCHAR",
        "note": "VARCHAR",
        "details": "VARCHAR",
    }
    event_time_parsed = True  # _expr.event_time parses each field itself
    common: ClassVar[dict[str, str]] = {
        "event_time": event_time("webhook.eventTimestamp", "date"),
        "event_type": first(
            "webhook.webhookEvent", "CASE WHEN note IS NOT NULL THEN 'history' END"
        ),
        "outcome": (
            "CASE WHEN json_extract_string(event, '$.operationSuccessful') = 'false' "
            "OR json_extract_string(event, '$.successful') = 'false' THEN 'failure' "
            "WHEN json_extract_string(event, '$.operationSuccessful') = 'true' "
            "OR json_extract_string(event, '$.successful') = 'true' THEN 'success' END"
        ),
        "user": first(
            _ev("username"),
            _ev("authorizedUsername"),
            _ev("computer.username"),
            _ev("targetUser.username"),
            _ev("computer.realName"),
            "username",
        ),
        "src_ip": ip(first(_ev("ipAddress"), _ev("computer.ipAddress"), _ev("hostAddress"))),
        "host": first(
            _ev("deviceName"),
            _ev("computer.deviceName"),
            _ev("targetDevice.deviceName"),
            _ev("serialNumber"),
            _ev("computer.serialNumber"),
            _ev("jssUrl"),
        ),
        "message": first(
            "webhook.webhookEvent || coalesce(': ' || "
            + first(
                "concat_ws(' ', "
                + _ev("restAPIOperationType")
                + ", "
                + _ev("objectTypeName")
                + ", "
                + _ev("objectName")
                + ")",
                _ev("policyId"),
                _ev("trigger"),
                _ev("deviceName"),
                _ev("computer.deviceName"),
                _ev("name"),
            )
            + ", '')",
            "concat_ws(' ', note, details)",
        ),
        "_error": (
            "CASE WHEN webhook.webhookEvent IS NULL AND note IS NULL AND username IS NULL "
            "THEN 'not a Jamf Pro event: no webhook.webhookEvent' END"
        ),
    }

    def sniff(self, sample: list[str]) -> float:
        def ok(r: dict[str, Any]) -> bool:
            hook = r.get("webhook")
            return isinstance(hook, dict) and "webhookEvent" in hook

        return score(sample_records(sample), ok)
