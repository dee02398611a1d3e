"""The durable receive path: decoded batches → fsync'd spool → Parquet in the lake.

A request is answered 200 only after its rows are in an append-only spool segment and
that segment has been ``fsync``'d (one fsync covers every request appended before it:
group commit). A flusher thread turns the spool into Parquet when it holds
``apm.flush_rows`` rows or its oldest row is ``apm.flush_secs`` old, so spans are
queryable within seconds while a trickle still makes few files (small files are merged
by :func:`mantissa.apm.lake.compact`). On start, segments left by a killed process are
replayed; the lake writer's dedup makes a replay of an already-flushed segment harmless.

Spool record: ``b"MSP1" | u32 length | u32 crc32 | Arrow IPC stream``; a torn tail
(length or CRC wrong) is where a crash cut the last append, and is ignored.

Config (``apm:`` in ``mantissa.yaml``)::

    apm:
      max_body_bytes: 5242880          # on the wire; 413 above
      max_decompressed_bytes: 52428800 # after gzip/deflate; 413 above
      flush_secs: 2.0
      flush_rows: 100000
      max_spool_bytes: 536870912       # unflushed backlog; 503 + Retry-After above
      max_in_flight: 64                # concurrent requests; 429 + Retry-After above
"""

from __future__ import annotations

import fcntl
import logging
import os
import struct
import threading
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
from pydantic import Field

from mantissa.apm import lake, otlp
from mantissa.config import Section
from mantissa.errors import MantissaError, Unavailable
from mantissa.lake.deadletter import DeadLetterStore, Rejection
from mantissa.lake.writer import new_batch_id

log = logging.getLogger("mantissa.apm")

MAGIC = b"MSP1"
_HEADER = struct.Struct("<4sII")


class ApmConfig(Section):
    max_body_bytes: int = Field(5 * 1024 * 1024, ge=1024)
    max_decompressed_bytes: int = Field(50 * 1024 * 1024, ge=1024)
    max_spans: int = Field(otlp.MAX_SPANS, ge=1)
    flush_secs: float = Field(2.0, gt=0)
    flush_rows: int = Field(100_000, ge=1)
    max_spool_bytes: int = Field(512 * 1024 * 1024, ge=1024)
    max_in_flight: int = Field(64, ge=1)
    max_future_secs: float = Field(86_400.0, ge=0)
    skew_tolerance_secs: float = Field(60.0, ge=0)
    max_age_days: float = Field(30.0, gt=0)
    compact_files: int = Field(12, ge=2)
    service_map_cache_secs: float = Field(300.0, ge=0)
    #: processes that decode requests (protobuf/JSON → Arrow → spool record) beside the
    #: server process; 0 decodes in the server's threads. Default: one per CPU but one.
    decode_workers: int = Field(default_factory=lambda: max(0, min(8, (os.cpu_count() or 1) - 1)))
    #: a flush drops spans already written in this many seconds (clients' retries); the
    #: replay of a crashed process's spool checks the whole hour partitions
    dedup_window_secs: float = Field(300.0, gt=0)
    #: rebuild the per-minute rollups of changed hours this often (0: only at query time)
    rollup_secs: float = Field(60.0, ge=0)
    #: how far back the background pass looks for changed hours
    rollup_lookback_hours: float = Field(26.0, gt=0)

    def limits(self) -> otlp.Limits:
        return otlp.Limits(
            max_items=self.max_spans,
            max_future_secs=self.max_future_secs,
            skew_tolerance_secs=self.skew_tolerance_secs,
            max_age_days=self.max_age_days,
        )


def apm_config(runtime: Any) -> ApmConfig:
    return runtime.config.section("apm", ApmConfig)


class Saturated(MantissaError):
    """Too many requests in flight: retry shortly (429)."""

    code = "too_many_requests"
    http_status = 429


# -- the spool ----------------------------------------------------------------------


def encode_record(data: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, data.schema) as w:
        w.write_table(data)
    payload = sink.getvalue().to_pybytes()
    return _HEADER.pack(MAGIC, len(payload), zlib.crc32(payload)) + payload


