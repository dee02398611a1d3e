"""Syslog receiver: UDP (RFC 5426), TCP (RFC 6587) and TLS (RFC 5425).

Messages (RFC 5424 or 3164: the ``syslog`` parser reads both) are buffered and written
to the lake in batches (``flush_events`` or every ``flush_secs``), grouped by the source
their sender maps to (``senders: {"10.1.0.0/16": cef}``, else the listener's ``source``).

Framing on TCP/TLS, per RFC 6587 §3.4: a frame starting with a digit is
octet-counted (``LEN SP MSG``, the only framing RFC 5425 allows on TLS); otherwise
non-transparent framing ends a message at LF (or NUL, which Python's SysLogHandler
and older daemons send). Backpressure: when the buffer is full, TCP readers stop
reading, so the kernel window closes and senders slow down instead of losing data.
UDP cannot push back: datagrams that find the buffer full are counted in
``dropped``, and the kernel's per-socket overflow count (``SO_RXQ_OVFL``) in
``kernel_dropped``; both show in ``mantissa inputs status``.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import ssl
import struct
import threading
import time
from collections import defaultdict
from typing import Any

from mantissa.errors import ConfigError
from mantissa.inputs.base import iso, record_status, utcnow
from mantissa.inputs.receiver import Receiver, SyslogListener

log = logging.getLogger("mantissa.inputs.syslog")

SO_RXQ_OVFL = getattr(socket, "SO_RXQ_OVFL", 40)  # Linux; absent from Python's constants


class Buffer:
    """Messages waiting for the lake, bounded; TCP producers wait, UDP ones drop."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.items: dict[str, list[bytes]] = defaultdict(list)
        self.size = 0
        self.cond = threading.Condition()

    def put(self, source: str, msgs: list[bytes], block: bool, stop: threading.Event) -> int:
        """Add ``msgs``; returns how many were dropped (only when ``block`` is False)."""
        with self.cond:
            if block:
                while self.size + len(msgs) > self.capacity and self.size and not stop.is_set():
                    self.cond.wait(0.5)
            elif self.size + len(msgs) > self.capacity:
                room = max(0, self.capacity - self.size)
                dropped = len(msgs) - room
                msgs = msgs[:room]
                if msgs:
                    self.items[source].extend(msgs)
                    self.size += len(msgs)
                self.cond.notify_all()
                return dropped
            self.items[source].extend(msgs)
            self.size += len(msgs)
            self.cond.notify_all()
            return 0

    def restore(self, source: str, msgs: list[bytes]) -> None:
        """Put messages whose write failed back at the front, past the capacity.

        TCP producers then wait (backpressure) until a later write succeeds; UDP ones
        drop and count, as when the buffer is full.
        """
        with self.cond:
            self.items[source][:0] = msgs
            self.size += len(msgs)
            self.cond.notify_all()

    def take(self) -> dict[str, list[bytes]]:
        with self.cond:
            out, self.items, self.size = dict(self.items), defaultdict(list), 0
            self.cond.notify_all()
            return out


