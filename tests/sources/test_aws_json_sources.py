"""AWS JSON specifics: envelopes, SNS string messages, lower-cased keys, RDK capture times."""

from __future__ import annotations

import json

from tests.sources.harness import parse_text


def test_config_sns_message_as_string_and_object_agree(tmp_path):
    msg = {
        "messageType": "ConfigurationItemChangeNotification",
        "notificationCreationTime": "2024-05-02T16:30:05Z",
        "configurationItemDiff": {"changeType": "CREATE"},
        "configurationItem": {
            "configurationItemCaptureTime": "2024-05-02T16:30:00Z",
            "configurationStateId": 1,
            "resourceType": "AWS::EC2::SecurityGroup",
            "resourceId": "sg-1",
            "configurationItemStatus": "ResourceDiscovered",
        },
    }
    env = {"Type": "Notification", "MessageId": "m-1", "Timestamp": "2024-05-02T16:30:06Z"}
    text = (
        json.dumps({**env, "Message": json.dumps(msg)})
        + "\n"
        + json.dumps({**env, "MessageId": "m-2", "Message": msg})
        + "\n"
    )
    rows = parse_text("aws_config", text, tmp_path).rows
    assert len(rows) == 2
    for r in rows:
        assert (r["resourceType"], r["host"], r["event_type"]) == (
            "AWS::EC2::SecurityGroup",
            "sg-1",
            "ConfigurationItemChangeNotification",
        )
        assert r["configurationItemDiff"]["changeType"] == "CREATE"
        assert r["event_time"] == "2024-05-02T16:30:00Z"
        assert json.loads(r["raw"])["Type"] == "Notification"  # the envelope is kept


def test_config_item_with_python_datetime_capture_time(tmp_path):
    ci = {
        "configurationItemCaptureTime": "datetime.datetime(2020, 4, 22, 13, 13, 17, 718000, tzinfo=tzlocal())",
        "resourceType": "AWS::ACM::Certificate",
        "resourceId": "c-1",
        "configurationStateId": "1",
    }
    (row,) = parse_text("aws_config", json.dumps(ci) + "\n", tmp_path).rows
    assert row["event_time"] == "2020-04-22T13:13:17.718000Z"


def test_cloudtrail_lower_cased_keys_and_insights(tmp_path):
    lower = {
        "eventname": "GetRecords",
        "eventsource": "dynamodb.amazonaws.com",
        "eventtime": "2023-01-10 21:04:02",
        "eventid": "e-1",
        "useridentity": {"username": "alice", "type": "IAMUser"},
    }
    insight = {
        "eventVersion": "1.07",
        "eventTime": "2020-09-09T23:00:00Z",
        "eventID": "e-2",
        "eventType": "AwsCloudTrailInsight",
        "recipientAccountId": "1",
        "insightDetails": {"state": "Start", "eventName": "AttachUserPolicy"},
    }
    rows = parse_text(
        "cloudtrail", json.dumps(lower) + "\n" + json.dumps(insight) + "\n", tmp_path
    ).rows
    by = {r["event_id"]: r for r in rows}
    assert by["e-1"]["eventName"] == "GetRecords" and by["e-1"]["user"] == "alice"
    assert by["e-1"]["event_time"] == "2023-01-10T21:04:02Z"
    assert by["e-2"]["event_type"] == "AwsCloudTrailInsight"


def test_guardduty_eventbridge_envelope(tmp_path):
    finding = {
        "schemaVersion": "2.0",
        "id": "f-1",
        "type": "Recon:EC2/Portscan",
        "severity": 5,
        "updatedAt": "2024-05-02T14:10:30Z",
        "title": "scan",
        "resource": {"resourceType": "Instance", "instanceDetails": {"instanceId": "i-1"}},
        "service": {
            "action": {
                "networkConnectionAction": {
                    "remoteIpDetails": {
                        "ipAddressV4": "45.137.21.9",
                        "country": {"countryName": "Netherlands"},
                    }
                }
            }
        },
    }
    env = {
        "version": "0",
        "detail-type": "GuardDuty Finding",
        "source": "aws.guardduty",
        "detail": finding,
    }
    (row,) = parse_text("guardduty", json.dumps(env) + "\n", tmp_path).rows
    assert (row["type"], row["src_ip"], row["geo_country"], row["host"]) == (
        "Recon:EC2/Portscan",
        "45.137.21.9",
        "Netherlands",
        "i-1",
    )


def test_s3_access_escaped_quotes_and_legacy_length(tmp_path):
    line = (
        "o b [06/Feb/2019:00:00:38 +0000] 192.0.2.3 - R1 REST.GET.OBJECT k "
        '"GET /b/k HTTP/1.1" 404 NoSuchKey 0 - 7 - "-" "agent \\"x\\" y" -\n'
    )
    (row,) = parse_text("s3_access", line, tmp_path).rows
    assert row["event_time"] == "2019-02-06T00:00:38Z"
    assert row["useragent"] == 'agent "x" y' and row["outcome"] == "failure"
    assert row["versionid"] is None and row["tlsversion"] is None
