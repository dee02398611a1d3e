"""AWS Config: configuration items, snapshot/history files and SNS notifications.

Variants (AWS Config Developer Guide, "Components of a configuration item", "Delivering
configuration snapshots", "Notifications that AWS Config sends to an Amazon SNS topic"):
* configuration items, one per line (``configurationItemVersion`` 1.0–1.3; the RDK's
  Python-dumped ``datetime.datetime(...)`` capture times are understood too);
* configuration snapshot and history files ``{"fileVersion", "configurationItems": [...]}``;
* SNS notifications ``{"Type": "Notification", "Message": ...}`` with the message as an
  object or, as SNS actually delivers it, a JSON string: configuration item change
  notifications (the item is merged into the row), compliance changes, rule evaluations,
  snapshot/history delivery started/completed/failed.
"""

from __future__ import annotations

from typing import Any, ClassVar

from mantissa.sources._jsonsql import payload_sql, transform_sql
from mantissa.sources.base import JsonSource

# boto3 objects printed with str(): datetime.datetime(2020, 4, 22, 13, 13, 17, 718000, ...)
_PYDT = (
    "CASE WHEN {x} LIKE 'datetime.datetime(%' THEN try(make_timestamptz("
    "CAST(regexp_extract({x}, '\\(([0-9]+)', 1) AS BIGINT), "
    "CAST(regexp_extract({x}, '\\([0-9]+, ([0-9]+)', 1) AS BIGINT), "
    "CAST(regexp_extract({x}, '\\([0-9]+, [0-9]+, ([0-9]+)', 1) AS BIGINT), "
    "CAST(coalesce(nullif(regexp_extract({x}, '\\((?:[0-9]+, ){{3}}([0-9]+)', 1), ''), '0') AS BIGINT), "
    "CAST(coalesce(nullif(regexp_extract({x}, '\\((?:[0-9]+, ){{4}}([0-9]+)', 1), ''), '0') AS BIGINT), "
    "CAST(coalesce(nullif(regexp_extract({x}, '\\((?:[0-9]+, ){{5}}([0-9]+)', 1), ''), '0') AS DOUBLE) "
    "+ CAST(coalesce(nullif(regexp_extract({x}, '\\((?:[0-9]+, ){{6}}([0-9]+)', 1), ''), '0') AS DOUBLE) / 1e6, "
    "'UTC')) ELSE NULL END"
)


def _ts(x: str) -> str:
    return f"coalesce({_PYDT.format(x=x)}, mantissa_ts({x}))"


