"""Google Cloud Pub/Sub pull subscriptions (REST v1), shared by ``gcp_audit`` and ``gcp_vpc_flow``.

A Cloud Logging sink publishes each ``LogEntry`` as one Pub/Sub message (JSON in
``message.data``, base64). This input pulls the subscription
(``POST /v1/{subscription}:pull`` with ``maxMessages``), ingests the entries, and
acknowledges them (``:acknowledge`` with ``ackIds``) only after the batch is durably in
the lake and the checkpoint is written. While a large batch is being pulled and written
a lease thread extends the messages' ack deadline (``:modifyAckDeadline``) so Pub/Sub
does not redeliver them under our feet. A crash (kill -9) before the acknowledgement
makes Pub/Sub redeliver when the deadline passes; the lake dedups on ``event_id``
(``logName:insertId``), so the re-ingest is harmless. If the write fails, the input
answers ``modifyAckDeadline 0`` (a nack) so the messages come back at once.

A message whose data is not base64, not UTF-8 JSON, or not a JSON object (or array of
objects) goes to the dead-letter store with its ``messageId`` and the reason, and is
then acknowledged: nothing is dropped silently and a poison message never blocks the
subscription.

Auth: a service-account key (``credentials_file`` or ``credentials`` holding the JSON),
exchanged for an OAuth access token (RS256 JWT bearer grant, scope
``https://www.googleapis.com/auth/pubsub``, RFC 7523) renewed 60 s before it expires and
once more on a 401. The service account needs ``roles/pubsub.subscriber`` on the
subscription. With ``emulator: true`` (or ``PUBSUB_EMULATOR_HOST`` set, as for Google's
client libraries) no credentials are sent and ``base_url`` defaults to the emulator.

Backfill: Pub/Sub keeps unacknowledged messages for the subscription's
``messageRetentionDuration`` (up to 7 days, 31 with topic retention); the first run
drains that backlog. ``start`` does not apply.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import logging
import os
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
from pydantic import Field, field_validator

from mantissa.config import resolve_secret
from mantissa.errors import ConfigError, InputAuthError, InputError
from mantissa.inputs.base import (
    Batch,
    Input,
    InputConfig,
    LongPollTimeout,
    TokenCache,
    parse_duration,
    parse_time,
)
from mantissa.lake.deadletter import Rejection

log = logging.getLogger("mantissa.inputs.pubsub")

DEFAULT_BASE = "https://pubsub.googleapis.com"
DEFAULT_TOKEN_URI = "https://oauth2.googleapis.com/token"
SCOPE = "https://www.googleapis.com/auth/pubsub"
#: Pub/Sub's documented maximum for ``ackDeadlineSeconds`` in one modifyAckDeadline call
MAX_ACK_DEADLINE = 600
#: ackIds per acknowledge/modifyAckDeadline request (the client libraries' batch size,
#: well under the 512 KiB request limit)
ACK_CHUNK = 2500
_SUBSCRIPTION = re.compile(r"^projects/[^/]+/subscriptions/[^/]+$")


class PubSubConfig(InputConfig):
    #: ``projects/PROJECT/subscriptions/SUBSCRIPTION``
    subscription: str = ""
    #: path of a service-account key file (JSON)
    credentials_file: str | None = None
    #: the service-account key JSON itself, usually ``${env:GCP_SA_KEY}`` / ``${file:...}``
    credentials: str | None = None
    #: talk to the Pub/Sub emulator (no credentials)
    emulator: bool = False
    #: messages per pull request (Pub/Sub returns at most 1000)
    max_messages: int = Field(default=1000, ge=1, le=1000)
    #: messages pulled before one lake write (several pulls, leases extended meanwhile)
    batch_messages: int = Field(default=5000, ge=1)
    #: ack deadline the lease thread keeps renewing while a batch is in flight
    ack_deadline: float = 60.0
    #: how long one pull may wait for messages before the subscription counts as drained
    pull_wait: float = 5.0
    #: steady state: poll again this often once the backlog is drained
    interval: float = 10.0

    @field_validator("pull_wait", mode="before")
    @classmethod
    def _wait(cls, v: Any) -> float:
        return parse_duration(v)

    @field_validator("ack_deadline", mode="before")
    @classmethod
    def _deadline(cls, v: Any) -> float:
        secs = parse_duration(v)
        if not 10 <= secs <= MAX_ACK_DEADLINE:
            raise ValueError(f"ack_deadline must be between 10s and {MAX_ACK_DEADLINE}s")
        return secs

    @field_validator("subscription")
    @classmethod
    def _sub(cls, v: str) -> str:
        if v and not _SUBSCRIPTION.match(v):
            raise ValueError("subscription must look like projects/PROJECT/subscriptions/NAME")
        return v


class ServiceAccountTokens:
    """OAuth 2.0 access tokens for a service account (JWT bearer grant, RS256)."""

    def __init__(self, key: dict[str, Any], client: httpx.Client, scope: str = SCOPE) -> None:
        for field in ("client_email", "private_key"):
            if not key.get(field):
                raise ConfigError(f"the service-account key has no {field!r}")
        self.key = key
        self.client = client
        self.scope = scope
        self.token_uri = key.get("token_uri") or DEFAULT_TOKEN_URI
        self.cache = TokenCache(self._fetch)

    def assertion(self, now: float | None = None) -> str:
        """The signed JWT the token endpoint exchanges for an access token."""
        try:
            from cryptography.hazmat.primitives import hashes, serialization
            from cryptography.hazmat.primitives.asymmetric import padding, rsa
        except ModuleNotFoundError:  # pragma: no cover - the gcp extra brings it
            raise ConfigError(
                "service-account auth needs the package cryptography",
                hint="pip install 'mantissa-log[gcp]'",
            ) from None
        iat = int(now if now is not None else time.time())
        header = {"alg": "RS256", "typ": "JWT"}
        if self.key.get("private_key_id"):
            header["kid"] = self.key["private_key_id"]
        claims = {
            "iss": self.key["client_email"],
            "scope": self.scope,
            "aud": self.token_uri,
            "iat": iat,
            "exp": iat + 3600,
        }
        signing_input = _b64url(orjson.dumps(header)) + "." + _b64url(orjson.dumps(claims))
        try:
            pk = serialization.load_pem_private_key(self.key["private_key"].encode(), password=None)
        except ValueError:
            raise ConfigError("the service-account private_key is not a PEM RSA key") from None
        if not isinstance(pk, rsa.RSAPrivateKey):
            raise ConfigError("the service-account private_key is not an RSA key")
        sig = pk.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return signing_input + "." + _b64url(sig)

    def _fetch(self) -> tuple[str, float]:
        try:
            resp = self.client.post(
                self.token_uri,
                data={
                    "grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
                    "assertion": self.assertion(),
                },
            )
        except httpx.HTTPError as exc:
            raise InputError(f"gcp token endpoint: {type(exc).__name__}: {exc}") from None
        if resp.status_code in (400, 401, 403):
            detail = ""
            try:
                body = resp.json()
                detail = f": {body.get('error')} {body.get('error_description', '')}".rstrip()
            except ValueError:
                pass
            raise InputAuthError(
                f"Google refused the service account {self.key['client_email']} "
                f"({resp.status_code}{detail})",
                hint="check the key (revoked or deleted?) and that the account is enabled",
            )
        if resp.status_code >= 300:
            raise InputError(f"gcp token endpoint: HTTP {resp.status_code}")
        try:
            body = resp.json()
            return str(body["access_token"]), float(body.get("expires_in", 3600))
        except (ValueError, KeyError, TypeError):
            raise InputError("gcp token endpoint: no access_token in the answer") from None

    def get(self) -> str:
        return self.cache.get()

    def invalidate(self) -> None:
        self.cache.invalidate()


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class _Lease:
    """Keeps extending the ack deadline of in-flight messages until released."""

    def __init__(self, owner: PubSub, deadline: float) -> None:
        self.owner = owner
        self.deadline = int(deadline)
        self.ack_ids: list[str] = []
        self.lock = threading.Lock()
        self.done = threading.Event()
        self.extensions = 0
        self.thread = threading.Thread(
            target=self._run, name=f"pubsub-lease-{owner.id}", daemon=True
        )
        self.thread.start()

    def add(self, ack_ids: list[str]) -> None:
        """Lease newly pulled messages: our deadline now (the subscription's default
        may be shorter than the first renewal), renewed from then on."""
        try:
            self.owner.modify_deadline(ack_ids, self.deadline)
        except Exception as exc:  # the subscription's own deadline still applies
            log.warning("input %s: could not set the ack deadline: %s", self.owner.id, exc)
        with self.lock:
            self.ack_ids.extend(ack_ids)

    def _run(self) -> None:
        # renew at a third of the deadline: two renewals may fail before messages expire
        period = max(1.0, self.deadline / 3)
        while not self.done.wait(period):
            if self.owner.stop.is_set():
                return
            with self.lock:
                ids = list(self.ack_ids)
            if not ids:
                continue
            try:
                self.owner.modify_deadline(ids, self.deadline)
                self.extensions += 1
            except Exception as exc:  # redelivery is the worst outcome; dedup absorbs it
                log.warning("input %s: could not extend the ack deadline: %s", self.owner.id, exc)

    def release(self) -> None:
        self.done.set()
        self.thread.join(timeout=5)


class PubSub(Input):
    """Pull a Pub/Sub subscription of Cloud Logging entries; ack after the lake write."""

    config_model = PubSubConfig

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cfg: PubSubConfig = self.config  # type: ignore[assignment]
        if not cfg.subscription:
            raise InputError(
                f"input {self.id}: {self.type} needs `subscription` "
                "(projects/PROJECT/subscriptions/NAME)"
            )
        emulator_host = os.environ.get("PUBSUB_EMULATOR_HOST")
        self.tokens: ServiceAccountTokens | None = None
        if cfg.credentials_file or cfg.credentials:
            self.tokens = ServiceAccountTokens(self._key(cfg), self.http.client)
            default = DEFAULT_BASE
        elif cfg.emulator or emulator_host:
            default = f"http://{emulator_host}" if emulator_host else DEFAULT_BASE
        else:
            raise InputError(
                f"input {self.id}: {self.type} needs `credentials_file` or `credentials` "
                "(a service-account key with roles/pubsub.subscriber), or `emulator: true`"
            )
        self.base = self.base_url(default) + "/v1/" + cfg.subscription
        self.acked = 0
        self.nacked = 0

    @staticmethod
    def _key(cfg: PubSubConfig) -> dict[str, Any]:
        if cfg.credentials:
            raw = resolve_secret(cfg.credentials) or ""
            where = "credentials"
        else:
            path = Path(str(cfg.credentials_file)).expanduser()
            where = str(path)
            try:
                raw = path.read_text()
            except OSError as exc:
                raise ConfigError(f"cannot read credentials_file {path}: {exc.strerror}") from None
        try:
            key = json.loads(raw)
        except ValueError:
            raise ConfigError(f"{where}: not a service-account key (JSON expected)") from None
        if not isinstance(key, dict) or key.get("type") != "service_account":
            raise ConfigError(f'{where}: not a service-account key ("type": "service_account")')
        return key

    # -- auth and errors -------------------------------------------------------------
    def auth_headers(self) -> dict[str, str]:
        if self.tokens is None:
            return {}
        return {"Authorization": f"Bearer {self.tokens.get()}"}

    def refresh_auth(self) -> bool:
        if self.tokens is None:
            return False
        self.tokens.invalidate()
        return True

    def error_detail(self, resp: httpx.Response) -> str:
        """``{"error": {"code", "message", "status"}}`` (google.rpc.Status) → one line."""
        try:
            err = resp.json().get("error")
        except (ValueError, AttributeError):
            return resp.text[:200]
        if isinstance(err, dict):
            return f"{err.get('status', '')}: {err.get('message', '')}".strip(": ")
        return str(err)[:200]

    # -- the REST calls --------------------------------------------------------------
    def _post(self, verb: str, body: dict[str, Any], **kwargs: Any) -> Any:
        data, _ = self.http.json(
            "POST",
            f"{self.base}:{verb}",
            content=orjson.dumps(body),
            headers={"Content-Type": "application/json"},
            **kwargs,
        )
        return data

    def pull(self, max_messages: int) -> list[dict[str, Any]]:
        """One pull; ``[]`` when the subscription is drained.

        Without ``returnImmediately`` (deprecated) Pub/Sub holds an empty pull open until
        messages arrive; a read timeout of ``pull_wait`` therefore means "drained".
        """
        cfg: PubSubConfig = self.config  # type: ignore[assignment]
        try:
            body = self._post(
                "pull",
                {"maxMessages": max_messages},
                long_poll=True,
                timeout=httpx.Timeout(cfg.timeout, read=cfg.pull_wait),
            )
        except LongPollTimeout:
            return []
        if not isinstance(body, dict):
            raise InputError(f"{self.type}: pull answered {type(body).__name__}, not an object")
        msgs = body.get("receivedMessages") or []
        if not isinstance(msgs, list):
            raise InputError(f"{self.type}: pull answered a malformed receivedMessages")
        return msgs

    def acknowledge(self, ack_ids: list[str]) -> None:
        for i in range(0, len(ack_ids), ACK_CHUNK):
            self._post("acknowledge", {"ackIds": ack_ids[i : i + ACK_CHUNK]})
        self.acked += len(ack_ids)

    def modify_deadline(self, ack_ids: list[str], seconds: int) -> None:
        for i in range(0, len(ack_ids), ACK_CHUNK):
            self._post(
                "modifyAckDeadline",
                {"ackIds": ack_ids[i : i + ACK_CHUNK], "ackDeadlineSeconds": seconds},
            )

    # -- decoding --------------------------------------------------------------------
    def decode(
        self, received: list[dict[str, Any]]
    ) -> tuple[list[dict[str, Any]], list[Rejection], list[str], dict[str, Any]]:
        """Messages → (events, rejections, ackIds, facts for the cursor)."""
        events: list[dict[str, Any]] = []
        rejections: list[Rejection] = []
        ack_ids: list[str] = []
        newest: dt.datetime | None = None
        last_id = last_publish = None
        for rm in received:
            ack_id = rm.get("ackId") if isinstance(rm, dict) else None
            if not isinstance(ack_id, str):
                raise InputError(f"{self.type}: a received message has no ackId")
            ack_ids.append(ack_id)
            msg = rm.get("message") or {}
            mid = str(msg.get("messageId", "?"))
            last_id, last_publish = mid, msg.get("publishTime") or last_publish
            where = f"{self.config.subscription}#{mid}"  # type: ignore[attr-defined]
            raw = msg.get("data", "")
            try:
                data = base64.b64decode(raw, validate=True)
                doc = orjson.loads(data)
            except (binascii.Error, ValueError, TypeError) as exc:
                reason = "invalid base64" if isinstance(exc, binascii.Error) else "invalid JSON"
                rejections.append(
                    Rejection(
                        self.source, where, None, f"{reason}: message {mid}", str(raw)[:65536]
                    )
                )
                continue
            docs = doc if isinstance(doc, list) else [doc]
            bad = [d for d in docs if not isinstance(d, dict)]
            if bad or not docs:
                rejections.append(
                    Rejection(
                        self.source,
                        where,
                        None,
                        f"not a JSON object: message {mid} holds {type(doc).__name__}",
                        data.decode("utf-8", "replace")[:65536],
                    )
                )
                continue
            for d in docs:
                t = parse_time(d.get("timestamp") or d.get("receiveTimestamp"))
                if t is not None and (newest is None or t > newest):
                    newest = t
                events.append(d)
        if newest is None and last_publish:
            newest = parse_time(last_publish)
        return (
            events,
            rejections,
            ack_ids,
            {"last_message_id": last_id, "last_publish_time": last_publish, "newest": newest},
        )

    # -- the cycle -------------------------------------------------------------------
    def batches(self, cursor: dict[str, Any] | None) -> Iterator[Batch]:
        cfg: PubSubConfig = self.config  # type: ignore[assignment]
        cursor = dict(cursor or {})
        while not self.stop.is_set():
            lease = _Lease(self, cfg.ack_deadline)
            received: list[dict[str, Any]] = []
            acked = False
            try:
                drained = False
                while len(received) < cfg.batch_messages and not self.stop.is_set():
                    got = self.pull(min(cfg.max_messages, cfg.batch_messages - len(received)))
                    if not got:
                        drained = True
                        break
                    # first thing: keep what we hold leased while we pull more / write
                    lease.add([m.get("ackId") for m in got if isinstance(m, dict)])
                    received.extend(got)
                if not received:
                    return
                events, rejections, ack_ids, facts = self.decode(received)
                cursor = {
                    **cursor,
                    "messages": cursor.get("messages", 0) + len(received),
                    "last_message_id": facts["last_message_id"],
                    "last_publish_time": facts["last_publish_time"],
                }

                def ack(ids: list[str] = ack_ids, lease: _Lease = lease) -> None:
                    nonlocal acked
                    lease.release()  # no renewal racing the acknowledgement
                    self.acknowledge(ids)
                    acked = True

                yield Batch(
                    events,
                    cursor,
                    last_event_time=facts["newest"],
                    name=f"{self.id}.ndjson",
                    on_durable=ack,
                    rejections=rejections,
                )
                if drained:
                    return
            finally:
                lease.release()
                if received and not acked:
                    self._nack([m["ackId"] for m in received if isinstance(m, dict)])

    def _nack(self, ack_ids: list[str]) -> None:
        """Give the messages back now (deadline 0) after a failed write; best effort."""
        try:
            self.modify_deadline(ack_ids, 0)
            self.nacked += len(ack_ids)
        except Exception as exc:
            log.warning(
                "input %s: nack failed (%s); Pub/Sub redelivers after the deadline", self.id, exc
            )
