"""AWS CloudTrail: ``{"Records": [...]}`` log files (plain or gzip), NDJSON of single
events, and EventBridge envelopes (``detail``). Digest files are skipped, not rejected.

Fields follow the CloudTrail record contents reference:
https://docs.aws.amazon.com/awscloudtrail/latest/userguide/cloudtrail-event-reference-record-contents.html
"""

from __future__ import annotations

from typing import Any, ClassVar

from mantissa.sources._jsonsql import payload_sql, transform_sql
from mantissa.sources.base import JsonSource

_USER_IDENTITY: dict[str, Any] = {
    "type": "VARCHAR",
    "principalId": "VARCHAR",
    "arn": "VARCHAR",
    "accountId": "VARCHAR",
    "accessKeyId": "VARCHAR",
    "userName": "VARCHAR",
    "invokedBy": "VARCHAR",
    "identityProvider": "VARCHAR",
    "credentialId": "VARCHAR",
    "sessionContext": {
        "sessionIssuer": {
            "type": "VARCHAR",
            "principalId": "VARCHAR",
            "arn": "VARCHAR",
            "accountId": "VARCHAR",
            "userName": "VARCHAR",
        },
        "attributes": {"creationDate": "VARCHAR", "mfaAuthenticated": "VARCHAR"},
        "sourceIdentity": "VARCHAR",
        "webIdFederationData": "JSON",
        "ec2RoleDelivery": "VARCHAR",
    },
    "onBehalfOf": "JSON",
}


class CloudTrail(JsonSource):
    name = "cloudtrail"
    title = "AWS CloudTrail"
    category = "cloud"
    variants = (
        'S3 log files {"Records": [...]} (plain or .gz)',
        "NDJSON, one event per line",
        "EventBridge events (detail = CloudTrail record)",
        "digest files skipped",
    )
    wrapper_keys = ("Records",)
    signature = ("eventSource", "eventName")
    structure: ClassVar[dict[str, Any]] = {
        "eventVersion": "VARCHAR",
        "userIdentity": _USER_IDENTITY,
        "eventTime": "VARCHAR",
        "eventSource": "VARCHAR",
        "eventName": "VARCHAR",
        "awsRegion": "VARCHAR",
        "sourceIPAddress": "VARCHAR",
        "userAgent": "VARCHAR",
        "errorCode": "VARCHAR",
        "errorMessage": "VARCHAR",
        "requestParameters": "JSON",
        "responseElements": "JSON",
        "additionalEventData": "JSON",
        "requestID": "VARCHAR",
        "eventID": "VARCHAR",
        "readOnly": "BOOLEAN",
        "resources": "JSON",
        "eventType": "VARCHAR",
        "apiVersion": "VARCHAR",
        "managementEvent": "BOOLEAN",
        "recipientAccountId": "VARCHAR",
        "serviceEventDetails": "JSON",
        "sharedEventID": "VARCHAR",
        "vpcEndpointId": "VARCHAR",
        "vpcEndpointAccountId": "VARCHAR",
        "eventCategory": "VARCHAR",
        "sessionCredentialFromConsole": "VARCHAR",
        "edgeDeviceDetails": "JSON",
        "tlsDetails": {
            "tlsVersion": "VARCHAR",
            "cipherSuite": "VARCHAR",
            "clientProvidedHostHeader": "VARCHAR",
        },
        "insightDetails": "JSON",
        "addendum": "JSON",
    }
    common: ClassVar[dict[str, str]] = {
        # Logstash re-exports (OTRF datasets) moved eventTime to @timestamp
        "event_time": "coalesce(eventTime, json_extract_string(raw, '$.\"@timestamp\"'))",
        "event_id": "eventID",
        # Insights events have no eventName of their own: the type says what they are
        "event_type": "coalesce(eventName, eventType)",
        "outcome": (
            "CASE WHEN errorCode IS NOT NULL THEN 'failure' "
            "WHEN eventName = 'ConsoleLogin' AND responseElements->>'ConsoleLogin' = 'Failure' "
            "THEN 'failure' ELSE 'success' END"
        ),
        "user": (
            "coalesce(userIdentity.userName, userIdentity.sessionContext.sessionIssuer.userName,"
            " CASE WHEN userIdentity.type = 'Root' THEN 'root' END,"
            " regexp_extract(userIdentity.arn, '[:/]([^:/]+)$', 1), userIdentity.principalId)"
        ),
        "src_ip": "sourceIPAddress",
        "user_agent": "userAgent",
        "host": "recipientAccountId",
        "message": (
            "coalesce(eventSource || ':' || eventName, eventType || ':' || "
            "json_extract_string(insightDetails, '$.eventName'))"
        ),
        "_error": (
            "CASE WHEN eventName IS NULL AND insightDetails IS NULL "
            "AND NOT json_exists(raw, '$.digestStartTime') "
            "THEN 'not a CloudTrail event: eventName missing' END"
        ),
        # a cheap substring test first: the JSON lookups then run only on candidate rows
        "_skip": (
            "CASE WHEN contains(raw, 'digest') AND (json_exists(raw, '$.digestStartTime') OR "
            "json_exists(raw, '$.digestPublicKeyFingerprint')) THEN 'CloudTrail digest file' END"
        ),
    }

    def native_sql(self) -> str:
        # EventBridge delivers the CloudTrail record under "detail"; Panther-normalized
        # records may have lower-cased keys (folded back only for rows that need it)
        doc = payload_sql([("$.detail.eventName", "$.detail")])
        return transform_sql(self.structure, doc, canonical_key="eventName")