def read_segment(path: Path) -> tuple[list[pa.Table], int]:
    """Every complete record of a segment, and the byte offset where they end."""
    tables: list[pa.Table] = []
    data = path.read_bytes()
    pos = 0
    while pos + _HEADER.size <= len(data):
        magic, n, crc = _HEADER.unpack_from(data, pos)
        start = pos + _HEADER.size
        if magic != MAGIC or start + n > len(data):
            break
        payload = data[start : start + n]
        if zlib.crc32(payload) != crc:
            break
        tables.append(pa.ipc.open_stream(payload).read_all())
        pos = start + n
    return tables, pos


@dataclass
class Segment:
    path: Path
    fh: Any
    rows: int = 0
    bytes: int = 0
    opened: float = field(default_factory=time.monotonic)
    first_row_at: float | None = None


class Spool:
    """Append-only, fsync'd segments of one signal (traces or metrics)."""

    def __init__(self, root: Path, table: str) -> None:
        self.root = root / table
        self.root.mkdir(parents=True, exist_ok=True)
        self.table = table
        self.lock = threading.Lock()
        self.sync_lock = threading.Lock()
        self.current: Segment | None = None
        self.appended = 0  # bytes appended to the current segment
        self.synced = 0
        self.backlog_bytes = 0  # closed segments waiting for the flusher

    def _open(self) -> Segment:
        path = self.root / f"{new_batch_id()}.spool"
        fh = open(path, "ab", buffering=0)  # noqa: SIM115 (kept open across appends)
        # a lock tells other processes this segment is live (not left by a crash)
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        _fsync_dir(self.root)
        return Segment(path, fh)

    def append(self, data: pa.Table) -> tuple[Segment, int]:
        """Append a batch; returns the segment and the offset to :meth:`sync` to."""
        return self.append_record(encode_record(data), data.num_rows)

    def append_record(self, rec: bytes, rows: int) -> tuple[Segment, int]:
        """Append an encoded record (:func:`encode_record`) of ``rows`` rows."""
        with self.lock:
            if self.current is None:
                self.current = self._open()
                self.appended = self.synced = 0
            seg = self.current
            seg.fh.write(rec)
            seg.rows += rows
            seg.bytes += len(rec)
            if seg.first_row_at is None:
                seg.first_row_at = time.monotonic()
            self.appended += len(rec)
            return seg, self.appended

    def sync(self, seg: Segment, offset: int) -> None:
        """Make everything up to ``offset`` of ``seg`` durable (group commit)."""
        with self.sync_lock:
            if seg is not self.current or seg.fh.closed:
                return  # rotated: rotation fsyncs before closing
            if self.synced >= offset:
                return
            target = self.appended
            os.fsync(seg.fh.fileno())
            self.synced = max(self.synced, target)

    def rotate(self) -> Segment | None:
        """Close the current segment (durably) and return it for flushing."""
        with self.lock, self.sync_lock:
            seg = self.current
            if seg is None or seg.rows == 0:
                return None
            os.fsync(seg.fh.fileno())
            self.current = None
            self.backlog_bytes += seg.bytes
            return seg

    def due(self, flush_secs: float, flush_rows: int) -> bool:
        seg = self.current
        if seg is None or seg.rows == 0 or seg.first_row_at is None:
            return False
        return seg.rows >= flush_rows or time.monotonic() - seg.first_row_at >= flush_secs

    def pending_bytes(self) -> int:
        seg = self.current
        return self.backlog_bytes + (seg.bytes if seg else 0)

    def orphans(self) -> list[Path]:
        """Segments no live process holds: left by a crash, to replay."""
        out = []
        for p in sorted(self.root.glob("*.spool")):
            if self.current is not None and p == self.current.path:
                continue
            try:
                fh = open(p, "rb")  # noqa: SIM115
            except FileNotFoundError:
                continue
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                fh.close()
                continue
            fh.close()
            out.append(p)
        return out


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# -- decoding in worker processes -------------------------------------------------


@dataclass
class DecodedRecord:
    """What a decode worker sends back: the spool record, ready to append."""

    record: bytes
    rows: int
    rejected: list[otlp.Rejected]
    accepted: int
    message: str
    skewed: int


def decode_record(signal: str, body: bytes, media: str, limits: otlp.Limits) -> DecodedRecord:
    """Decode, validate and encode one request body (runs in a worker process)."""
    if signal == lake.TRACES:
        decoded = otlp.decode_traces(body, media, limits)
    else:
        decoded = otlp.decode_metrics(body, media, limits)
    rows = decoded.table.num_rows
    return DecodedRecord(
        encode_record(decoded.table) if rows else b"",
        rows,
        decoded.rejected,
        decoded.accepted,
        decoded.error_message,
        decoded.skewed,
    )


