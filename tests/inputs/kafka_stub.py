"""A one-broker Kafka wire-protocol stub that behaves like the Azure Event Hubs Kafka endpoint.

Speaks the Kafka protocol over TCP on 127.0.0.1 (size-prefixed frames, request header v1):
ApiVersions (answering a too-new version with UNSUPPORTED_VERSION and its list, as brokers
do), SaslHandshake + SaslAuthenticate with the PLAIN mechanism, where Event Hubs wants the
user ``$ConnectionString`` and the namespace connection string as the password (anything
else: SASL_AUTHENTICATION_FAILED, and no other request is served before authenticating),
Metadata, ListOffsets (earliest/latest) and Fetch returning record batches (magic v2 with
CRC-32C, built with kafka-python's record builder). Event hubs are topics, their partitions
the hub's partitions. Requests are encoded/decoded with kafka-python's protocol structs
(the wire format is Kafka's, independent of the client under test).
"""

from __future__ import annotations

import io
import socket
import socketserver
import ssl
import struct
import threading
import time
from typing import Any

from kafka.protocol.old import (
    api_versions,
    fetch,
    list_offsets,
    metadata,
    sasl_authenticate,
    sasl_handshake,
)
from kafka.record.default_records import DefaultRecordBatchBuilder

# what this broker supports (all non-flexible versions: header v1, no tagged fields)
SUPPORTED = {18: (0, 2), 17: (0, 1), 36: (0, 1), 3: (1, 5), 2: (1, 2), 1: (4, 4)}
UNSUPPORTED_VERSION = 35
SASL_AUTHENTICATION_FAILED = 58
UNKNOWN_TOPIC_OR_PARTITION = 3
OFFSET_OUT_OF_RANGE = 1


def _requests() -> dict[tuple[int, int], Any]:
    out = {}
    for mod in (api_versions, fetch, list_offsets, metadata, sasl_authenticate, sasl_handshake):
        for name in dir(mod):
            cls = getattr(mod, name)
            if isinstance(cls, type) and name.endswith(tuple(f"Request_v{v}" for v in range(20))):
                out[(cls.API_KEY, cls.API_VERSION)] = cls
    return out


def _responses() -> dict[tuple[int, int], Any]:
    out = {}
    for mod in (api_versions, fetch, list_offsets, metadata, sasl_authenticate, sasl_handshake):
        for name in dir(mod):
            cls = getattr(mod, name)
            if isinstance(cls, type) and name.endswith(tuple(f"Response_v{v}" for v in range(20))):
                out[(cls.API_KEY, cls.API_VERSION)] = cls
    return out


REQUESTS, RESPONSES = _requests(), _responses()


