"""S3 input: SQS notifications → fetch object → lake → delete message (moto server)."""

from __future__ import annotations

import gzip
import json
import time
import uuid
from pathlib import Path

import boto3
import duckdb
import pytest

from mantissa.inputs.base import Runner, configured_inputs
from mantissa.runtime import Runtime
from tests.inputs.killtest import collect_once, kill_at_checkpoint


def trail(n: int, tag: str) -> bytes:
    recs = [
        {
            "eventVersion": "1.08",
            "eventID": f"{tag}-{i}",
            "eventTime": "2026-11-29T06:00:00Z",
            "eventSource": "signin.amazonaws.com",
            "eventName": "ConsoleLogin",
            "awsRegion": "us-east-1",
            "sourceIPAddress": "198.51.100.1",
            "userIdentity": {
                "type": "IAMUser",
                "userName": f"u{i}",
                "arn": f"arn:aws:iam::1:user/u{i}",
            },
            "responseElements": {"ConsoleLogin": "Success"},
        }
        for i in range(n)
    ]
    return gzip.compress(json.dumps({"Records": recs}).encode())


@pytest.fixture
def aws(moto_url: str, aws_env):
    name = f"trail-{uuid.uuid4().hex[:8]}"
    s3 = boto3.client("s3", endpoint_url=moto_url, region_name="us-east-1")
    sqs = boto3.client("sqs", endpoint_url=moto_url, region_name="us-east-1")
    s3.create_bucket(Bucket=name)
    q = sqs.create_queue(QueueName=name)["QueueUrl"]
    return s3, sqs, name, q


def notify(sqs, queue: str, bucket: str, key: str) -> None:
    body = {
        "Records": [
            {
                "eventSource": "aws:s3",
                "eventName": "ObjectCreated:Put",
                "s3": {"bucket": {"name": bucket}, "object": {"key": key.replace(" ", "+")}},
            }
        ]
    }
    sqs.send_message(QueueUrl=queue, MessageBody=json.dumps(body))


def ids(data_dir: Path) -> list[str]:
    files = [str(f) for f in (data_dir / "lake").rglob("*.parquet")]
    return (
        [
            r[0]
            for r in duckdb.connect()
            .execute("SELECT event_id FROM read_parquet(?)", [files])
            .fetchall()
        ]
        if files
        else []
    )


def setup(data_dir: Path, moto_url: str, bucket: str, queue: str):
    (data_dir / "mantissa.yaml").write_text(
        f"inputs:\n  trail:\n    type: s3\n    source: cloudtrail\n    queue_url: {queue}\n"
        f"    bucket: {bucket}\n    prefix: AWSLogs/\n    base_url: {moto_url}\n    region: us-east-1\n"
        "    wait_secs: 1\n    visibility_timeout: 2\n"
    )
    rt = Runtime(data_dir)
    return rt, *configured_inputs(rt)["trail"]


def test_sqs_notifications_delete_after_durable(data_dir: Path, aws, moto_url: str) -> None:
    s3, sqs, bucket, queue = aws
    for k in range(3):
        key = f"AWSLogs/1/CloudTrail/us-east-1/2026/11/29/file {k}.json.gz"
        s3.put_object(Bucket=bucket, Key=key, Body=trail(40, f"f{k}"))
        notify(sqs, queue, bucket, key)
    sqs.send_message(QueueUrl=queue, MessageBody=json.dumps({"Event": "s3:TestEvent"}))
    rt, cls, cfg = setup(data_dir, moto_url, bucket, queue)
    res = Runner(rt).cycle("trail", cls, cfg)
    assert res.ok, res.error
    assert res.events == 120 and len(ids(data_dir)) == 120
    attrs = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["All"])["Attributes"]
    assert (
        attrs["ApproximateNumberOfMessages"] == "0"
        and attrs["ApproximateNumberOfMessagesNotVisible"] == "0"
    )


def test_garbage_message_reported_and_kept(data_dir: Path, aws, moto_url: str) -> None:
    s3, sqs, bucket, queue = aws
    s3.put_object(Bucket=bucket, Key="AWSLogs/a.json.gz", Body=trail(5, "g"))
    notify(sqs, queue, bucket, "AWSLogs/a.json.gz")
    sqs.send_message(QueueUrl=queue, MessageBody="not json at all")
    rt, cls, cfg = setup(data_dir, moto_url, bucket, queue)
    res = Runner(rt).cycle("trail", cls, cfg)
    assert not res.ok and "not S3 event notifications" in res.error
    assert len(ids(data_dir)) == 5  # the good object is stored anyway


