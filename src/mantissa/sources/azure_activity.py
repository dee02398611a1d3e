"""Azure Activity Log as exported by Azure Monitor diagnostic settings.

Event Hub and storage-account exports deliver ``{"records": [...]}`` documents (storage
blobs: one record per line); field names follow "Azure Activity Log event schema" /
"Azure resource logs common schema": ``time``, ``resourceId``, ``operationName``,
``category`` (Administrative, Security, ServiceHealth, Alert, Recommendation, Policy,
Autoscale, ResourceHealth), ``resultType``, ``callerIpAddress``, ``identity`` (the
caller's JWT ``claims`` and the RBAC ``authorization``), ``properties``.
"""

from __future__ import annotations

from typing import Any, ClassVar

from mantissa.sources._jsonsql import ip_sql, transform_sql
from mantissa.sources.base import JsonSource

_CLAIM = "json_extract_string(identity.claims, '$.\"{}\"')"
_UPN = _CLAIM.format("http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn")
_NAME = _CLAIM.format("http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name")


class AzureActivity(JsonSource):
    name = "azure_activity"
    title = "Azure Activity Log"
    category = "cloud"
    variants = (
        'Azure Monitor export {"records": [...]} (Event Hub, storage account)',
        "NDJSON, one record per line",
        "Panther-normalized events",
    )
    wrapper_keys = ("records",)
    signature = ("operationName", "resourceId", "category")
    structure: ClassVar[dict[str, Any]] = {
        "time": "VARCHAR",
        "resourceId": "VARCHAR",
        "operationName": "VARCHAR",
        "operationVersion": "VARCHAR",
        "category": "VARCHAR",
        "resultType": "VARCHAR",
        "resultSignature": "VARCHAR",
        "resultDescription": "VARCHAR",
        "durationMs": "BIGINT",
        "callerIpAddress": "VARCHAR",
        "correlationId": "VARCHAR",
        "identity": {
            "authorization": {
                "scope": "VARCHAR",
                "action": "VARCHAR",
                "evidence": {
                    "role": "VARCHAR",
                    "roleAssignmentScope": "VARCHAR",
                    "roleAssignmentId": "VARCHAR",
                    "roleDefinitionId": "VARCHAR",
                    "principalId": "VARCHAR",
                    "principalType": "VARCHAR",
                },
            },
            "claims": "JSON",
        },
        "level": "VARCHAR",
        "location": "VARCHAR",
        "tenantId": "VARCHAR",
        "properties": "JSON",
    }
    common: ClassVar[dict[str, str]] = {
        "event_time": "time",
        "event_type": "operationName",
        "outcome": (
            "CASE WHEN lower(resultType) IN ('success', 'succeeded', 'accept') THEN 'success' "
            "WHEN lower(resultType) IN ('failure', 'failed', 'fail') THEN 'failure' END"
        ),
        "user": (
            f"coalesce(trim({_UPN}), trim({_NAME}), "
            "json_extract_string(properties, '$.caller'), "
            "json_extract_string(identity.claims, '$.appid'), "
            "identity.authorization.evidence.principalId)"
        ),
        "src_ip": ip_sql("callerIpAddress"),
        "host": "regexp_extract(resourceId, '/([^/]+)$', 1)",
        "message": "coalesce(resultDescription, operationName || ' ' || coalesce(resultType, ''))",
        "_error": (
            "CASE WHEN operationName IS NULL "
            "THEN 'not an Azure Activity Log record: operationName missing' END"
        ),
    }

    def native_sql(self) -> str:
        return transform_sql(self.structure)

    def sniff(self, sample: list[str]) -> float:
        """Azure Monitor records that are not Entra ID sign-in/audit records."""
        from mantissa.sources.azure_ad import _entra_share
        from mantissa.sources.detect import sample_objects

        objs = sample_objects(sample, ("records",))
        if not objs:
            return 0.0
        entra, _ = _entra_share(sample)
        act = sum(1 for o in objs if "operationName" in o and ("resourceId" in o or "time" in o))
        return max(0.0, act - entra) / len(objs)
