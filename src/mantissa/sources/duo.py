"""Cisco Duo: Admin API authentication log (v2 and legacy v1) and administrator log.

Records as ``GET /admin/v2/logs/authentication`` returns them (``response.authlogs[]``,
also accepted as the whole API response) and as ``GET /admin/v1/logs/administrator``
returns them (``response[]``). Duo Admin API, "Logs":
https://duo.com/docs/adminapi#logs
The administrator log's ``description`` is a JSON document encoded as a string; it is kept
as JSON. ``timestamp`` is epoch seconds; ``isotimestamp`` is ISO-8601 (some collectors
mangle it, so the epoch value wins).
"""

from __future__ import annotations

from typing import Any, ClassVar

from mantissa.sources._expr import event_time, first, ip, sample_records, score
from mantissa.sources.base import JsonSource

_LOCATION = {"city": "VARCHAR", "state": "VARCHAR", "country": "VARCHAR"}


class Duo(JsonSource):
    name = "duo"
    title = "Cisco Duo"
    category = "identity"
    variants = (
        "Admin API v2 authentication log records (response.authlogs[] or one per line)",
        "Admin API v1 authentication log records (username, ip, integration)",
        "administrator log records (action, object, description as JSON string)",
        "telephony log records",
    )
    wrapper_keys = ("response.authlogs", "authlogs", "response", "items")
    signature = ("txid", "factor")
    structure: ClassVar[dict[str, Any]] = {
        "txid": "VARCHAR",
        "timestamp": "VARCHAR",
        "isotimestamp": "VARCHAR",
        "event_type": "VARCHAR",
        "result": "VARCHAR",
        "reason": "VARCHAR",
        "factor": "VARCHAR",
        "alias": "VARCHAR",
        "email": "VARCHAR",
        "ood_software": "VARCHAR",
        "trusted_endpoint_status": "VARCHAR",
        "user": {"key": "VARCHAR", "name": "VARCHAR", "groups": ["VARCHAR"]},
        "application": {"key": "VARCHAR", "name": "VARCHAR"},
        "access_device": {
            "ip": "VARCHAR",
            "hostname": "VARCHAR",
            "browser": "VARCHAR",
            "browser_version": "VARCHAR",
            "os": "VARCHAR",
            "os_version": "VARCHAR",
            "flash_version": "VARCHAR",
            "java_version": "VARCHAR",
            "is_encryption_enabled": "VARCHAR",
            "is_firewall_enabled": "VARCHAR",
            "is_password_set": "VARCHAR",
            "epkey": "VARCHAR",
            "location": _LOCATION,
            "security_agents": "JSON",
        },
        "auth_device": {
            "ip": "VARCHAR",
            "key": "VARCHAR",
            "name": "VARCHAR",
            "location": _LOCATION,
        },
        "adaptive_trust_assessments": "JSON",
        # administrator log
        "action": "VARCHAR",
        "object": "VARCHAR",
        "username": "VARCHAR",
        "description": "JSON",
        # v1 authentication log
        "ip": "VARCHAR",
        "device": "VARCHAR",
        "integration": "VARCHAR",
        "new_enrollment": "BOOLEAN",
        "location": _LOCATION,
        # telephony log
        "context": "VARCHAR",
        "credits": "BIGINT",
        "phone": "VARCHAR",
        "type": "VARCHAR",
        "eventtype": "VARCHAR",
        "host": "VARCHAR",
    }
    event_time_parsed = True  # _expr.event_time parses each field itself
    common: ClassVar[dict[str, str]] = {
        # epoch seconds first: isotimestamp is sometimes mangled ("11: 41: 31+00: 00")
        "event_time": event_time("timestamp", "isotimestamp"),
        "event_id": "txid",
        "event_type": first(
            "action",
            "CASE WHEN txid IS NOT NULL OR factor IS NOT NULL "
            "THEN coalesce(event_type, 'authentication') END",
            "event_type",
            "CASE WHEN context IS NOT NULL THEN 'telephony' END",
            "CASE WHEN integration IS NOT NULL OR device IS NOT NULL THEN 'authentication' END",
        ),
        "outcome": (
            "CASE WHEN lower(result) = 'success' THEN 'success' "
            "WHEN lower(result) IN ('failure', 'denied', 'fraud', 'error') THEN 'failure' "
            "WHEN result IS NULL AND (action ILIKE '%error%' OR action ILIKE '%fail%') "
            "THEN 'failure' "
            "WHEN result IS NULL AND action IS NOT NULL THEN 'success' END"
        ),
        "user": first(
            "user.name",
            "username",
            "email",
            "description ->> 'email'",
            "CASE WHEN action IS NULL THEN object END",
        ),
        "src_ip": ip(first("access_device.ip", "ip", "description ->> 'ip_address'")),
        "geo_country": first("access_device.location.country", "location.country"),
        "geo_city": first("access_device.location.city", "location.city"),
        "host": first("access_device.hostname", "host"),
        "message": (
            "coalesce(action || coalesce(' ' || object, ''), "
            "coalesce(event_type, 'authentication') || ' ' || coalesce(factor, '') || ' ' || "
            "coalesce(result, '') || coalesce(' (' || reason || ')', '') || "
            "coalesce(' to ' || coalesce(application.name, integration), ''), "
            "context || ' ' || coalesce(phone, ''))"
        ),
        "_error": (
            "CASE WHEN coalesce(txid, action, result, factor, context, integration) IS NULL "
            "THEN 'not a Duo log record: no txid, action, result, factor or context' END"
        ),
    }

    def native_sql(self) -> str:
        # ``description`` is a JSON document in a string: keep it as JSON when it parses.
        base = super().native_sql()
        return (
            "SELECT * REPLACE (CASE WHEN json_type(description) = 'VARCHAR' AND "
            "json_valid(description ->> '$') THEN CAST(description ->> '$' AS JSON) "
            "ELSE description END AS description) FROM (" + base + ")"
        )

    def sniff(self, sample: list[str]) -> float:
        def ok(r: dict[str, Any]) -> bool:
            return (
                "isotimestamp" in r
                or {"txid", "factor"} <= r.keys()
                or ({"factor", "result"} <= r.keys() and "access_device" in r)
            )

        return score(sample_records(sample, self.wrapper_keys), ok)
