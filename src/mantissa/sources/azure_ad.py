"""Microsoft Entra ID (Azure AD) sign-in and audit logs.

Variants:
* Azure Monitor diagnostic export (Event Hub / storage account): ``{"records": [...]}`` or
  one record per line, categories ``SignInLogs``, ``NonInteractiveUserSignInLogs``,
  ``ServicePrincipalSignInLogs``, ``ManagedIdentitySignInLogs`` and ``AuditLogs``; the
  event itself is under ``properties`` ("Sign-in log schema in Azure Monitor").
* Microsoft Graph ``signIn`` resource (``/auditLogs/signIns``) and ``directoryAudit``
  resource (``/auditLogs/directoryAudits``): the event at top level, pages as
  ``{"value": [...]}``.

``resultType`` is the AAD STS error code as a string: ``0`` is success, anything else a
failure code (50126 bad password, 50140 KMSI interrupt, ...).
"""

from __future__ import annotations

from typing import Any, ClassVar

from mantissa.sources._jsonsql import ip_sql, transform_sql
from mantissa.sources.base import JsonSource

_STATUS = {"errorCode": "BIGINT", "failureReason": "VARCHAR", "additionalDetails": "VARCHAR"}
_DEVICE = {
    "deviceId": "VARCHAR",
    "displayName": "VARCHAR",
    "operatingSystem": "VARCHAR",
    "browser": "VARCHAR",
    "isCompliant": "BOOLEAN",
    "isManaged": "BOOLEAN",
    "trustType": "VARCHAR",
}
_LOCATION = {
    "city": "VARCHAR",
    "state": "VARCHAR",
    "countryOrRegion": "VARCHAR",
    "geoCoordinates": {"latitude": "DOUBLE", "longitude": "DOUBLE", "altitude": "DOUBLE"},
}
_SIGNIN: dict[str, Any] = {
    "id": "VARCHAR",
    "createdDateTime": "VARCHAR",
    "userDisplayName": "VARCHAR",
    "userPrincipalName": "VARCHAR",
    "userId": "VARCHAR",
    "userType": "VARCHAR",
    "appId": "VARCHAR",
    "appDisplayName": "VARCHAR",
    "ipAddress": "VARCHAR",
    "clientAppUsed": "VARCHAR",
    "userAgent": "VARCHAR",
    "correlationId": "VARCHAR",
    "conditionalAccessStatus": "VARCHAR",
    "appliedConditionalAccessPolicies": "JSON",
    "authenticationRequirement": "VARCHAR",
    "authenticationProtocol": "VARCHAR",
    "authenticationDetails": "JSON",
    "authenticationMethodsUsed": "JSON",
    "isInteractive": "BOOLEAN",
    "tokenIssuerName": "VARCHAR",
    "tokenIssuerType": "VARCHAR",
    "riskDetail": "VARCHAR",
    "riskLevelAggregated": "VARCHAR",
    "riskLevelDuringSignIn": "VARCHAR",
    "riskState": "VARCHAR",
    "riskEventTypes": "JSON",
    "riskEventTypes_v2": "JSON",
    "resourceDisplayName": "VARCHAR",
    "resourceId": "VARCHAR",
    "servicePrincipalId": "VARCHAR",
    "servicePrincipalName": "VARCHAR",
    "crossTenantAccessType": "VARCHAR",
    "homeTenantId": "VARCHAR",
    "flaggedForReview": "BOOLEAN",
    "status": _STATUS,
    "deviceDetail": _DEVICE,
    "location": _LOCATION,
    "networkLocationDetails": "JSON",
    "mfaDetail": "JSON",
    "originalRequestId": "VARCHAR",
    "processingTimeInMilliseconds": "BIGINT",
    # directoryAudit (AuditLogs category)
    "activityDateTime": "VARCHAR",
    "activityDisplayName": "VARCHAR",
    "category": "VARCHAR",
    "operationType": "VARCHAR",
    "loggedByService": "VARCHAR",
    "result": "VARCHAR",
    "resultReason": "VARCHAR",
    "initiatedBy": "JSON",
    "targetResources": "JSON",
    "additionalDetails": "JSON",
}


SIGNIN_CATEGORIES = {
    "signinlogs",
    "noninteractiveusersigninlogs",
    "serviceprincipalsigninlogs",
    "managedidentitysigninlogs",
    "adfssigninlogs",
    "auditlogs",
    "provisioninglogs",
    "riskyusers",
    "userriskevents",
}


def _entra_share(sample: list[str]) -> tuple[int, int]:
    """(Entra ID records, all records) among the objects of ``sample``."""
    import json

    seen = hits = 0
    for line in sample:
        try:
            obj = json.loads(line)
        except ValueError:
            continue
        items = obj if isinstance(obj, list) else [obj]
        for it in items:
            if isinstance(it, dict):
                for k in ("records", "value"):
                    if isinstance(it.get(k), list):
                        items = it[k]
                        break
        for o in items[:5]:
            if not isinstance(o, dict):
                continue
            seen += 1
            cat = str(o.get("category", "")).lower()
            graph = "createdDateTime" in o and "userPrincipalName" in o
            audit = "activityDateTime" in o and "activityDisplayName" in o
            if cat in SIGNIN_CATEGORIES or graph or audit:
                hits += 1
    return hits, seen


