"""Google Cloud Audit Logs: ``LogEntry`` objects whose ``protoPayload`` is an ``AuditLog``.

Covers the four audit logs (``cloudaudit.googleapis.com%2Factivity``, ``data_access``,
``system_event``, ``policy``), delivered as Cloud Logging exports (one LogEntry per line),
``entries.list`` pages (``{"entries": [...]}``) or JSON arrays. Field names follow the
LogEntry and AuditLog references:
https://cloud.google.com/logging/docs/reference/v2/rest/v2/LogEntry and
https://cloud.google.com/logging/docs/reference/audit/auditlog/rest/Shared.Types/AuditLog
``protoPayload.status.code`` is a google.rpc.Code: absent or 0 is OK, 7 PERMISSION_DENIED.
"""

from __future__ import annotations

from typing import Any, ClassVar

from mantissa.sources._jsonsql import ip_sql, transform_sql
from mantissa.sources.base import JsonSource
from mantissa.sources.json_lines import trace_id_sql

_LOG_TYPE = (
    "CASE WHEN logName LIKE '%activity' THEN 'admin_activity' "
    "WHEN logName LIKE '%data_access' THEN 'data_access' "
    "WHEN logName LIKE '%system_event' THEN 'system_event' "
    "WHEN logName LIKE '%policy' THEN 'policy_denied' "
    "WHEN logName LIKE '%access_transparency' THEN 'access_transparency' END"
)


class GcpAudit(JsonSource):
    name = "gcp_audit"
    title = "Google Cloud Audit Logs"
    category = "cloud"
    variants = (
        "LogEntry per line (Cloud Logging sinks, gcloud logging read --format=json)",
        'entries.list pages {"entries": [...]} and JSON arrays',
        "admin activity, data access, system event, policy denied",
        "Panther-normalized events",
    )
    wrapper_keys = ("entries",)
    signature = ("protoPayload", "logName")
    structure: ClassVar[dict[str, Any]] = {
        "insertId": "VARCHAR",
        "logName": "VARCHAR",
        "severity": "VARCHAR",
        "timestamp": "VARCHAR",
        "receiveTimestamp": "VARCHAR",
        "resource": {"type": "VARCHAR", "labels": "JSON"},
        "labels": "JSON",
        "operation": {
            "id": "VARCHAR",
            "producer": "VARCHAR",
            "first": "BOOLEAN",
            "last": "BOOLEAN",
        },
        "trace": "VARCHAR",
        "spanId": "VARCHAR",
        "protoPayload": {
            "@type": "VARCHAR",
            "serviceName": "VARCHAR",
            "methodName": "VARCHAR",
            "resourceName": "VARCHAR",
            "numResponseItems": "VARCHAR",
            "authenticationInfo": {
                "principalEmail": "VARCHAR",
                "principalSubject": "VARCHAR",
                "authoritySelector": "VARCHAR",
                "serviceAccountKeyName": "VARCHAR",
                "serviceAccountDelegationInfo": "JSON",
                "thirdPartyPrincipal": "JSON",
            },
            "authorizationInfo": "JSON",
            "policyViolationInfo": "JSON",
            "requestMetadata": {
                "callerIp": "VARCHAR",
                "callerSuppliedUserAgent": "VARCHAR",
                "callerNetwork": "VARCHAR",
                "requestAttributes": "JSON",
                "destinationAttributes": "JSON",
            },
            "status": {"code": "BIGINT", "message": "VARCHAR", "details": "JSON"},
            "request": "JSON",
            "response": "JSON",
            "metadata": "JSON",
            "serviceData": "JSON",
            "resourceLocation": "JSON",
            "resourceOriginalState": "JSON",
        },
    }
    event_time_parsed = True  # the expression below parses each field itself
    common: ClassVar[dict[str, str]] = {
        # records whose time was dropped (Panther rule tests) get the receipt time
        "event_time": (
            "coalesce(mantissa_ts(timestamp), mantissa_ts(receiveTimestamp), "
            "mantissa_ts(json_extract_string(raw, '$.p_event_time')), now())"
        ),
        "event_id": "CASE WHEN insertId <> '' THEN logName || ':' || insertId END",
        "event_type": "protoPayload.methodName",
        "outcome": (
            # a denied permission check fails the call even without a status (data access
            # logs); no status and no authorization info says nothing about the outcome
            "CASE WHEN coalesce(protoPayload.status.code, 0) <> 0 THEN 'failure' "
            "WHEN list_contains(CAST(json_extract(protoPayload.authorizationInfo, "
            "'$[*].granted') AS VARCHAR[]), 'false') THEN 'failure' "
            "WHEN protoPayload.status IS NOT NULL "
            "OR json_array_length(protoPayload.authorizationInfo) > 0 THEN 'success' END"
        ),
        "user": (
            "coalesce(protoPayload.authenticationInfo.principalEmail, "
            "protoPayload.authenticationInfo.principalSubject)"
        ),
        "src_ip": ip_sql(
            "coalesce(protoPayload.requestMetadata.callerIp, "
            "json_extract_string(raw, '$.protoPayload.requestMetadata.callerIP'))"
        ),
        "user_agent": "protoPayload.requestMetadata.callerSuppliedUserAgent",
        "host": "json_extract_string(resource.labels, '$.project_id')",
        # LogEntry.trace is "projects/<p>/traces/<32 hex>": the bare id joins traces
        "trace_id": trace_id_sql('"trace"'),
        "message": (
            "coalesce(nullif(protoPayload.status.message, ''), "
            f"{_LOG_TYPE} || ' ' || protoPayload.serviceName || ' ' || protoPayload.methodName)"
        ),
        "_error": (
            "CASE WHEN protoPayload IS NULL "
            "THEN 'not a Cloud Audit Log entry: protoPayload missing' END"
        ),
    }

    def native_sql(self) -> str:
        return transform_sql(self.structure, canonical_key="logName")
