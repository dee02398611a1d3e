"""Azure Activity Log (and other diagnostic-settings exports) from an Event Hub, read
through the Event Hubs Kafka endpoint, with checkpoints per partition in the state store.

Azure Monitor diagnostic settings stream to an event hub; each event is a JSON document
``{"records": [...]}`` (Activity Log: ``insights-activity-logs``). Event Hubs speaks the
Kafka protocol on ``{namespace}.servicebus.windows.net:9093`` (SASL_SSL, mechanism PLAIN,
user ``$ConnectionString``, password the connection string of a shared access policy with
the *Listen* claim). This input assigns every partition of the hub (no consumer group is
needed: ``partitions`` restricts them), reads from the saved offset of each partition up
to the end offsets seen when the cycle started, and yields batches whose cursor holds the
next offset of every partition. The Runner saves that cursor only after the batch is in
the lake, so a crash re-reads at most one batch (dedup on ``event_id`` absorbs it).

The first run starts at the first event enqueued ``start`` ago (ListOffsets by timestamp),
or at the oldest retained one (Event Hubs keeps 1-7 days, 90 on Premium/Dedicated). A saved offset older than the retention (events expired unread) is
reported as an input error after the rest is stored, never silently skipped. Records that
are not JSON go to the dead-letter store with ``hub/partition@offset``.

``source`` picks the parser: ``azure_activity`` by default; a hub fed by other diagnostic
settings (e.g. Entra ID sign-in logs: ``source: azure_ad``) takes that source instead.
Needs the ``azure`` extra (``kafka-python``).
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import time
from collections.abc import Iterator
from typing import Any, Literal

import orjson
from pydantic import Field, field_validator

from mantissa.errors import InputAuthError, InputError
from mantissa.inputs.base import Batch, Input, InputConfig, parse_duration, parse_time
from mantissa.lake.deadletter import Rejection

log = logging.getLogger("mantissa.inputs.azure_activity")

_ENDPOINT = re.compile(r"Endpoint=sb://([^/;]+)", re.I)
_ENTITY = re.compile(r"EntityPath=([^;]+)", re.I)


class EventHubsConfig(InputConfig):
    #: a shared access policy's connection string (Listen), e.g. ``${env:EVENTHUB_CONN}``
    connection_string: str | None = None
    #: the event hub (Kafka topic); default: ``EntityPath`` of the connection string
    event_hub: str | None = None
    #: ``host:port`` of the Kafka endpoint; default ``{namespace}.servicebus.windows.net:9093``
    bootstrap_servers: str | None = None
    security_protocol: Literal["SASL_SSL", "SASL_PLAINTEXT"] = "SASL_SSL"
    #: CA bundle for the TLS certificate (default: the system's; Azure's is public)
    ssl_cafile: str | None = None
    #: partitions to read (default: all of the hub's)
    partitions: list[int] | None = None
    #: records per lake write
    batch_events: int = Field(default=5000, ge=1)
    #: give up a cycle when a poll brings nothing for this long before the end offsets
    poll_wait: float = 10.0
    interval: float = 30.0

    @field_validator("poll_wait", mode="before")
    @classmethod
    def _wait(cls, v: Any) -> float:
        return parse_duration(v)


class AzureActivity(Input):
    """``type: azure_activity``: diagnostic-settings exports from an Event Hub (Kafka)."""

    type = "azure_activity"
    source = "azure_activity"
    config_model = EventHubsConfig

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cfg: EventHubsConfig = self.config  # type: ignore[assignment]
        if not cfg.connection_string:
            raise InputError(
                f"input {self.id}: azure_activity needs `connection_string` (a shared access "
                "policy with the Listen claim on the namespace or the event hub)"
            )
        self.conn = cfg.secret("connection_string")
        entity = _ENTITY.search(self.conn)
        self.hub = cfg.event_hub or (entity.group(1) if entity else None)
        if not self.hub:
            raise InputError(f"input {self.id}: name the `event_hub` (Kafka topic) to read")
        endpoint = _ENDPOINT.search(self.conn)
        default = f"{endpoint.group(1)}:9093" if endpoint else None
        self.bootstrap = cfg.bootstrap_servers or _host_port(cfg.base_url) or default
        if not self.bootstrap:
            raise InputError(
                f"input {self.id}: no Endpoint=sb://... in the connection string; "
                "set `bootstrap_servers`"
            )

    def _consumer(self, watch: _AuthWatch) -> Any:
        try:
            from kafka import KafkaConsumer
            from kafka.errors import KafkaError
        except ModuleNotFoundError:
            from mantissa.errors import ConfigError

            raise ConfigError(
                "input type azure_activity needs the package kafka-python",
                hint="pip install 'mantissa-log[azure]'",
            ) from None
        cfg: EventHubsConfig = self.config  # type: ignore[assignment]
        try:
            return KafkaConsumer(
                bootstrap_servers=self.bootstrap.split(","),
                security_protocol=cfg.security_protocol,
                sasl_mechanism="PLAIN",
                sasl_plain_username="$ConnectionString",
                sasl_plain_password=self.conn,
                group_id=None,
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                client_id=f"mantissa-{self.id}",
                request_timeout_ms=int(cfg.timeout * 1000),
                bootstrap_timeout_ms=int(cfg.timeout * 1000),
                max_poll_records=min(cfg.batch_events, 5000),
                **({"ssl_cafile": cfg.ssl_cafile} if cfg.ssl_cafile else {}),
            )
        except KafkaError as exc:
            raise _kafka_error(exc, self.bootstrap, watch) from None

    def batches(self, cursor: dict[str, Any] | None) -> Iterator[Batch]:
        from kafka import TopicPartition
        from kafka.errors import KafkaError

        cfg: EventHubsConfig = self.config  # type: ignore[assignment]
        offsets: dict[str, int] = dict((cursor or {}).get("offsets") or {})
        with _AuthWatch() as watch:
            consumer = self._consumer(watch)
            try:
                parts = consumer.partitions_for_topic(self.hub)
            except KafkaError as exc:
                consumer.close()
                raise _kafka_error(exc, self.bootstrap, watch) from None
        expired: list[str] = []
        try:
            if not parts:
                raise InputError(f"event hub {self.hub!r} not found in {self.bootstrap}")
            wanted = sorted(parts if cfg.partitions is None else set(cfg.partitions) & parts)
            tps = [TopicPartition(self.hub, p) for p in wanted]
            consumer.assign(tps)
            try:
                first = consumer.beginning_offsets(tps)
                end = consumer.end_offsets(tps)
                new = [tp for tp in tps if str(tp.partition) not in offsets]
                since = self._first_run_offsets(consumer, new, first, end)
            except KafkaError as exc:
                raise _kafka_error(exc, self.bootstrap) from None
            for tp in tps:
                saved = offsets.get(str(tp.partition))
                if saved is None:
                    start_at = since[tp]
                elif saved < first[tp]:
                    expired.append(f"partition {tp.partition}: offsets {saved}-{first[tp] - 1}")
                    start_at = first[tp]
                else:
                    start_at = saved
                consumer.seek(tp, start_at)
                offsets[str(tp.partition)] = start_at
            events: list[dict[str, Any]] = []
            rejections: list[Rejection] = []
            newest: dt.datetime | None = None
            idle_since = time.monotonic()

            def caught_up() -> bool:
                return all(offsets[str(tp.partition)] >= end[tp] for tp in tps)

            while not caught_up() and not self.stop.is_set():
                try:
                    # a message holds many records: ask for no more than the batch lacks
                    got = consumer.poll(
                        timeout_ms=500, max_records=max(1, cfg.batch_events - len(events))
                    )
                except KafkaError as exc:
                    raise _kafka_error(exc, self.bootstrap) from None
                if not got:
                    if time.monotonic() - idle_since > cfg.poll_wait:
                        raise InputError(
                            f"event hub {self.hub}: no records for {cfg.poll_wait:.0f}s before "
                            "the end offsets; stored what was read"
                        )
                    continue
                idle_since = time.monotonic()
                for tp, msgs in got.items():
                    for m in msgs:
                        newest = self._decode(m, events, rejections, newest)
                        offsets[str(tp.partition)] = m.offset + 1
                if len(events) >= cfg.batch_events or caught_up():
                    yield Batch(
                        events,
                        {"event_hub": self.hub, "offsets": dict(offsets)},
                        last_event_time=newest,
                        name=f"{self.id}.ndjson",
                        rejections=rejections,
                    )
                    events, rejections, newest = [], [], None
            if events or rejections:
                yield Batch(
                    events,
                    {"event_hub": self.hub, "offsets": dict(offsets)},
                    last_event_time=newest,
                    name=f"{self.id}.ndjson",
                    rejections=rejections,
                )
        finally:
            consumer.close()
        if expired:
            raise InputError(
                f"event hub {self.hub}: events expired before they were read ("
                + "; ".join(expired)
                + "); the retention is shorter than the outage",
                hint="raise the hub's retention or shorten the input's interval",
            )

    def _first_run_offsets(
        self, consumer: Any, tps: list[Any], first: dict[Any, int], end: dict[Any, int]
    ) -> dict[Any, int]:
        """Where a partition without a checkpoint starts: the first event enqueued at or
        after ``start`` ago (ListOffsets by timestamp), else the end (nothing that new)."""
        if not tps:
            return {}
        since_ms = int(self.backfill_from().timestamp() * 1000)
        found = consumer.offsets_for_times({tp: since_ms for tp in tps})
        return {
            tp: max(first[tp], found[tp].offset) if found.get(tp) is not None else end[tp]
            for tp in tps
        }

    def _decode(
        self,
        m: Any,
        events: list[dict[str, Any]],
        rejections: list[Rejection],
        newest: dt.datetime | None,
    ) -> dt.datetime | None:
        where = f"{self.hub}/{m.partition}@{m.offset}"
        try:
            doc = orjson.loads(m.value or b"")
        except orjson.JSONDecodeError as exc:
            raw = (m.value or b"").decode("utf-8", "replace")[:65536]
            rejections.append(Rejection(self.source, where, None, f"invalid JSON: {exc}", raw))
            return newest
        recs = doc.get("records") if isinstance(doc, dict) and "records" in doc else doc
        recs = recs if isinstance(recs, list) else [recs]
        for r in recs:
            if not isinstance(r, dict):
                rejections.append(
                    Rejection(
                        self.source,
                        where,
                        None,
                        f"not a JSON object: {type(r).__name__}",
                        orjson.dumps(r).decode()[:65536],
                    )
                )
                continue
            t = parse_time(r.get("time"))
            if t is not None and (newest is None or t > newest):
                newest = t
            events.append(r)
        return newest


class _AuthWatch(logging.Handler):
    """kafka-python retries a refused SASL login until its bootstrap times out and then
    raises a bare timeout; its log says why. Watch it so the error can say so too."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.refused = False
        self.tls: str | None = None

    def emit(self, record: logging.LogRecord) -> None:
        try:
            msg = record.getMessage()
            if "SaslAuthenticationFailed" in msg:
                self.refused = True
            elif self.tls is None and ("CERTIFICATE_VERIFY_FAILED" in msg or "SSLError" in msg):
                self.tls = msg[msg.find("[SSL") :][:160] if "[SSL" in msg else msg[-160:]
        except Exception:  # never let logging break the input
            pass

    def __enter__(self) -> _AuthWatch:
        logging.getLogger("kafka").addHandler(self)
        return self

    def __exit__(self, *exc: object) -> None:
        logging.getLogger("kafka").removeHandler(self)


def _host_port(url: str | None) -> str | None:
    if not url:
        return None
    return re.sub(r"^[a-z+]+://", "", url).rstrip("/")


def _kafka_error(exc: Exception, bootstrap: str, watch: _AuthWatch | None = None) -> InputError:
    name = type(exc).__name__
    refused = watch is not None and watch.refused
    if refused or "Authentication" in name or "Sasl" in name or "Authorization" in name:
        return InputAuthError(
            f"Event Hubs refused the connection string ({name})",
            hint="check the shared access policy (Listen) and its key",
        )
    if watch is not None and watch.tls:
        return InputError(
            f"TLS handshake with the Event Hubs Kafka endpoint {bootstrap} failed: {watch.tls}",
            hint="a private CA (proxy, test broker): set ssl_cafile",
        )
    return InputError(f"Event Hubs Kafka endpoint {bootstrap}: {name}: {exc}")