def _worker_init(parent: int) -> None:
    """A decode worker exits when the server process is gone (``kill -9`` included)."""

    def watch() -> None:
        while True:
            time.sleep(1.0)
            if os.getppid() != parent:
                os._exit(0)

    threading.Thread(target=watch, name="mantissa-decode-watchdog", daemon=True).start()


def _warm() -> bool:
    """Import the decoder in a fresh worker (so the first request does not pay for it)."""
    from opentelemetry.proto.collector.trace.v1 import trace_service_pb2  # noqa: F401

    return True


# -- the receiver -------------------------------------------------------------------


@dataclass
class Receipt:
    accepted: int
    rejected: int
    message: str
    skewed: int = 0


class Receiver:
    """Decode → validate → spool (durable) → flusher → lake, for one data dir."""

    def __init__(self, runtime: Any, start: bool = True) -> None:
        self.runtime = runtime
        self.cfg = apm_config(runtime)
        self.storage = runtime.storage
        root = Path(runtime.data_dir) / "spool" / "apm"
        self.spools = {t: Spool(root, t) for t in (lake.TRACES, lake.METRICS)}
        self.deadletter = DeadLetterStore(self.storage)
        self.in_flight = 0
        self._in_flight_lock = threading.Lock()
        self.stop_event = threading.Event()
        self.flush_lock = threading.Lock()
        self.flush_error: str | None = None
        self.flushes = 0
        self.policy = lake.CompactPolicy(max_files=self.cfg.compact_files)
        self.pool: Any = None
        self._warming: list[Any] = []
        self._pool_lock = threading.Lock()
        self.thread: threading.Thread | None = None
        self.rollup_thread: threading.Thread | None = None
        self.rollups_built = 0
        self.replay()
        if start:
            self.thread = threading.Thread(
                target=self._loop, name="mantissa-apm-flush", daemon=True
            )
            self.thread.start()
            if self.cfg.rollup_secs > 0:
                self.rollup_thread = threading.Thread(
                    target=self._rollup_loop, name="mantissa-apm-rollup", daemon=True
                )
                self.rollup_thread.start()

    # -- requests -------------------------------------------------------------
    def enter(self) -> None:
        """Admission control: 429 when too many requests, 503 when the spool is full."""
        with self._in_flight_lock:
            if self.in_flight >= self.cfg.max_in_flight:
                raise Saturated(f"over {self.cfg.max_in_flight} export requests in flight")
            backlog = sum(s.pending_bytes() for s in self.spools.values())
            if backlog > self.cfg.max_spool_bytes or self.flush_error:
                raise Unavailable(
                    "the receiver is catching up writing to the lake"
                    + (f" ({self.flush_error})" if self.flush_error else "")
                )
            self.in_flight += 1

    def leave(self) -> None:
        with self._in_flight_lock:
            self.in_flight -= 1

    def _decoder(self) -> Any:
        """The decode worker pool (started on first use; None when decoding in-process)."""
        if self.cfg.decode_workers <= 0:
            return None
        with self._pool_lock:
            if self.pool is None:
                import multiprocessing as mp
                from concurrent.futures import ProcessPoolExecutor

                # spawn: the server process runs threads (and DuckDB): never fork it
                self.pool = ProcessPoolExecutor(
                    self.cfg.decode_workers,
                    mp_context=mp.get_context("spawn"),
                    initializer=_worker_init,
                    initargs=(os.getpid(),),
                )
                self._warming = [self.pool.submit(_warm) for _ in range(self.cfg.decode_workers)]
            if self._warming:
                # workers start in a second or two: decode in-process until they are ready
                if not all(f.done() for f in self._warming):
                    return None
                self._warming = []
            return self.pool

    def receive(self, signal: str, body: bytes, media: str) -> Receipt:
        """Decode and durably spool one (decompressed) request body."""
        limits = self.cfg.limits()
        pool = self._decoder()
        if pool is not None:
            from concurrent.futures.process import BrokenProcessPool

            try:
                got = pool.submit(decode_record, signal, body, media, limits).result()
            except BrokenProcessPool:
                with self._pool_lock:
                    self.pool = None  # a worker died (OOM ...): start a new pool next time
                got = decode_record(signal, body, media, limits)
        else:
            got = decode_record(signal, body, media, limits)
        if got.rejected:
            self._dead_letter(signal, got.rejected)
        if got.rows:
            spool = self.spools[signal]
            seg, offset = spool.append_record(got.record, got.rows)
            spool.sync(seg, offset)
        return Receipt(got.accepted, len(got.rejected), got.message, got.skewed)

    def _dead_letter(self, signal: str, rejected: list[otlp.Rejected]) -> None:
        import orjson

        self.deadletter.write(
            f"otlp_{signal}",
            new_batch_id(),
            [
                Rejection(
                    source=f"otlp_{signal}",
                    file=f"POST /v1/{signal}",
                    line=i,
                    reason=r.reason,
                    record=orjson.dumps(r.record).decode()[:65536],
                )
                for i, r in enumerate(rejected)
            ],
        )

    # -- flushing ---------------------------------------------------------------
    def _loop(self) -> None:
        while not self.stop_event.wait(0.2):
            try:
                if self.flush_error:
                    # segments whose flush failed are still on disk: retry them first
                    self.replay()
                self.flush(force=False)
                self.flush_error = None
            except Exception as exc:
                self.flush_error = type(exc).__name__
                log.exception("APM flush failed; retrying")
                self.stop_event.wait(2.0)

    def _rollup_loop(self) -> None:
        """Keep the service map's per-minute rollups of recent hours current, so the
        first query after ingest reads rollups instead of raw spans (a query still
        rebuilds an hour whose files changed since)."""
        import datetime as dt

        from mantissa.apm import rollup

        while not self.stop_event.wait(self.cfg.rollup_secs):
            since = dt.datetime.now(dt.UTC) - dt.timedelta(hours=self.cfg.rollup_lookback_hours)
            try:
                self.rollups_built += rollup.refresh(self.storage, since)
            except Exception:
                log.exception("APM rollup refresh failed; retrying later")

    def flush(self, force: bool = True) -> int:
        """Write due (or, with ``force``, all) spooled rows to the lake; returns rows."""
        rows = 0
        with self.flush_lock:
            for table, spool in self.spools.items():
                if not force and not spool.due(self.cfg.flush_secs, self.cfg.flush_rows):
                    continue
                seg = spool.rotate()
                if seg is None:
                    continue
                seg.fh.close()  # releases the lock: from here on it is an ordinary file
                try:
                    rows += self._flush_file(table, seg.path)
                finally:
                    spool.backlog_bytes -= seg.bytes
        return rows

    def _flush_file(self, table: str, path: Path, replay: bool = False) -> int:
        tables, _end = read_segment(path)
        rows = 0
        if tables:
            data = pa.concat_tables(tables)
            res = lake.write_table(
                self.storage,
                table,
                data,
                policy=self.policy,
                dedup_window_secs=None if replay else self.cfg.dedup_window_secs,
            )
            rows = res.rows
            self.flushes += 1
        path.unlink(missing_ok=True)
        return rows

    def replay(self) -> int:
        """Flush segments a killed process left behind (before accepting new data)."""
        rows = 0
        with self.flush_lock:
            for table, spool in self.spools.items():
                for path in spool.orphans():
                    log.info("replaying APM spool segment %s", path.name)
                    rows += self._flush_file(table, path, replay=True)
        return rows

    def close(self) -> None:
        self.stop_event.set()
        with self._pool_lock:
            pool, self.pool = self.pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
        if self.thread is not None:
            self.thread.join(30)
        if self.rollup_thread is not None:
            self.rollup_thread.join(30)
        self.flush(force=True)


_RECEIVERS: dict[str, Receiver] = {}
_LOCK = threading.Lock()


def receiver_for(runtime: Any) -> Receiver:
    """The one receiver of ``runtime``'s data dir in this process (created on first use)."""
    key = str(Path(runtime.data_dir).resolve())
    with _LOCK:
        r = _RECEIVERS.get(key)
        if r is None or r.stop_event.is_set():
            r = Receiver(runtime)
            _RECEIVERS[key] = r
        return r


def close_receiver(runtime: Any) -> None:
    key = str(Path(runtime.data_dir).resolve())
    with _LOCK:
        r = _RECEIVERS.pop(key, None)
    if r is not None:
        r.close()
