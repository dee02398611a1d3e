"""Amazon GuardDuty findings.

Variants: EventBridge events (``{"detail-type": "GuardDuty Finding", "source":
"aws.guardduty", "detail": <finding>}``, as delivered to SQS/Firehose/S3), exported
findings (S3 export: JSON lines of findings), and ``GetFindings`` responses
(``{"Findings": [...]}``). Finding fields per the GuardDuty "Finding format" reference;
``service.action`` holds the observed activity (AWS_API_CALL, NETWORK_CONNECTION,
PORT_PROBE, DNS_REQUEST, KUBERNETES_API_CALL, RDS_LOGIN_ATTEMPT), each with its
``remoteIpDetails``.
"""

from __future__ import annotations

from typing import Any, ClassVar

from mantissa.sources._jsonsql import payload_sql, transform_sql
from mantissa.sources.base import JsonSource

_ACTION_IPS = [
    "awsApiCallAction.remoteIpDetails",
    "networkConnectionAction.remoteIpDetails",
    "kubernetesApiCallAction.remoteIpDetails",
    "rdsLoginAttemptAction.remoteIpDetails",
    "portProbeAction.portProbeDetails[0].remoteIpDetails",
]


def _remote(field: str) -> str:
    return (
        "coalesce("
        + ", ".join(f"json_extract_string(service.action, '$.{p}.{field}')" for p in _ACTION_IPS)
        + ")"
    )


class GuardDuty(JsonSource):
    name = "guardduty"
    title = "Amazon GuardDuty findings"
    category = "cloud"
    variants = (
        "EventBridge events (detail-type GuardDuty Finding)",
        "exported findings (S3 export JSON lines, JSON arrays)",
        'GetFindings responses {"Findings": [...]}',
        "Panther-normalized findings",
    )
    wrapper_keys = ("Findings", "findings")
    signature = ("schemaVersion", "type", "severity")
    structure: ClassVar[dict[str, Any]] = {
        "schemaVersion": "VARCHAR",
        "accountId": "VARCHAR",
        "region": "VARCHAR",
        "partition": "VARCHAR",
        "id": "VARCHAR",
        "arn": "VARCHAR",
        "type": "VARCHAR",
        "resource": {
            "resourceType": "VARCHAR",
            "accessKeyDetails": {
                "accessKeyId": "VARCHAR",
                "principalId": "VARCHAR",
                "userName": "VARCHAR",
                "userType": "VARCHAR",
            },
            "instanceDetails": "JSON",
            "s3BucketDetails": "JSON",
            "eksClusterDetails": "JSON",
            "kubernetesDetails": "JSON",
            "ecsClusterDetails": "JSON",
            "containerDetails": "JSON",
            "rdsDbInstanceDetails": "JSON",
            "rdsDbUserDetails": "JSON",
            "lambdaDetails": "JSON",
            "ebsVolumeDetails": "JSON",
        },
        "service": {
            "serviceName": "VARCHAR",
            "detectorId": "VARCHAR",
            "action": "JSON",
            "evidence": "JSON",
            "archived": "BOOLEAN",
            "count": "BIGINT",
            "eventFirstSeen": "VARCHAR",
            "eventLastSeen": "VARCHAR",
            "resourceRole": "VARCHAR",
            "featureName": "VARCHAR",
            "additionalInfo": "JSON",
            "runtimeDetails": "JSON",
            "detection": "JSON",
        },
        "severity": "DOUBLE",
        "createdAt": "VARCHAR",
        "updatedAt": "VARCHAR",
        "title": "VARCHAR",
        "description": "VARCHAR",
    }
    _DOCUMENT = payload_sql([("$.detail.type", "$.detail")])
    common: ClassVar[dict[str, str]] = {
        "event_time": "coalesce(updatedAt, createdAt, service.eventLastSeen)",
        # a finding is updated in place (count, eventLastSeen): each update is an event
        "event_id": "CASE WHEN id IS NOT NULL THEN id || '@' || coalesce(updatedAt, '') END",
        "event_type": "type",
        "outcome": "'unknown'",
        "user": (
            "coalesce(resource.accessKeyDetails.userName, "
            "json_extract_string(resource.kubernetesDetails, '$.kubernetesUserDetails.username'), "
            "json_extract_string(resource.rdsDbUserDetails, '$.user'))"
        ),
        "src_ip": _remote("ipAddressV4"),
        "dst_ip": (
            "json_extract_string(resource.instanceDetails, "
            "'$.networkInterfaces[0].privateIpAddress')"
        ),
        "geo_country": _remote("country.countryName"),
        "geo_city": _remote("city.cityName"),
        "host": (
            "coalesce(json_extract_string(resource.instanceDetails, '$.instanceId'), "
            "json_extract_string(resource.eksClusterDetails, '$.name'), "
            "json_extract_string(resource.s3BucketDetails, '$[0].name'))"
        ),
        "message": "coalesce(title, type)",
        "_error": (
            "CASE WHEN type IS NULL OR id IS NULL "
            "THEN 'not a GuardDuty finding: type or id missing' END"
        ),
    }

    def native_sql(self) -> str:
        return transform_sql(self.structure, self._DOCUMENT)