def test_from_bucket_backfill(data_dir: Path, aws, moto_url: str, cli) -> None:
    s3, _sqs, bucket, queue = aws
    for k in range(4):
        s3.put_object(Bucket=bucket, Key=f"AWSLogs/x/{k}.json.gz", Body=trail(10, f"b{k}"))
    s3.put_object(Bucket=bucket, Key="other/skip.json.gz", Body=trail(10, "skip"))
    setup(data_dir, moto_url, bucket, queue)
    out = cli("collect", "--once", "trail", "--from-bucket", "--format", "json")
    assert out.code == 0, out.err
    assert out.json()["events"] == 40
    assert sorted(ids(data_dir)) == sorted(f"b{k}-{i}" for k in range(4) for i in range(10))


@pytest.mark.slow
def test_kill_9_between_lake_write_and_delete(data_dir: Path, aws, moto_url: str) -> None:
    s3, sqs, bucket, queue = aws
    want = []
    for k in range(3):
        key = f"AWSLogs/1/CloudTrail/us-east-1/2026/11/29/k{k}.json.gz"
        s3.put_object(Bucket=bucket, Key=key, Body=trail(40, f"k{k}"))
        notify(sqs, queue, bucket, key)
        want += [f"k{k}-{i}" for i in range(40)]
    setup(data_dir, moto_url, bucket, queue)  # visibility_timeout: 2 (seconds)
    proc = kill_at_checkpoint(data_dir, "trail", 2)
    assert proc.returncode == -9, proc.stderr.decode()[-2000:]
    assert len(ids(data_dir)) == 80  # objects 1-2 durable; 2's checkpoint and delete lost

    def queued() -> int:
        a = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["All"])["Attributes"]
        return int(a["ApproximateNumberOfMessages"]) + int(
            a["ApproximateNumberOfMessagesNotVisible"]
        )

    assert queued() == 2  # only the first message was deleted (after its lake write)
    time.sleep(2.5)  # the visibility timeout lapses: SQS redelivers messages 2 and 3
    proc2 = collect_once(data_dir, "trail")
    assert proc2.returncode == 0, proc2.stderr.decode()[-2000:]
    final = ids(data_dir)
    assert len(final) == 120 and sorted(final) == sorted(want)  # no gap, no duplicate
    assert queued() == 0


@pytest.fixture
def sqs_stub(aws_env):
    from tests.inputs.stubs import SqsStub

    s = SqsStub()
    yield s
    s.close()


def stub_cycle(data_dir: Path, stub):
    (data_dir / "mantissa.yaml").write_text(
        "inputs:\n  trail:\n    type: s3\n    source: cloudtrail\n"
        f"    queue_url: {stub.url}/123456789012/trail\n    base_url: {stub.url}\n"
        "    region: us-east-1\n    wait_secs: 0\n    max_retries: 2\n"
    )
    rt = Runtime(data_dir)
    cls, cfg = configured_inputs(rt)["trail"]
    return rt, Runner(rt).cycle("trail", cls, cfg)


def test_sqs_throttling_5xx_and_expired_token(data_dir: Path, sqs_stub) -> None:
    from mantissa.inputs.base import CURSOR_NS

    sqs_stub.throttle_next = 2  # ThrottlingException twice: the SDK backs off and retries
    rt, res = stub_cycle(data_dir, sqs_stub)
    assert res.ok, res.error
    assert sqs_stub.actions == ["ReceiveMessage"] * 3
    before = rt.state.get(CURSOR_NS, "trail")
    sqs_stub.fail_next = 100  # an SQS outage: max_retries + 1 attempts, then a clear error
    _, res = stub_cycle(data_dir, sqs_stub)
    assert not res.ok and res.error_code == "input_error"
    assert "SQS ReceiveMessage: InternalFailure (HTTP 500)" in res.error
    assert sqs_stub.actions.count("ReceiveMessage") == 3 + 3
    assert rt.state.get(CURSOR_NS, "trail") == before
    sqs_stub.fail_next, sqs_stub.expired = 0, True
    n = len(sqs_stub.actions)
    _, res = stub_cycle(data_dir, sqs_stub)
    assert res.error_code == "input_auth_failed" and "ExpiredToken" in res.error
    assert "security token included in the request is expired" in res.error
    assert len(sqs_stub.actions) == n + 1  # an expired token is not retried in a loop
    assert "DeleteMessage" not in sqs_stub.actions