class EventHubsKafkaStub:
    """Event hubs (topics) with partitions of records; knobs for tests."""

    def __init__(
        self,
        namespace: str = "mantissa-ns",
        key: str = "c2VjcmV0LWtleQ==",
        tls: tuple[str, str] | None = None,
    ) -> None:
        """``tls``: (certificate, key) PEM files: SASL_SSL as on port 9093."""
        self.namespace = namespace
        self.connection_string = (
            f"Endpoint=sb://{namespace}.servicebus.windows.net/;"
            f"SharedAccessKeyName=mantissa-listen;SharedAccessKey={key}"
        )
        self.topics: dict[str, list[list[tuple[int, bytes]]]] = {}
        self.lock = threading.Lock()
        self.calls: dict[str, int] = {"fetch": 0, "auth_ok": 0, "auth_failed": 0}
        self.max_fetch_records = 100  # records per partition per Fetch answer
        self.log_start: dict[tuple[str, int], int] = {}  # retention: first offset kept
        stub = self
        ctx = None
        if tls is not None:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.minimum_version = ssl.TLSVersion.TLSv1_2
            ctx.load_cert_chain(*tls)

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                sock = self.request
                if ctx is not None:
                    try:
                        sock = ctx.wrap_socket(sock, server_side=True)
                    except (ssl.SSLError, OSError):
                        with stub.lock:
                            stub.calls["tls_failed"] = stub.calls.get("tls_failed", 0) + 1
                        return
                stub._serve(sock)

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.bootstrap = f"127.0.0.1:{self.port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    # -- test helpers --------------------------------------------------------------
    def create_hub(self, name: str, partitions: int = 2) -> None:
        with self.lock:
            self.topics[name] = [[] for _ in range(partitions)]

    def send(self, hub: str, partition: int, values: list[bytes], ts_ms: int | None = None) -> None:
        """Append events (enqueued time ``ts_ms``, default now) to a partition."""
        with self.lock:
            now = int(time.time() * 1000) if ts_ms is None else ts_ms
            self.topics[hub][partition].extend((now, v) for v in values)

    def expire(self, hub: str, partition: int, upto: int) -> None:
        """Retention: offsets below ``upto`` are gone (ListOffsets earliest = ``upto``)."""
        with self.lock:
            self.log_start[(hub, partition)] = upto

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    # -- the protocol --------------------------------------------------------------
    def _serve(self, sock: socket.socket) -> None:
        authed = False
        mechanism_ok = False
        while True:
            head = _recv(sock, 4)
            if head is None:
                return
            (size,) = struct.unpack(">i", head)
            frame = _recv(sock, size)
            if frame is None:
                return
            buf = io.BytesIO(frame)
            api_key, version, corr = struct.unpack(">hhi", buf.read(8))
            (n,) = struct.unpack(">h", buf.read(2))
            if n > 0:
                buf.read(n)  # client_id
            body = buf.read()
            if api_key == 18 and version > SUPPORTED[18][1]:
                # a broker answers an ApiVersions it does not know in v0, with its list
                resp = api_versions.ApiVersionsResponse_v0(
                    error_code=UNSUPPORTED_VERSION, api_keys=self._api_list()
                )
                _send(sock, corr, resp.encode())
                continue
            lo_hi = SUPPORTED.get(api_key)
            if lo_hi is None or not lo_hi[0] <= version <= lo_hi[1]:
                return  # a real broker closes the connection on an unsupported request
            if not authed and api_key not in (18, 17, 36):
                return  # SASL first: Event Hubs serves nothing unauthenticated
            req = REQUESTS[(api_key, version)].decode(body)
            Resp = RESPONSES[(api_key, version)]
            if api_key == 18:
                kw: dict[str, Any] = {"error_code": 0, "api_keys": self._api_list()}
                if version >= 1:
                    kw["throttle_time_ms"] = 0
                resp = Resp(**kw)
            elif api_key == 17:
                mechanism_ok = req.mechanism == "PLAIN"
                resp = Resp(error_code=0 if mechanism_ok else 33, mechanisms=["PLAIN"])
            elif api_key == 36:
                parts = (req.auth_bytes or b"").split(b"\0")
                ok = (
                    mechanism_ok
                    and len(parts) == 3
                    and parts[1] == b"$ConnectionString"
                    and parts[2].decode("utf-8", "replace") == self.connection_string
                )
                with self.lock:
                    self.calls["auth_ok" if ok else "auth_failed"] += 1
                kw = {
                    "error_code": 0 if ok else SASL_AUTHENTICATION_FAILED,
                    "error_message": None if ok else "Invalid SAS token or connection string",
                    "auth_bytes": b"",
                }
                if version >= 1:
                    kw["session_lifetime_ms"] = 0
                resp = Resp(**kw)
                authed = ok
                _send(sock, corr, resp.encode())
                if not ok:
                    # like a broker (connection.failed.authentication.delay.ms): answer,
                    # then close shortly after
                    time.sleep(0.1)
                    return
                continue
            elif api_key == 3:
                resp = self._metadata(Resp, req, version)
            elif api_key == 2:
                resp = self._list_offsets(Resp, req, version)
            else:
                resp = self._fetch(Resp, req)
            _send(sock, corr, resp.encode())

    def _api_list(self) -> list[tuple[int, int, int]]:
        return [(k, lo, hi) for k, (lo, hi) in SUPPORTED.items()]

    def _metadata(self, Resp: Any, req: Any, version: int) -> Any:
        with self.lock:
            wanted = [t if isinstance(t, str) else t[0] for t in (req.topics or [])] or list(
                self.topics
            )
            topics = []
            for name in wanted:
                parts = self.topics.get(name)
                if parts is None:
                    topics.append((UNKNOWN_TOPIC_OR_PARTITION, name, False, []))
                    continue
                topics.append(
                    (0, name, False, [(0, i, 0, [0], [0], []) for i in range(len(parts))])
                )
        brokers = [(0, "127.0.0.1", self.port, None)]
        kw: dict[str, Any] = {"brokers": brokers, "controller_id": 0}
        if version >= 2:
            kw["cluster_id"] = self.namespace
        if version >= 3:
            kw["throttle_time_ms"] = 0
        if version < 5:
            topics = [(e, n, i, [p[:5] for p in ps]) for e, n, i, ps in topics]
        kw["topics"] = topics
        return Resp(**kw)

    def _list_offsets(self, Resp: Any, req: Any, version: int) -> Any:
        out = []
        with self.lock:
            for topic, partitions in req.topics:
                parts = self.topics.get(topic, [])
                answers = []
                for p in partitions:
                    idx, ts = p[0], p[1]
                    if idx >= len(parts):
                        answers.append((idx, UNKNOWN_TOPIC_OR_PARTITION, -1, -1))
                        continue
                    start = self.log_start.get((topic, idx), 0)
                    if ts == -2:  # earliest
                        off, when = start, -1
                    elif ts == -1:  # latest
                        off, when = len(parts[idx]), -1
                    else:  # the first record at or after the timestamp; -1 when none
                        log_ = parts[idx]
                        hit = next((i for i in range(start, len(log_)) if log_[i][0] >= ts), None)
                        off, when = (hit, log_[hit][0]) if hit is not None else (-1, -1)
                    answers.append((idx, 0, when, off))
                out.append((topic, answers))
        kw: dict[str, Any] = {"topics": out}
        if version >= 2:
            kw["throttle_time_ms"] = 0
        return Resp(**kw)

    def _fetch(self, Resp: Any, req: Any) -> Any:
        with self.lock:
            self.calls["fetch"] += 1
            responses = []
            for topic, partitions in req.topics:
                parts = self.topics.get(topic, [])
                answers = []
                for p in partitions:
                    idx, offset = p[0], p[1]
                    if idx >= len(parts):
                        answers.append((idx, UNKNOWN_TOPIC_OR_PARTITION, -1, -1, [], b""))
                        continue
                    log = parts[idx]
                    if offset > len(log) or offset < self.log_start.get((topic, idx), 0):
                        answers.append((idx, OFFSET_OUT_OF_RANGE, len(log), len(log), [], b""))
                        continue
                    chunk = log[offset : offset + self.max_fetch_records]
                    answers.append((idx, 0, len(log), len(log), [], _batch(offset, chunk)))
                responses.append((topic, answers))
        return Resp(throttle_time_ms=0, responses=responses)


def _batch(base: int, records: list[tuple[int, bytes]]) -> bytes:
    if not records:
        return b""
    b = DefaultRecordBatchBuilder(
        magic=2,
        compression_type=0,
        is_transactional=False,
        producer_id=-1,
        producer_epoch=-1,
        base_sequence=-1,
        batch_size=1 << 30,
    )
    for i, (ts, value) in enumerate(records):
        b.append(i, timestamp=ts, key=None, value=value, headers=[])
    data = bytearray(b.build())
    struct.pack_into(">q", data, 0, base)  # the base offset is outside the CRC
    return bytes(data)


def _recv(sock: socket.socket, n: int) -> bytes | None:
    buf = b""
    while len(buf) < n:
        try:
            chunk = sock.recv(n - len(buf))
        except OSError:
            return None
        if not chunk:
            return None
        buf += chunk
    return buf


def _send(sock: socket.socket, corr: int, payload: bytes) -> None:
    data = struct.pack(">i", corr) + payload
    sock.sendall(struct.pack(">i", len(data)) + data)
