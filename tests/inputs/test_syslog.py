"""Syslog receiver with real sockets: SysLogHandler over UDP and TCP, RFC 6587
octet-counting, per-sender mapping, TLS, backpressure and the UDP loss counter."""

from __future__ import annotations

import logging
import logging.handlers
import socket
import ssl
import subprocess
import time
from pathlib import Path

import duckdb
import pytest

from mantissa.inputs.base import statuses
from mantissa.inputs.receiver import SyslogListener
from mantissa.inputs.syslog import SyslogServer
from mantissa.runtime import Runtime


def rows(data_dir: Path, source: str = "syslog") -> list[tuple]:
    files = [str(f) for f in (data_dir / "lake").rglob("*.parquet") if f"logs/{source}/" in str(f)]
    if not files:
        return []
    return (
        duckdb.connect()
        .execute("SELECT message, host, raw FROM read_parquet(?, union_by_name=true)", [files])
        .fetchall()
    )


def wait_for(pred, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def server(data_dir: Path, **kw) -> SyslogServer:
    rt = Runtime(data_dir)
    cfg = SyslogListener(port=0, flush_secs=0.2, **kw)
    s = SyslogServer(rt, "test", cfg)
    s.start()
    return s


def logger_for(handler: logging.Handler, name: str) -> logging.Logger:
    lg = logging.getLogger(name)
    lg.handlers = [handler]
    lg.propagate = False
    lg.setLevel(logging.INFO)
    return lg


def test_udp_with_syslog_handler(data_dir: Path) -> None:
    s = server(data_dir, protocol="udp")
    try:
        h = logging.handlers.SysLogHandler(address=s.address, socktype=socket.SOCK_DGRAM)
        h.setFormatter(logging.Formatter("sshd[42]: %(message)s"))
        lg = logger_for(h, "t.udp")
        for i in range(200):
            lg.info("Failed password for root from 203.0.113.%d port 22 ssh2 seq=%d", i % 250, i)
        h.close()
        wait_for(lambda: s.written >= 200 or s.dropped + s.kernel_dropped + s.written >= 200)
    finally:
        s.close()
    got = rows(data_dir)
    assert len(got) + s.dropped + s.kernel_dropped == 200
    assert len(got) == 200  # loopback at this rate: no loss
    assert any("Failed password for root" in r[0] for r in got)
    st = {x["id"]: x for x in statuses(Runtime(data_dir))}["syslog.test"]
    assert st["counters"]["received"] == 200 and st["counters"]["dropped"] == 0


def test_tcp_syslog_handler_newline_and_nul_framing(data_dir: Path) -> None:
    s = server(data_dir, protocol="tcp")
    try:
        h = logging.handlers.SysLogHandler(address=s.address, socktype=socket.SOCK_STREAM)
        h.setFormatter(logging.Formatter("app[7]: %(message)s"))
        lg = logger_for(h, "t.tcp")
        for i in range(300):
            lg.warning("disk usage %d%% on /var seq=%d", 80 + i % 20, i)  # NUL-terminated frames
        h.close()
        with socket.create_connection(s.address) as c:  # LF framing, RFC 5424
            c.sendall(
                b"".join(
                    f"<34>1 2026-11-29T06:00:{i % 60:02d}.000Z web-{i} su - ID47 - 'su root' failed seq={i}\n".encode()
                    for i in range(100)
                )
            )
        wait_for(lambda: s.written >= 400)
    finally:
        s.close()
    got = rows(data_dir)
    assert len(got) == 400
    assert {r[1] for r in got if r[1] and r[1].startswith("web-")} == {
        f"web-{i}" for i in range(100)
    }


def test_octet_counting_and_sender_mapping(data_dir: Path) -> None:
    s = server(data_dir, protocol="tcp", senders={"127.0.0.0/8": "cef"})
    msgs = [
        f"<134>Nov 29 06:00:00 fw CEF:0|Vendor|FW|1.0|100|Blocked\nmulti-line|5|src=10.0.0.{i} dst=10.0.1.1 act=blocked".encode()
        for i in range(50)
    ]
    try:
        with socket.create_connection(s.address) as c:
            data = b"".join(str(len(m)).encode() + b" " + m for m in msgs)
            for k in range(0, len(data), 97):  # frames split across segments
                c.sendall(data[k : k + 97])
        wait_for(lambda: s.written >= 50)
    finally:
        s.close()
    assert rows(data_dir, "syslog") == []
    assert len(rows(data_dir, "cef")) == 50


def _self_signed(tmp: Path) -> tuple[str, str]:
    cert, key = tmp / "c.pem", tmp / "k.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return str(cert), str(key)


def test_tls_and_failed_handshake(data_dir: Path, tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)
    s = server(data_dir, protocol="tls", tls_cert=cert, tls_key=key)
    try:
        ctx = ssl.create_default_context(cafile=cert)
        ctx.check_hostname = False
        with socket.create_connection(s.address) as raw, ctx.wrap_socket(raw) as c:
            for i in range(20):
                m = f"<13>1 2026-11-29T06:00:00Z h app - - - over tls {i}".encode()
                c.sendall(str(len(m)).encode() + b" " + m)
        with socket.create_connection(s.address) as c:  # plaintext to a TLS port
            c.sendall(b"<13>not tls\n")
            time.sleep(0.3)
        wait_for(lambda: s.written >= 20 and s.errors >= 1, timeout=90)
    finally:
        s.close()
    assert len(rows(data_dir)) == 20
    assert "TLS handshake" in (s.last_error or "")


@pytest.mark.slow
def test_tcp_backpressure_loses_nothing(data_dir: Path) -> None:
    s = server(data_dir, protocol="tcp", flush_events=500)
    n = 20000
    try:
        with socket.create_connection(s.address) as c:
            payload = b"".join(
                f"<14>Nov 29 06:00:00 host app: flood message {i}\n".encode() for i in range(n)
            )
            c.sendall(payload)
        wait_for(lambda: s.written >= n, timeout=120)
    finally:
        s.close()
    assert s.buffer.capacity == 2000  # the buffer is far smaller than the flood
    assert len(rows(data_dir)) == n and s.dropped == 0


def test_tcp_messages_survive_a_failing_lake_write(data_dir: Path) -> None:
    s = server(data_dir, protocol="tcp", flush_events=100)
    real = s.receiver.ingest
    failures = {"left": 3}

    def flaky(*args, **kwargs):
        if failures["left"]:
            failures["left"] -= 1
            raise OSError("disk full")
        return real(*args, **kwargs)

    s.receiver.ingest = flaky  # type: ignore[method-assign]
    n = 300
    try:
        with socket.create_connection(s.address) as c:
            c.sendall(
                b"".join(f"<14>Nov 29 06:00:00 host app: kept {i}\n".encode() for i in range(n))
            )
        wait_for(lambda: s.written >= n, timeout=60)
    finally:
        s.close()
    assert failures["left"] == 0 and s.errors >= 3
    assert "kept, will retry" in (s.last_error or "")
    got = sorted(r[0] for r in rows(data_dir))
    assert len(got) == n and len(set(got)) == n  # every message once, none lost
    assert s.stats()["lost"] == 0 and s.stats()["pending"] == 0
