"""Okta System Log: LogEvent objects from the System Log API (``/api/v1/logs``).

The API returns a JSON array of events (one page); collectors also write one event per
line. Field names and types follow the LogEvent object reference:
https://developer.okta.com/docs/reference/api/system-log/#logevent-object
``outcome.result`` is SUCCESS, FAILURE, SKIPPED, ALLOW, DENY, CHALLENGE or UNKNOWN.
``outcome`` is also the name of the common column (success|failure|unknown), so the
vendor's object is stored flat as the columns ``"outcome.result"`` and
``"outcome.reason"``: ``WHERE "outcome.result" = 'FAILURE'`` reads as the vendor field.
"""

from __future__ import annotations

from typing import Any, ClassVar

from mantissa.sources._jsonsql import transform_sql
from mantissa.sources.base import JsonSource

_GEO: dict[str, Any] = {
    "city": "VARCHAR",
    "state": "VARCHAR",
    "country": "VARCHAR",
    "postalCode": "VARCHAR",
    "geolocation": {"lat": "DOUBLE", "lon": "DOUBLE"},
}


class Okta(JsonSource):
    name = "okta"
    title = "Okta System Log"
    category = "identity"
    variants = (
        "System Log API page (JSON array of LogEvent)",
        "NDJSON, one LogEvent per line",
        "Panther-normalized events (space-separated timestamps)",
    )
    signature = ("eventType", "actor")
    structure: ClassVar[dict[str, Any]] = {
        "uuid": "VARCHAR",
        "published": "VARCHAR",
        "eventType": "VARCHAR",
        "version": "VARCHAR",
        "severity": "VARCHAR",
        "legacyEventType": "VARCHAR",
        "displayMessage": "VARCHAR",
        "actor": {
            "id": "VARCHAR",
            "type": "VARCHAR",
            "alternateId": "VARCHAR",
            "displayName": "VARCHAR",
            "detailEntry": "JSON",
        },
        "client": {
            "userAgent": {"rawUserAgent": "VARCHAR", "os": "VARCHAR", "browser": "VARCHAR"},
            "zone": "VARCHAR",
            "device": "VARCHAR",
            "id": "VARCHAR",
            "ipAddress": "VARCHAR",
            "geographicalContext": _GEO,
        },
        "device": "JSON",
        "authenticationContext": {
            "authenticationProvider": "VARCHAR",
            "credentialProvider": "VARCHAR",
            "credentialType": "VARCHAR",
            "issuer": "JSON",
            "externalSessionId": "VARCHAR",
            "interface": "VARCHAR",
            "authenticationStep": "BIGINT",
            "rootSessionId": "VARCHAR",
        },
        "outcome": {"result": "VARCHAR", "reason": "VARCHAR"},
        "target": "JSON",
        "transaction": {"type": "VARCHAR", "id": "VARCHAR", "detail": "JSON"},
        "debugContext": {"debugData": "JSON"},
        "request": {"ipChain": "JSON"},
        "securityContext": {
            "asNumber": "BIGINT",
            "asOrg": "VARCHAR",
            "isp": "VARCHAR",
            "domain": "VARCHAR",
            "isProxy": "BOOLEAN",
        },
    }
    event_time_parsed = True  # the expression below parses each field itself
    common: ClassVar[dict[str, str]] = {
        # Panther-normalized test events may carry p_event_time instead; records whose
        # time was dropped or redacted get the receipt time, as Splunk and Elastic do
        "event_time": (
            "coalesce(mantissa_ts(published), "
            "mantissa_ts(json_extract_string(raw, '$.p_event_time')), now())"
        ),
        "event_id": "uuid",
        "event_type": "eventType",
        "outcome": (
            "CASE WHEN upper(\"outcome.result\") IN ('SUCCESS', 'ALLOW') THEN 'success' "
            "WHEN upper(\"outcome.result\") IN ('FAILURE', 'DENY') THEN 'failure' END"
        ),
        "user": "actor.alternateId",
        "src_ip": (
            "coalesce(nullif(client.ipAddress, ''), "
            "json_extract_string(request.ipChain, '$[0].ip'))"
        ),
        "user_agent": "client.userAgent.rawUserAgent",
        "geo_country": "client.geographicalContext.country",
        "geo_city": "client.geographicalContext.city",
        "message": "coalesce(displayMessage, eventType)",
        "_error": (
            "CASE WHEN eventType IS NULL THEN 'not an Okta LogEvent: eventType missing' END"
        ),
    }

    def native_sql(self) -> str:
        inner = transform_sql(self.structure, canonical_key="eventType")
        return (
            'SELECT * EXCLUDE (outcome), outcome.result AS "outcome.result", '
            f'outcome.reason AS "outcome.reason" FROM ({inner}) AS _o'
        )
