"""API fixtures: a runtime on a fresh data dir, a token per role, an in-process client,
and a real uvicorn server on an ephemeral 127.0.0.1 port."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from mantissa.api.app import create_app
from mantissa.api.auth import Role, TokenStore
from mantissa.runtime import Runtime

ROLES = [r.value for r in Role]


@pytest.fixture
def runtime(data_dir: Path) -> Runtime:
    return Runtime(data_dir)


@pytest.fixture
def tokens(runtime: Runtime) -> dict[str, str]:
    """One fresh token secret per role."""
    store = TokenStore(runtime.state)
    return {role: store.create(role, name=f"test-{role}")[1] for role in ROLES}


@pytest.fixture
def app(runtime: Runtime):
    return create_app(runtime)


@pytest.fixture
def client(app) -> Iterator[TestClient]:
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@dataclass
class LiveServer:
    url: str
    server: object
    thread: threading.Thread

    def stop(self) -> None:
        self.server.should_exit = True  # type: ignore[attr-defined]
        self.thread.join(15)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(app, port: int | None = None) -> LiveServer:
    """Run ``app`` under uvicorn in a thread on 127.0.0.1 and wait until it answers."""
    import uvicorn

    port = port or free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/health", timeout=1).status_code in (200, 503):
                return LiveServer(url, server, thread)
        except httpx.TransportError:
            time.sleep(0.05)
    server.should_exit = True
    raise RuntimeError("the API server did not start")


@pytest.fixture
def live(app) -> Iterator[LiveServer]:
    srv = start_server(app)
    yield srv
    srv.stop()
