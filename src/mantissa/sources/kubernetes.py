"""Kubernetes audit events (``audit.k8s.io/v1`` Event).

As the API server's log backend writes them (one Event per line), as its webhook backend
POSTs them (an ``EventList`` with ``items``), as EKS ships them to CloudWatch Logs, and as
AKS exports them through Azure Monitor diagnostic settings (``category: kube-audit``, the
Event as a JSON string in ``properties.log``, batches in ``records``). Kubernetes
"Auditing" and the ``audit.k8s.io/v1`` API reference:
https://kubernetes.io/docs/reference/config-api/apiserver-audit.v1/
One request produces one Event per stage (RequestReceived, ResponseStarted,
ResponseComplete, Panic) with the same ``auditID``: the event id is ``auditID:stage``.
"""

from __future__ import annotations

from typing import Any, ClassVar

from mantissa.sources._expr import event_time, first, ip, sample_records, score
from mantissa.sources.base import JsonSource

_USER = {
    "username": "VARCHAR",
    "uid": "VARCHAR",
    "groups": ["VARCHAR"],
    "extra": "JSON",
}


class Kubernetes(JsonSource):
    name = "kubernetes"
    title = "Kubernetes audit"
    category = "cloud"
    variants = (
        "audit.k8s.io/v1 Event, one per line (log backend, EKS CloudWatch export)",
        'EventList {"kind": "EventList", "items": [...]} (webhook backend)',
        'AKS kube-audit diagnostic records (properties.log as a JSON string, "records" batches)',
        "GKE audit entries from Cloud Logging (protoPayload of serviceName k8s.io)",
    )
    wrapper_keys = ("items", "records")
    signature = ("auditID", "verb")
    structure: ClassVar[dict[str, Any]] = {
        "kind": "VARCHAR",
        "apiVersion": "VARCHAR",
        "level": "VARCHAR",
        "auditID": "VARCHAR",
        "stage": "VARCHAR",
        "requestURI": "VARCHAR",
        "verb": "VARCHAR",
        "user": _USER,
        "impersonatedUser": _USER,
        "sourceIPs": ["VARCHAR"],
        "userAgent": "VARCHAR",
        "objectRef": {
            "resource": "VARCHAR",
            "namespace": "VARCHAR",
            "name": "VARCHAR",
            "uid": "VARCHAR",
            "apiGroup": "VARCHAR",
            "apiVersion": "VARCHAR",
            "resourceVersion": "VARCHAR",
            "subresource": "VARCHAR",
        },
        "responseStatus": {
            "metadata": "JSON",
            "status": "VARCHAR",
            "message": "VARCHAR",
            "reason": "VARCHAR",
            "details": "JSON",
            "code": "INTEGER",
        },
        "requestObject": "JSON",
        "responseObject": "JSON",
        "requestReceivedTimestamp": "VARCHAR",
        "stageTimestamp": "VARCHAR",
        "annotations": "JSON",
        # AKS diagnostic record envelope
        "category": "VARCHAR",
        "resourceId": "VARCHAR",
    }
    event_time_parsed = True  # _expr.event_time parses each field itself
    common: ClassVar[dict[str, str]] = {
        "event_time": event_time("requestReceivedTimestamp", "stageTimestamp"),
        "event_id": "auditID || ':' || coalesce(stage, '')",
        "event_type": (
            "verb || coalesce(' ' || objectRef.resource || "
            "coalesce('/' || objectRef.subresource, ''), '')"
        ),
        "outcome": (
            "CASE WHEN annotations ->> 'authorization.k8s.io/decision' = 'forbid' THEN 'failure' "
            "WHEN responseStatus.code >= 400 THEN 'failure' "
            "WHEN responseStatus.code BETWEEN 100 AND 399 THEN 'success' "
            "WHEN annotations ->> 'authorization.k8s.io/decision' = 'allow' THEN 'success' END"
        ),
        "user": "user.username",
        "src_ip": ip("sourceIPs[1]"),
        "user_agent": "userAgent",
        "host": first(
            "regexp_extract(resourceId, '(?i)/managedclusters/([^/]+)', 1)",
            "CASE WHEN category = 'gke-audit' THEN resourceId END",
        ),
        "message": (
            "coalesce(user.username, '?') || ' ' || verb || ' ' || coalesce(requestURI, "
            "concat_ws('/', objectRef.namespace, objectRef.resource, objectRef.name), '') "
            "|| coalesce(' → ' || CAST(responseStatus.code AS VARCHAR), '')"
        ),
        "_error": (
            "CASE WHEN verb IS NULL AND auditID IS NULL AND NOT coalesce(kind = 'Event' AND "
            "apiVersion LIKE 'audit.k8s.io/%', false) "
            "THEN 'not a Kubernetes audit Event: no verb, auditID or audit.k8s.io kind' END"
        ),
    }

    def native_sql(self) -> str:
        # AKS: the Event is in properties.log, a JSON string (or an object once a collector
        # decoded it); keep the envelope's category and resourceId by merging them in.
        # GKE: Cloud Logging LogEntry whose protoPayload is the k8s.io AuditLog: mapped
        # onto the Event fields (verb = last part of methodName io.k8s.<group>.<res>.<verb>).
        aks_log = (
            "CASE WHEN json_type(raw, '$.properties.log') = 'OBJECT' "
            "THEN CAST(json_extract(raw, '$.properties.log') AS VARCHAR) "
            "WHEN json_type(raw, '$.properties.log') = 'VARCHAR' "
            "AND json_valid(raw ->> '$.properties.log') "
            "AND json_type(raw ->> '$.properties.log') = 'OBJECT' "
            "THEN raw ->> '$.properties.log' END"
        )
        gke = (
            "json_object('kind', 'Event', 'apiVersion', 'audit.k8s.io/v1', "
            "'auditID', raw ->> '$.insertId', 'stage', 'ResponseComplete', "
            "'requestURI', raw ->> '$.protoPayload.resourceName', "
            "'verb', regexp_extract(raw ->> '$.protoPayload.methodName', '([^.]+)$', 1), "
            "'user', json_object('username', raw ->> '$.protoPayload.authenticationInfo.principalEmail'), "
            "'sourceIPs', json_array(raw ->> '$.protoPayload.requestMetadata.callerIp'), "
            "'userAgent', raw ->> '$.protoPayload.requestMetadata.callerSuppliedUserAgent', "
            "'responseStatus', json_object('code', CASE WHEN "
            "coalesce(raw ->> '$.protoPayload.status.code', '0') = '0' THEN 200 ELSE 403 END, "
            "'message', raw ->> '$.protoPayload.status.message'), "
            "'requestReceivedTimestamp', raw ->> '$.timestamp', "
            "'resourceId', raw ->> '$.resource.labels.cluster_name', "
            "'category', 'gke-audit')"
        )
        unwrapped = (
            f"SELECT line, file, ctx, CASE WHEN {aks_log} IS NOT NULL "
            f"THEN CAST(json_merge_patch({aks_log}, json_object("
            "'category', raw ->> '$.category', 'resourceId', raw ->> '$.resourceId')) AS VARCHAR) "
            "WHEN raw ->> '$.protoPayload.serviceName' = 'k8s.io' "
            f"THEN CAST({gke} AS VARCHAR) "
            "ELSE raw END AS raw FROM input"
        )
        return super().native_sql().replace("FROM input", f"FROM ({unwrapped})")

    def sniff(self, sample: list[str]) -> float:
        def ok(r: dict[str, Any]) -> bool:
            if str(r.get("apiVersion", "")).startswith("audit.k8s.io/"):
                return True
            if {"auditID", "verb"} <= r.keys():
                return True
            proto = r.get("protoPayload")
            if isinstance(proto, dict) and proto.get("serviceName") == "k8s.io":
                return True
            props = r.get("properties")
            return str(r.get("category", "")).startswith("kube-audit") and isinstance(props, dict)

        return score(sample_records(sample, self.wrapper_keys), ok)
