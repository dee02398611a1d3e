"""AWS logs delivered to S3, followed through an SQS queue of S3 event notifications.

CloudTrail, VPC Flow Logs, S3 server access logs, GuardDuty exports and AWS Config
snapshots all land as objects in a bucket. The bucket sends ``s3:ObjectCreated:*``
notifications to SQS (directly, through SNS, or through EventBridge); this input
long-polls the queue, fetches each object, ingests it with ``source`` and deletes the
message only after the object is in the lake and checkpointed. A crash before the
delete makes SQS redeliver the message after its visibility timeout; the lake's dedup
on ``event_id`` makes the re-ingest harmless. A message that cannot be understood is
left on the queue (its redrive policy moves it to a dead-letter queue) and reported.

``mantissa collect --once ID --from-bucket`` lists ``bucket``/``prefix`` instead and
ingests every object (backfill), resuming after the last key done if interrupted.

Needs (IAM): ``sqs:ReceiveMessage``, ``sqs:DeleteMessage``, ``sqs:ChangeMessageVisibility``
on the queue; ``s3:GetObject`` (and ``s3:ListBucket`` for ``--from-bucket``) on the
bucket; ``kms:Decrypt`` when the objects are SSE-KMS encrypted.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import unquote_plus

from mantissa.errors import InputAuthError, InputError
from mantissa.inputs.base import Batch, Input, InputConfig

MAX_OBJECT_BYTES = 2 * 1024 * 1024 * 1024


class S3Config(InputConfig):
    queue_url: str | None = None
    bucket: str | None = None
    prefix: str = ""
    region: str | None = None
    source: str | None = "cloudtrail"
    #: SQS long-poll seconds per receive (0-20)
    wait_secs: int = 10
    visibility_timeout: int = 300
    max_messages: int = 10
    #: one-shot backfill: list the bucket instead of reading the queue
    from_bucket: bool = False
    interval: float = 0.0


AUTH_CODES = {
    "AccessDenied",
    "AccessDeniedException",
    "InvalidAccessKeyId",
    "InvalidClientTokenId",
    "UnrecognizedClientException",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "ExpiredTokenException",
    "MissingAuthenticationToken",
}


def _clients(cfg: S3Config) -> tuple[Any, Any]:
    import boto3  # the aws extra
    from botocore.config import Config

    # the SDK retries throttling and 5xx with backoff; `max_retries` bounds it as elsewhere
    # (botocore's `max_attempts` in `retries` counts the retries, not the first request)
    kw: dict[str, Any] = {
        "config": Config(retries={"mode": "standard", "max_attempts": cfg.max_retries})
    }
    if cfg.region:
        kw["region_name"] = cfg.region
    if cfg.base_url:
        kw["endpoint_url"] = cfg.base_url
    return boto3.client("s3", **kw), boto3.client("sqs", **kw)


def object_refs(body: str) -> list[tuple[str, str]] | None:
    """(bucket, key) pairs from an SQS message body; [] for test events, None if unknown.

    Handles direct S3 notifications, SNS-wrapped ones and EventBridge "Object Created".
    """
    try:
        doc = json.loads(body)
    except ValueError:
        return None
    if isinstance(doc, dict) and doc.get("Type") == "Notification" and "Message" in doc:
        return object_refs(doc["Message"])  # through SNS
    if not isinstance(doc, dict):
        return None
    if doc.get("Event") == "s3:TestEvent":
        return []
    if doc.get("source") == "aws.s3" and isinstance(doc.get("detail"), dict):
        d = doc["detail"]
        try:
            return [(d["bucket"]["name"], d["object"]["key"])]  # EventBridge: key not encoded
        except (KeyError, TypeError):
            return None
    recs = doc.get("Records")
    if not isinstance(recs, list):
        return None
    out = []
    for r in recs:
        try:
            if not str(r.get("eventName", "")).startswith("ObjectCreated"):
                continue
            # S3 notifications URL-encode the key (spaces as '+')
            out.append((r["s3"]["bucket"]["name"], unquote_plus(r["s3"]["object"]["key"])))
        except (KeyError, TypeError, AttributeError):
            return None
    return out


class S3(Input):
    type = "s3"
    source = "cloudtrail"
    config_model = S3Config

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cfg: S3Config = self.config  # type: ignore[assignment]
        if not cfg.queue_url and not (cfg.from_bucket and cfg.bucket):
            raise InputError(
                f"input {self.id}: s3 needs `queue_url` (or `bucket` with --from-bucket)"
            )
        self.s3, self.sqs = _clients(cfg)

    def fetch(self, bucket: str, key: str) -> bytes:
        from botocore.exceptions import ClientError

        try:
            obj = self.s3.get_object(Bucket=bucket, Key=key)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in AUTH_CODES:
                raise InputAuthError(f"s3: {code} reading s3://{bucket}/{key}") from None
            raise InputError(f"s3: {code} reading s3://{bucket}/{key}") from None
        if obj.get("ContentLength", 0) > MAX_OBJECT_BYTES:
            raise InputError(f"s3://{bucket}/{key} is larger than {MAX_OBJECT_BYTES} bytes")
        data = obj["Body"].read()
        if data[:2] == b"\x1f\x8b":
            data = gzip.decompress(data)
        return data

    def _sqs(self, action: str, call: Callable[..., Any], **kwargs: Any) -> Any:
        """One SQS call (the SDK has retried); its failure as a clear input error."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return call(**kwargs)
        except ClientError as exc:
            err = exc.response.get("Error", {})
            code = err.get("Code", "")
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            msg = f"s3: SQS {action}: {code} (HTTP {status}): {err.get('Message', '')}".rstrip()
            if code in AUTH_CODES:
                raise InputAuthError(
                    msg, hint="check the AWS credentials and the queue's sqs:* permissions"
                ) from None
            raise InputError(msg) from None
        except BotoCoreError as exc:
            raise InputError(f"s3: SQS {action}: {type(exc).__name__}: {exc}") from None

    def batches(self, cursor: dict[str, Any] | None) -> Iterator[Batch]:
        cfg: S3Config = self.config  # type: ignore[assignment]
        if cfg.from_bucket:
            yield from self._from_bucket(dict(cursor or {}))
            return
        cursor = dict(cursor or {})
        bad = 0
        while not self.stop.is_set():
            resp = self._sqs(
                "ReceiveMessage",
                self.sqs.receive_message,
                QueueUrl=cfg.queue_url,
                MaxNumberOfMessages=min(10, cfg.max_messages),
                WaitTimeSeconds=cfg.wait_secs,
                VisibilityTimeout=cfg.visibility_timeout,
            )
            msgs = resp.get("Messages", [])
            if not msgs:
                break
            for m in msgs:
                refs = object_refs(m.get("Body", ""))
                handle = m["ReceiptHandle"]

                def delete(h: str = handle) -> None:
                    self._sqs(
                        "DeleteMessage",
                        self.sqs.delete_message,
                        QueueUrl=cfg.queue_url,
                        ReceiptHandle=h,
                    )

                if refs is None:
                    bad += 1  # left on the queue: its redrive policy dead-letters it
                    continue
                if not refs:
                    delete()  # s3:TestEvent and non-create events
                    continue
                for i, (bucket, key) in enumerate(refs):
                    data = self.fetch(bucket, key)
                    cursor = {**cursor, "last_object": f"s3://{bucket}/{key}"}
                    cursor["objects"] = cursor.get("objects", 0) + 1
                    yield Batch(
                        [],
                        cursor,
                        data=data,
                        name=key.rsplit("/", 1)[-1].removesuffix(".gz"),
                        on_durable=delete if i == len(refs) - 1 else None,
                    )
        if bad:
            raise InputError(
                f"{bad} SQS message(s) were not S3 event notifications; left on the queue "
                "for its redrive policy"
            )

    def _from_bucket(self, cursor: dict[str, Any]) -> Iterator[Batch]:
        cfg: S3Config = self.config  # type: ignore[assignment]
        paginator = self.s3.get_paginator("list_objects_v2")
        kw: dict[str, Any] = {"Bucket": cfg.bucket, "Prefix": cfg.prefix}
        if cursor.get("backfill_after"):
            kw["StartAfter"] = cursor["backfill_after"]
        for page in paginator.paginate(**kw):
            for obj in page.get("Contents", []):
                key = obj["Key"]
                if key.endswith("/"):
                    continue
                data = self.fetch(cfg.bucket, key)  # type: ignore[arg-type]
                cursor = {
                    **cursor,
                    "backfill_after": key,
                    "last_object": f"s3://{cfg.bucket}/{key}",
                }
                yield Batch([], cursor, data=data, name=key.rsplit("/", 1)[-1].removesuffix(".gz"))
