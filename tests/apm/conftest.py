"""APM fixtures: a real ``mantissa serve`` subprocess on an ephemeral port, tokens made
with ``mantissa tokens create``, and helpers to wait until spans are queryable."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

CONFIG = """\
apm:
  flush_secs: 0.5
  decode_workers: 1
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def mantissa(data_dir: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mantissa.cli.main", "--data-dir", str(data_dir), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "NO_COLOR": "1", "COLUMNS": "200"},
    )


def mantissa_json(data_dir: Path, *args: str) -> Any:
    r = mantissa(data_dir, *args, "--format", "json")
    assert r.returncode == 0, r.stderr + r.stdout
    return json.loads(r.stdout)


@dataclass
class Serve:
    data_dir: Path
    url: str
    proc: subprocess.Popen[bytes]
    port: int

    def kill9(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def start_serve(data_dir: Path, background: bool = False, port: int | None = None) -> Serve:
    """``mantissa serve`` in a subprocess; returns once it answers /health."""
    port = port or free_port()
    (data_dir / "mantissa.yaml").write_text(CONFIG)
    log = open(data_dir / f"serve-{port}.log", "ab")  # noqa: SIM115
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mantissa.cli.main",
            "--data-dir",
            str(data_dir),
            "serve",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--background" if background else "--no-background",
        ],
        stdout=log,
        stderr=log,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(
                "mantissa serve exited: " + (data_dir / f"serve-{port}.log").read_text()[-2000:]
            )
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                return Serve(data_dir, url, proc, port)
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError("mantissa serve did not start")


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    d = tmp_path / "data"
    d.mkdir()
    (d / "mantissa.yaml").write_text(CONFIG)
    return d


@pytest.fixture
def serve(data_dir: Path) -> Iterator[Serve]:
    s = start_serve(data_dir)
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture
def tokens(data_dir: Path) -> dict[str, str]:
    out = {}
    for role in ("ingest", "viewer"):
        t = mantissa_json(data_dir, "tokens", "create", "--role", role)
        assert set(t) >= {"id", "role", "token"} and t["role"] == role
        out[role] = t["token"]
    return out


def wait_for(fn: Callable[[], Any], timeout: float = 30.0, every: float = 0.3) -> Any:
    """Poll ``fn`` until it returns something truthy (or fail with its last value)."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(every)
    raise AssertionError(f"condition not met within {timeout}s; last value {last!r}")


def span_count(data_dir: Path, where: str = "true") -> int:
    out = mantissa_json(data_dir, "query", "--sql", f"SELECT count(*) FROM traces WHERE {where}")
    return int(out["rows"][0][0])
