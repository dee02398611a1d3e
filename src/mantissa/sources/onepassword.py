"""1Password Events API: sign-in attempts, item usages and audit events.

Items as ``POST /api/v1/signinattempts``, ``/api/v1/itemusages`` and
``/api/v1/auditevents`` return them (``{"cursor", "has_more", "items": [...]}``, whole
responses accepted too). 1Password Events API reference:
https://developer.1password.com/docs/events-api/reference/
"""

from __future__ import annotations

from typing import Any, ClassVar

from mantissa.sources._expr import event_time, first, ip, sample_records, score
from mantissa.sources.base import JsonSource

_USER = {"uuid": "VARCHAR", "name": "VARCHAR", "email": "VARCHAR"}
_CLIENT = {
    "app_name": "VARCHAR",
    "app_version": "VARCHAR",
    "platform_name": "VARCHAR",
    "platform_version": "VARCHAR",
    "os_name": "VARCHAR",
    "os_version": "VARCHAR",
    "ip_address": "VARCHAR",
}
_LOCATION = {
    "country": "VARCHAR",
    "region": "VARCHAR",
    "city": "VARCHAR",
    "latitude": "DOUBLE",
    "longitude": "DOUBLE",
}


class OnePassword(JsonSource):
    name = "onepassword"
    title = "1Password Events API"
    category = "identity"
    variants = (
        "sign-in attempts (category, type, target_user, client)",
        "item usages (action, item_uuid, vault_uuid, user, client)",
        "audit events (actor_uuid, action, object_type, session)",
        'API responses {"cursor", "has_more", "items": [...]}',
    )
    wrapper_keys = ("items",)
    signature = ("uuid", "timestamp", "client")
    structure: ClassVar[dict[str, Any]] = {
        "uuid": "VARCHAR",
        "timestamp": "VARCHAR",
        # sign-in attempts
        "session_uuid": "VARCHAR",
        "category": "VARCHAR",
        "type": "VARCHAR",
        "country": "VARCHAR",
        "details": "JSON",
        "target_user": _USER,
        "client": _CLIENT,
        "location": _LOCATION,
        # item usages
        "used_version": "BIGINT",
        "vault_uuid": "VARCHAR",
        "item_uuid": "VARCHAR",
        "user": _USER,
        "action": "VARCHAR",
        # audit events
        "actor_uuid": "VARCHAR",
        "actor_details": _USER,
        "object_type": "VARCHAR",
        "object_uuid": "VARCHAR",
        "object_details": "JSON",
        "aux_id": "BIGINT",
        "aux_uuid": "VARCHAR",
        "aux_details": "JSON",
        "aux_info": "VARCHAR",
        "session": {
            "uuid": "VARCHAR",
            "login_time": "VARCHAR",
            "device_uuid": "VARCHAR",
            "ip": "VARCHAR",
        },
    }
    event_time_parsed = True  # _expr.event_time parses each field itself
    common: ClassVar[dict[str, str]] = {
        "event_time": event_time("timestamp"),
        "event_id": "uuid",
        "event_type": first(
            "CASE WHEN category IS NOT NULL THEN 'signin:' || category END",
            "CASE WHEN item_uuid IS NOT NULL THEN 'item:' || coalesce(action, 'use') END",
            "CASE WHEN object_type IS NOT NULL THEN object_type || '.' || action END",
            "action",
        ),
        "outcome": (
            "CASE WHEN category = 'success' THEN 'success' "
            "WHEN category IS NOT NULL THEN 'failure' "
            "WHEN item_uuid IS NOT NULL OR actor_uuid IS NOT NULL THEN 'success' END"
        ),
        "user": first(
            "target_user.email",
            "user.email",
            "actor_details.email",
            "target_user.name",
            "user.name",
            "actor_uuid",
        ),
        "src_ip": ip(first("client.ip_address", "session.ip")),
        "user_agent": (
            "nullif(concat_ws(' ', client.app_name, client.app_version, client.platform_name,"
            " client.platform_version, client.os_name, client.os_version), '')"
        ),
        "geo_country": first("location.country", "country"),
        "geo_city": "location.city",
        "message": first(
            "CASE WHEN category IS NOT NULL THEN 'sign-in ' || category || "
            "coalesce(' (' || type || ')', '') END",
            "CASE WHEN item_uuid IS NOT NULL THEN 'item ' || coalesce(action, 'used') || ' ' "
            "|| item_uuid || ' in vault ' || coalesce(vault_uuid, '?') END",
            "CASE WHEN action IS NOT NULL THEN action || ' ' || coalesce(object_type, '') || ' '"
            " || coalesce(object_uuid, '') END",
        ),
        "_error": (
            "CASE WHEN uuid IS NULL AND category IS NULL AND item_uuid IS NULL "
            "AND action IS NULL THEN 'not a 1Password event: no uuid, category, item_uuid "
            "or action' END"
        ),
    }

    def sniff(self, sample: list[str]) -> float:
        def ok(r: dict[str, Any]) -> bool:
            if not {"uuid", "timestamp"} <= r.keys():
                return False
            return bool(
                {"category", "target_user"} <= r.keys()
                or {"item_uuid", "vault_uuid"} <= r.keys()
                or {"actor_uuid", "object_type"} <= r.keys()
            )

        return score(sample_records(sample, self.wrapper_keys), ok)