class AwsConfig(JsonSource):
    name = "aws_config"
    title = "AWS Config"
    category = "cloud"
    variants = (
        "configuration items (NDJSON, JSON arrays)",
        'snapshot / history files {"fileVersion", "configurationItems": [...]}',
        "SNS notifications with Message as object or JSON string "
        "(item change, compliance change, rule evaluation, delivery status)",
    )
    wrapper_keys = ("configurationItems",)
    signature = ("resourceType", "configurationItemCaptureTime")
    structure: ClassVar[dict[str, Any]] = {
        # configuration item
        "version": "VARCHAR",
        "configurationItemVersion": "VARCHAR",
        "snapshotVersion": "VARCHAR",
        "accountId": "VARCHAR",
        "configurationItemCaptureTime": "VARCHAR",
        "configurationItemStatus": "VARCHAR",
        "configurationStateId": "VARCHAR",
        "configurationItemMD5Hash": "VARCHAR",
        "configurationStateMd5Hash": "VARCHAR",
        "arn": "VARCHAR",
        "resourceType": "VARCHAR",
        "resourceId": "VARCHAR",
        "resourceName": "VARCHAR",
        "awsRegion": "VARCHAR",
        "availabilityZone": "VARCHAR",
        "resourceCreationTime": "VARCHAR",
        "tags": "JSON",
        "relatedEvents": "JSON",
        "relationships": "JSON",
        "configuration": "JSON",
        "supplementaryConfiguration": "JSON",
        # notification message
        "messageType": "VARCHAR",
        "notificationCreationTime": "VARCHAR",
        "notificationCreateTime": "VARCHAR",
        "recordVersion": "VARCHAR",
        "configurationItemDiff": {"changeType": "VARCHAR", "changedProperties": "JSON"},
        "configRuleName": "VARCHAR",
        "configRuleARN": "VARCHAR",
        "configRuleNames": "JSON",
        "awsAccountId": "VARCHAR",
        "newEvaluationResult": {
            "complianceType": "VARCHAR",
            "resultRecordedTime": "VARCHAR",
            "annotation": "VARCHAR",
            "evaluationResultIdentifier": "JSON",
        },
        "oldEvaluationResult": "JSON",
        "s3ObjectKey": "VARCHAR",
        "s3Bucket": "VARCHAR",
        "configSnapshotId": "VARCHAR",
        "s3DeliverySummary": {
            "s3BucketLocation": "VARCHAR",
            "errorCode": "VARCHAR",
            "errorMessage": "VARCHAR",
        },
        "configurationItemSummary": "JSON",
    }
    # SNS envelope → message; a change notification's item (object, or first of the 1.0
    # format's list) is merged into the message so its fields land in the same columns.
    _MESSAGE = payload_sql([("$.Message", "$.Message")])
    _DOCUMENT = (
        "CASE WHEN json_type(m, '$.configurationItem') = 'OBJECT' "
        "THEN json_merge_patch(json_extract(m, '$.configurationItem'), m)::VARCHAR "
        "WHEN json_type(m, '$.configurationItem[0]') = 'OBJECT' "
        "THEN json_merge_patch(json_extract(m, '$.configurationItem[0]'), m)::VARCHAR "
        "WHEN json_type(m, '$.configurationItemSummary') = 'OBJECT' "
        "THEN json_merge_patch(json_extract(m, '$.configurationItemSummary'), m)::VARCHAR "
        "ELSE m END"
    )
    event_time_parsed = True  # the expression below parses each field itself
    common: ClassVar[dict[str, str]] = {
        "event_time": (
            f"coalesce({_ts('configurationItemCaptureTime')}, "
            "mantissa_ts(coalesce(notificationCreationTime, notificationCreateTime, "
            "newEvaluationResult.resultRecordedTime, json_extract_string(raw, '$.Timestamp'))))"
        ),
        "event_id": (
            "CASE WHEN messageType IS NOT NULL THEN json_extract_string(raw, '$.MessageId') "
            "WHEN resourceId IS NOT NULL "
            "AND coalesce(configurationStateId, json_extract_string(raw, '$.configurationStateID')) IS NOT NULL "
            "THEN resourceType || '/' || resourceId || '@' "
            "|| coalesce(configurationStateId, json_extract_string(raw, '$.configurationStateID')) END"
        ),
        "event_type": (
            "coalesce(messageType, 'ConfigurationItem' || "
            "coalesce('.' || configurationItemStatus, ''))"
        ),
        "outcome": (
            "CASE WHEN messageType LIKE '%Failed%' OR s3DeliverySummary.errorCode IS NOT NULL "
            "THEN 'failure' WHEN messageType LIKE '%Completed%' THEN 'success' END"
        ),
        "user": "NULL",
        "host": "resourceId",
        "message": (
            "concat_ws(' ', messageType, resourceType, coalesce(resourceName, resourceId), "
            "configurationItemStatus, configurationItemDiff.changeType, configRuleName, "
            "newEvaluationResult.complianceType, s3DeliverySummary.errorMessage)"
        ),
        "_error": (
            "CASE WHEN resourceType IS NULL AND messageType IS NULL "
            "THEN 'not an AWS Config item or notification: resourceType/messageType missing' END"
        ),
    }

    def native_sql(self) -> str:
        table = f"(SELECT line, raw, file, ctx, {self._MESSAGE} AS m FROM input)"
        return transform_sql(self.structure, self._DOCUMENT, table=table)

    def sniff(self, sample: list[str]) -> float:
        """Configuration items, snapshot/history files and Config SNS notifications."""
        import json

        from mantissa.sources.detect import sample_objects

        objs = sample_objects(sample, ("configurationItems",))
        hits = 0
        for o in objs:
            msg = o.get("Message")
            if isinstance(msg, str):
                try:
                    msg = json.loads(msg)
                except ValueError:
                    msg = None
            if ("resourceType" in o and "configurationItemCaptureTime" in o) or (
                isinstance(msg, dict)
                and ("messageType" in msg or "configurationItem" in msg)
                and (
                    "Config" in str(o.get("Subject", ""))
                    or "configRuleName" in msg
                    or "configurationItem" in msg
                    or "configSnapshotId" in msg
                    or "s3ObjectKey" in msg
                )
            ):
                hits += 1
        return hits / len(objs) if objs else 0.0