class AzureAD(JsonSource):
    name = "azure_ad"
    title = "Microsoft Entra ID (Azure AD) sign-in and audit logs"
    category = "identity"
    variants = (
        'Azure Monitor export: {"records": [...]} or NDJSON; SignInLogs, '
        "NonInteractiveUserSignInLogs, ServicePrincipalSignInLogs, "
        "ManagedIdentitySignInLogs, AuditLogs",
        'Microsoft Graph signIn and directoryAudit resources ({"value": [...]} pages)',
        "Panther-normalized events",
    )
    wrapper_keys = ("records", "value")
    signature = ("operationName", "properties", "tenantId")
    structure: ClassVar[dict[str, Any]] = {
        "time": "VARCHAR",
        "resourceId": "VARCHAR",
        "operationName": "VARCHAR",
        "operationVersion": "VARCHAR",
        "category": "VARCHAR",
        "tenantId": "VARCHAR",
        "resultType": "VARCHAR",
        "resultSignature": "VARCHAR",
        "resultDescription": "VARCHAR",
        "durationMs": "BIGINT",
        "callerIpAddress": "VARCHAR",
        "correlationId": "VARCHAR",
        "identity": "VARCHAR",
        "Level": "VARCHAR",
        "location": "VARCHAR",
        "properties": _SIGNIN,
    }
    # Graph resources carry the event at top level: present them as Azure Monitor records
    # ({time, category, operationName, properties: <resource>}) so one schema serves both.
    _DOCUMENT = (
        "CASE WHEN NOT json_exists(raw, '$.properties') AND "
        "(json_exists(raw, '$.createdDateTime') OR json_exists(raw, '$.activityDateTime')) "
        "THEN json_object("
        "'time', coalesce(json_extract_string(raw, '$.createdDateTime'), "
        "json_extract_string(raw, '$.activityDateTime')), "
        "'category', CASE WHEN json_exists(raw, '$.activityDateTime') THEN 'AuditLogs' "
        "ELSE 'SignInLogs' END, "
        "'operationName', coalesce(json_extract_string(raw, '$.activityDisplayName'), "
        "'Sign-in activity'), "
        "'callerIpAddress', json_extract_string(raw, '$.ipAddress'), "
        "'correlationId', json_extract_string(raw, '$.correlationId'), "
        "'resultType', coalesce(json_extract_string(raw, '$.status.errorCode'), "
        "json_extract_string(raw, '$.result')), "
        "'properties', json(raw))::VARCHAR "
        "ELSE raw END"
    )
    common: ClassVar[dict[str, str]] = {
        "event_time": "coalesce(time, properties.createdDateTime, properties.activityDateTime)",
        "event_id": (
            "CASE WHEN properties.id IS NOT NULL AND properties.id <> '' "
            "THEN coalesce(category, '') || ':' || properties.id END"
        ),
        "event_type": "coalesce(properties.activityDisplayName, operationName)",
        "outcome": (
            "CASE WHEN lower(resultType) IN ('0', 'success', 'succeeded') "
            "OR lower(properties.result) = 'success' THEN 'success' "
            "WHEN lower(properties.result) IN ('failure', 'timeout') THEN 'failure' "
            "WHEN regexp_full_match(resultType, '[0-9]+') THEN 'failure' "
            "WHEN lower(resultType) IN ('failure', 'failed') THEN 'failure' END"
        ),
        "user": (
            "coalesce(nullif(properties.userPrincipalName, ''), "
            "json_extract_string(properties.initiatedBy, '$.user.userPrincipalName'), "
            "nullif(properties.servicePrincipalName, ''), "
            "json_extract_string(properties.initiatedBy, '$.app.displayName'), "
            "nullif(identity, ''))"
        ),
        "src_ip": ip_sql(
            "coalesce(nullif(properties.ipAddress, ''), nullif(callerIpAddress, ''), "
            "json_extract_string(properties.initiatedBy, '$.user.ipAddress'))"
        ),
        "user_agent": "properties.userAgent",
        "geo_country": (
            "coalesce(nullif(properties.location.countryOrRegion, ''), "
            "CASE WHEN length(location) = 2 THEN location END)"
        ),
        "geo_city": "nullif(properties.location.city, '')",
        "host": "nullif(properties.deviceDetail.displayName, '')",
        "message": (
            "coalesce(nullif(properties.status.failureReason, ''), nullif(resultDescription, ''), "
            "properties.activityDisplayName, operationName)"
        ),
        "_error": (
            "CASE WHEN operationName IS NULL AND properties.createdDateTime IS NULL "
            "THEN 'not an Entra ID sign-in or audit record: operationName missing' END"
        ),
    }

    def native_sql(self) -> str:
        return transform_sql(self.structure, self._DOCUMENT)

    def sniff(self, sample: list[str]) -> float:
        """Records of the Entra ID categories, or Graph signIn/directoryAudit resources."""
        hits, seen = _entra_share(sample)
        return hits / seen if seen else 0.0
