"""Push receivers' shared core: a pool of ingest pipelines and the ``receivers`` config.

HTTP (``mantissa.api.routes.ingest``) and syslog (``mantissa.inputs.syslog``) hand
bodies to :meth:`Receiver.ingest`, which returns only after the batch is published in
the lake (atomic, dedup on ``event_id``): an acknowledgement means durable.
Concurrency is bounded; a saturated receiver says so (HTTP 429, TCP backpressure)
instead of queueing without limit.
"""

from __future__ import annotations

import gzip
import hashlib
import queue
import threading
import uuid
import zlib
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field

from mantissa.errors import IngestError, MantissaError, PayloadTooLarge
from mantissa.lake.ingest import IngestSummary, Pipeline
from mantissa.sources.base import get_source


class Saturated(MantissaError):
    """Every ingest slot is busy: the sender should retry shortly (429 / backpressure)."""

    code = "too_many_requests"
    http_status = 429


class HecConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    #: the source for events whose ``sourcetype`` is not mapped
    default_source: str = "json_lines"
    #: ``sourcetype`` → source (e.g. ``{"okta:im2": okta, "aws:cloudtrail": cloudtrail}``)
    sourcetypes: dict[str, str] = Field(default_factory=dict)


class HttpReceiverConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    max_body_bytes: int = 16 * 1024 * 1024
    max_decompressed_bytes: int = 128 * 1024 * 1024
    #: batches being written at once; more get 429 with Retry-After
    max_concurrent: int = 8
    hec: HecConfig = Field(default_factory=HecConfig)


class SyslogListener(BaseModel):
    model_config = ConfigDict(extra="forbid")
    protocol: str = "udp"  # udp | tcp | tls
    host: str = "127.0.0.1"
    port: int = 5514
    source: str = "syslog"
    #: sender address (IP or CIDR) → source, e.g. {"10.1.2.0/24": cef}
    senders: dict[str, str] = Field(default_factory=dict)
    tls_cert: str | None = None
    tls_key: str | None = None
    flush_events: int = 5000
    flush_secs: float = 1.0
    max_message_bytes: int = 64 * 1024


class ReceiversConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    http: HttpReceiverConfig = Field(default_factory=HttpReceiverConfig)
    syslog: dict[str, SyslogListener] = Field(default_factory=dict)


def receivers_config(runtime: Any) -> ReceiversConfig:
    return runtime.config.section("receivers", ReceiversConfig)


def decompress(body: bytes, encoding: str | None, limit: int) -> bytes:
    """Inflate ``gzip``/``deflate`` bodies up to ``limit`` bytes (zip bombs: 413)."""
    enc = (encoding or "identity").strip().lower()
    if enc in ("", "identity"):
        return body
    if enc not in ("gzip", "x-gzip", "deflate"):
        raise IngestError(f"unsupported Content-Encoding {encoding!r}; send gzip or identity")
    wbits = 16 + zlib.MAX_WBITS if enc != "deflate" else zlib.MAX_WBITS
    d = zlib.decompressobj(wbits)
    try:
        out = d.decompress(body, limit + 1)
    except zlib.error as exc:
        raise IngestError(f"the {enc} body is corrupt: {exc}") from None
    if len(out) > limit or d.unconsumed_tail:
        raise PayloadTooLarge(f"the body inflates past the {limit}-byte limit")
    if not d.eof:
        raise IngestError(f"the {enc} body is truncated")
    return out


gzip_compress = gzip.compress


def delivery_id(body: bytes, *keys: str | None) -> str:
    """A delivery's id: the same for a sender's retry of the same request (same keys,
    e.g. a HEC channel or an ``Idempotency-Key``, and same body), distinct otherwise."""
    h = hashlib.blake2b(digest_size=12)
    for k in keys:
        h.update((k or "").encode() + b"\x00")
    h.update(body)
    return h.hexdigest()