class SyslogServer:
    """One listener (``receivers.syslog.<name>``): sockets, framing, batching, status."""

    def __init__(self, runtime: Any, name: str, cfg: SyslogListener) -> None:
        if cfg.protocol not in ("udp", "tcp", "tls"):
            raise ConfigError(f"receivers.syslog.{name}.protocol: use udp, tcp or tls")
        if cfg.protocol == "tls" and not (cfg.tls_cert and cfg.tls_key):
            raise ConfigError(f"receivers.syslog.{name}: tls needs tls_cert and tls_key")
        self.runtime = runtime
        self.name = name
        self.cfg = cfg
        self.status_key = f"syslog.{name}"
        self.receiver = Receiver(runtime, max_concurrent=2)
        self.buffer = Buffer(cfg.flush_events * 4)
        self.stop = threading.Event()
        self.threads: list[threading.Thread] = []
        self.sock: socket.socket | None = None
        self.received = 0
        self.written = 0
        self.rejected = 0
        self.dropped = 0
        self.kernel_dropped = 0
        self.connections = 0
        self.errors = 0
        self.last_error: str | None = None
        self.failed_writes = 0  # consecutive failed flushes: the retry backs off
        self.lost = 0  # messages still unwritten when the listener closed
        self.lock = threading.Lock()
        self.senders = [
            (ipaddress.ip_network(net, strict=False), src) for net, src in cfg.senders.items()
        ]
        self._sender_cache: dict[str, str] = {}
        self.ssl_context: ssl.SSLContext | None = None
        if cfg.protocol == "tls":
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.minimum_version = ssl.TLSVersion.TLSv1_2
            ctx.load_cert_chain(cfg.tls_cert, cfg.tls_key)  # type: ignore[arg-type]
            self.ssl_context = ctx

    @property
    def address(self) -> tuple[str, int]:
        assert self.sock is not None
        return self.sock.getsockname()[:2]

    def source_for(self, addr: str) -> str:
        src = self._sender_cache.get(addr)
        if src is None:
            src = self.cfg.source
            try:
                ip = ipaddress.ip_address(addr)
                for net, mapped in self.senders:
                    if ip in net:
                        src = mapped
                        break
            except ValueError:
                pass
            self._sender_cache[addr] = src
        return src

    # -- lifecycle ---------------------------------------------------------------------
    def start(self) -> None:
        cfg = self.cfg
        family = socket.AF_INET6 if ":" in cfg.host else socket.AF_INET
        if cfg.protocol == "udp":
            sock = socket.socket(family, socket.SOCK_DGRAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 * 1024 * 1024)
            try:
                sock.setsockopt(socket.SOL_SOCKET, SO_RXQ_OVFL, 1)
            except OSError:  # not Linux: no kernel drop counter
                pass
            sock.bind((cfg.host, cfg.port))
            target = self._udp_loop
        else:
            sock = socket.socket(family, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((cfg.host, cfg.port))
            sock.listen(128)
            target = self._accept_loop
        sock.settimeout(0.5)
        self.sock = sock
        for fn, label in ((target, "recv"), (self._flush_loop, "flush")):
            t = threading.Thread(target=fn, name=f"syslog-{self.name}-{label}", daemon=True)
            t.start()
            self.threads.append(t)
        log.info("syslog %s listening on %s/%s", self.name, cfg.protocol, self.address)

    def close(self) -> None:
        """Stop accepting, write what is buffered, close."""
        self.stop.set()
        for t in list(self.threads):
            t.join(timeout=30)
        self.flush()
        if self.buffer.size:  # the lake still refuses: say how many are lost, loudly
            self.lost = self.buffer.size
            self._error(f"{self.lost} messages could not be written before the listener closed")
        if self.sock is not None:
            self.sock.close()
        self._record()

    # -- UDP ---------------------------------------------------------------------------
    def _udp_loop(self) -> None:
        assert self.sock is not None
        sock = self.sock
        cmsg_space = socket.CMSG_SPACE(4)
        max_bytes = self.cfg.max_message_bytes
        while not self.stop.is_set():
            try:
                data, anc, _flags, addr = sock.recvmsg(max_bytes, cmsg_space)
            except TimeoutError:
                continue
            except OSError:
                if self.stop.is_set():
                    return
                raise
            for level, kind, value in anc:
                if level == socket.SOL_SOCKET and kind == SO_RXQ_OVFL and len(value) >= 4:
                    # cumulative count of datagrams the kernel dropped on this socket
                    self.kernel_dropped = struct.unpack("I", value[:4])[0]
            msg = data.rstrip(b"\x00\r\n")
            if not msg:
                continue
            self.received += 1
            lost = self.buffer.put(
                self.source_for(addr[0]), [msg.replace(b"\n", b" ")], False, self.stop
            )
            if lost:
                self.dropped += lost

    # -- TCP / TLS ---------------------------------------------------------------------
    def _accept_loop(self) -> None:
        assert self.sock is not None
        while not self.stop.is_set():
            try:
                conn, addr = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                if self.stop.is_set():
                    return
                raise
            t = threading.Thread(target=self._conn, args=(conn, addr), daemon=True)
            t.start()

    def _conn(self, conn: socket.socket, addr: Any) -> None:
        self.connections += 1
        source = self.source_for(addr[0])
        try:
            if self.ssl_context is not None:
                conn.settimeout(10)
                try:
                    conn = self.ssl_context.wrap_socket(conn, server_side=True)
                except (ssl.SSLError, OSError) as exc:
                    self._error(f"TLS handshake with {addr[0]} failed: {exc}")
                    return
            conn.settimeout(0.5)
            self._read_stream(conn, source)
        finally:
            try:
                conn.close()
            except OSError:
                pass

    def _read_stream(self, conn: socket.socket, source: str) -> None:
        buf = b""
        max_bytes = self.cfg.max_message_bytes
        while not self.stop.is_set():
            try:
                chunk = conn.recv(256 * 1024)
            except TimeoutError:
                continue
            except (OSError, ssl.SSLError):
                break
            if not chunk:
                break
            buf += chunk
            msgs, buf = self._frames(buf, max_bytes)
            if msgs:
                self.received += len(msgs)
                # blocks while the buffer is full: TCP backpressure, never silent loss
                self.buffer.put(source, msgs, True, self.stop)
        rest = buf.strip(b"\x00\r\n ")
        if rest:
            self.received += 1
            self.buffer.put(source, [rest], True, self.stop)

    def _frames(self, buf: bytes, max_bytes: int) -> tuple[list[bytes], bytes]:
        """Split ``buf`` into complete messages (RFC 6587); returns (messages, remainder)."""
        out: list[bytes] = []
        pos = 0
        n = len(buf)
        while pos < n:
            c = buf[pos]
            if c in b"\r\n\x00 ":
                pos += 1
                continue
            if 48 <= c <= 57:  # digit: octet-counting "LEN SP MSG"
                sp = buf.find(b" ", pos, pos + 12)
                if sp > pos and buf[pos:sp].isdigit():
                    length = int(buf[pos:sp])
                    if length > max_bytes:
                        self._error(f"octet count {length} over max_message_bytes; resyncing")
                        nl = buf.find(b"\n", sp)
                        if nl < 0:
                            return out, b""
                        pos = nl + 1
                        continue
                    end = sp + 1 + length
                    if end > n:
                        break
                    out.append(buf[sp + 1 : end].replace(b"\n", b" "))
                    pos = end
                    continue
                if sp < 0 and n - pos < 12:
                    break  # the count itself is incomplete
            # non-transparent framing: up to LF or NUL (fast path over the rest)
            if pos == 0 and buf.find(b"\x00") < 0:
                lines = buf.split(b"\n")
                rest = lines.pop()
                if any(ln[:1].isdigit() for ln in lines):
                    # mixed framing in one chunk: fall back to the slow path
                    pass
                else:
                    out.extend(ln.rstrip(b"\r") for ln in lines if ln.strip())
                    if len(rest) > max_bytes:
                        out.append(rest[:max_bytes])
                        rest = b""
                    return out, rest
            nl = buf.find(b"\n", pos)
            nul = buf.find(b"\x00", pos)
            ends = [e for e in (nl, nul) if e >= 0]
            if not ends:
                if n - pos > max_bytes:
                    out.append(buf[pos : pos + max_bytes])
                    return out, b""
                break
            end = min(ends)
            msg = buf[pos:end].rstrip(b"\r")
            if msg:
                out.append(msg)
            pos = end + 1
        return out, buf[pos:]

    # -- writing -----------------------------------------------------------------------
    def _flush_loop(self) -> None:
        last = time.monotonic()
        last_status = 0.0
        while not self.stop.is_set():
            with self.buffer.cond:
                self.buffer.cond.wait(0.1)
                due = self.buffer.size >= self.cfg.flush_events or (
                    self.buffer.size and time.monotonic() - last >= self.cfg.flush_secs
                )
            if due and self.failed_writes:
                # the lake refused the last write: retry with backoff, keep the messages
                due = time.monotonic() - last >= min(30.0, 0.5 * 2**self.failed_writes)
            if due:
                self.flush()
                last = time.monotonic()
            if time.monotonic() - last_status > 5:
                self._record()
                last_status = time.monotonic()

    def flush(self) -> int:
        """Write everything buffered to the lake now; returns events written.

        A failed write keeps its messages in the buffer for the next flush (TCP senders
        wait meanwhile); nothing is dropped because the lake was briefly unavailable.
        """
        written = 0
        for source, msgs in self.buffer.take().items():
            if not msgs:
                continue
            try:
                s = self.receiver.ingest(source, b"\n".join(msgs), f"syslog-{self.name}", wait=True)
            except Exception as exc:  # keep listening; the error shows in status
                log.exception("syslog %s: writing %d messages failed", self.name, len(msgs))
                self.failed_writes += 1
                self.buffer.restore(source, msgs)
                self._error(f"writing {len(msgs)} messages failed (kept, will retry): {exc}")
                continue
            self.failed_writes = 0
            written += s.events
            with self.lock:
                self.written += s.events
                self.rejected += s.rejected
            record_status(self.runtime.state, self.status_key, events=s.events)
        return written

    def _error(self, message: str) -> None:
        self.errors += 1
        self.last_error = message
        try:
            record_status(
                self.runtime.state,
                self.status_key,
                errors=1,
                last_error={"at": iso(utcnow()), "code": "syslog_error", "message": message},
            )
        except Exception:
            log.exception("syslog %s: cannot record status", self.name)

    def stats(self) -> dict[str, Any]:
        return {
            "received": self.received,
            "written": self.written,
            "rejected": self.rejected,
            "dropped": self.dropped,
            "kernel_dropped": self.kernel_dropped,
            "connections": self.connections,
            "errors": self.errors,
            "pending": self.buffer.size,
            "lost": self.lost,
        }

    def _record(self) -> None:
        record_status(
            self.runtime.state,
            self.status_key,
            type="syslog",
            source=self.cfg.source,
            state="ok" if not self.stop.is_set() else "stopped",
            last_cursor={"listen": f"{self.cfg.protocol}://{self.cfg.host}:{self.cfg.port}"},
            last_run=iso(utcnow()),
            counters=self.stats(),
        )