class Receiver:
    """Ingest pipelines pooled per source, with a bound on concurrent writes."""

    def __init__(self, runtime: Any, max_concurrent: int = 8) -> None:
        self.runtime = runtime
        self.slots = threading.BoundedSemaphore(max_concurrent)
        self.pools: dict[str, queue.SimpleQueue[Pipeline]] = {}
        self.lock = threading.Lock()
        self.events = 0
        self.batches = 0
        self.committers: dict[str, Committer] = {}

    def _take(self, source: str) -> Pipeline:
        with self.lock:
            pool = self.pools.setdefault(source, queue.SimpleQueue())
        try:
            return pool.get_nowait()
        except queue.Empty:
            rt = self.runtime
            src = get_source(source, {"timestamp_fields": rt.config.ingest.timestamp_fields})
            # records without a vendor id: event_id per delivery and line, not content alone
            return Pipeline(rt.storage, src, rt.config.ingest, delivery_ids=True)

    def check_source(self, source: str) -> None:
        get_source(source)  # raises SourceError for unknown names

    def ingest(
        self,
        source: str,
        body: bytes,
        name: str,
        wait: bool = False,
        delivery: str | None = None,
    ) -> IngestSummary:
        """Write ``body`` (a file's worth of ``source`` records) durably; returns counts.

        ``delivery`` identifies the request (:func:`delivery_id`): a retry with the same
        one is deduplicated, while identical lines of distinct deliveries are kept. None:
        a new delivery (syslog batches).
        """
        return self.ingest_parts(source, [(body, name, delivery)], wait)

    def ingest_parts(
        self, source: str, parts: list[tuple[bytes, str, str | None]], wait: bool = False
    ) -> IngestSummary:
        """Write several deliveries ``(body, name, delivery)`` in one durable lake write."""
        if not self.slots.acquire(blocking=wait):
            raise Saturated("the receiver is busy; retry shortly")
        try:
            pipeline = self._take(source)
            summary = IngestSummary(source)
            named = [(b, f"{n}@{d or uuid.uuid4().hex}") for b, n, d in parts]
            try:
                pipeline.ingest_parts(named, summary)
            finally:
                self.pools[source].put(pipeline)
            with self.lock:
                self.events += summary.events
                self.batches += 1
            return summary
        finally:
            self.slots.release()

    def ingest_records(
        self, source: str, records: list[Any], name: str, wait: bool = False
    ) -> IngestSummary:
        body = b"\n".join(orjson.dumps(r) for r in records)
        return self.ingest(source, body, name, wait)

    def commit(self, source: str, body: bytes, delivery: str | None = None) -> None:
        """Group commit: ``body`` joins the requests arriving meanwhile in one lake write;
        returns once that write is durable (raises what the write raised)."""
        with self.lock:
            c = self.committers.get(source)
            if c is None:
                c = self.committers[source] = Committer(self, source)
        c.submit(body, delivery)


class Committer:
    """One writer thread per source that turns many small requests into one lake write.

    A lake write has a fixed cost (dedup lookup, Parquet file, publish) of tens of
    milliseconds; paying it per 100-event HEC request caps a receiver at a few thousand
    events/s. Requests wait here for the next write (at most ``max_wait`` after the
    writer frees up) and are acknowledged together once it is durable.
    """

    def __init__(
        self,
        receiver: Receiver,
        source: str,
        max_batch_bytes: int = 32 * 1024 * 1024,
        max_pending_bytes: int = 256 * 1024 * 1024,
    ) -> None:
        self.receiver = receiver
        self.source = source
        self.max_batch_bytes = max_batch_bytes
        self.max_pending_bytes = max_pending_bytes
        self.cond = threading.Condition()
        self.pending: list[tuple[bytes, str | None, dict[str, Any]]] = []
        self.pending_bytes = 0
        self.thread = threading.Thread(target=self._loop, name=f"commit-{source}", daemon=True)
        self.thread.start()

    def submit(self, body: bytes, delivery: str | None = None) -> None:
        slot: dict[str, Any] = {"done": threading.Event()}
        with self.cond:
            if self.pending_bytes + len(body) > self.max_pending_bytes:
                raise Saturated("the receiver's write queue is full; retry shortly")
            self.pending.append((body, delivery, slot))
            self.pending_bytes += len(body)
            self.cond.notify()
        slot["done"].wait()
        if slot.get("error") is not None:
            raise slot["error"]

    def _loop(self) -> None:
        while True:
            with self.cond:
                while not self.pending:
                    self.cond.wait()
                take, size = [], 0
                while self.pending and (
                    not take or size + len(self.pending[0][0]) <= self.max_batch_bytes
                ):
                    body, delivery, slot = self.pending.pop(0)
                    take.append((body, delivery, slot))
                    size += len(body)
                self.pending_bytes -= size
            error: BaseException | None = None
            try:
                # one lake write, but each request stays its own delivery (own event ids)
                parts = [(b, f"http-{self.source}", d) for b, d, _ in take]
                self.receiver.ingest_parts(self.source, parts, wait=True)
            except BaseException as exc:  # handed to every waiting request
                error = exc
            for _, _, slot in take:
                slot["error"] = error
                slot["done"].set()


_RECEIVERS: dict[int, Receiver] = {}
_LOCK = threading.Lock()


def receiver_for(runtime: Any) -> Receiver:
    """The process-wide receiver of ``runtime``."""
    with _LOCK:
        rec = _RECEIVERS.get(id(runtime))
        if rec is None:
            rec = Receiver(runtime, receivers_config(runtime).http.max_concurrent)
            _RECEIVERS[id(runtime)] = rec
        return rec
