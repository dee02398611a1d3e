"""Fixtures for the SOAR tests: state stores on SQLite and PostgreSQL, runtimes with
connections pointing at stub vendors on 127.0.0.1."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.alerts.conftest import state_url  # noqa: F401 - re-exported fixture
from tests.alerts.stubs import StubServer
from tests.soar.stubs import OKTA_TOKEN, OktaStub


@pytest.fixture
def make_runtime(tmp_path: Path) -> Iterator[Callable[..., Any]]:
    from mantissa.runtime import Runtime

    made: list[Any] = []

    def make(config: dict[str, Any] | None = None, state_url: str | None = None) -> Runtime:  # noqa: F811
        d = tmp_path / f"data{len(made)}"
        d.mkdir(parents=True, exist_ok=True)
        cfg = dict(config or {})
        cfg.setdefault("alerts", {}).setdefault("enrichment", {}).setdefault(
            "user_context", {"enabled": False}
        )
        if state_url:
            cfg.setdefault("state", {})["url"] = state_url
        (d / "mantissa.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
        rt = Runtime(d)
        made.append(rt)
        return rt

    yield make
    for rt in made:
        if "state" in rt.__dict__:
            rt.state.close()


@pytest.fixture
def okta(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[OktaStub, StubServer]]:
    monkeypatch.setenv("OKTA_TOKEN", OKTA_TOKEN)
    handler = OktaStub()
    server = StubServer(handler)
    yield handler, server
    server.close()


@pytest.fixture
def okta_runtime(
    make_runtime: Callable[..., Any],
    okta: tuple[OktaStub, StubServer],
    state_url: str,  # noqa: F811
) -> Any:
    _, server = okta
    return make_runtime(
        {
            "connections": {
                "okta_main": {"type": "okta", "base_url": server.url, "token": "${env:OKTA_TOKEN}"}
            }
        },
        state_url,
    )


def playbook(steps: list[dict[str, Any]], **kw: Any) -> str:
    doc = {
        "name": kw.pop("name", "Test playbook"),
        "version": "1.0.0",
        "status": "active",
        "trigger": {"type": "manual"},
        "steps": steps,
        **kw,
    }
    return yaml.safe_dump(doc, sort_keys=False)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    """A moto server (AWS stand-in) on 127.0.0.1 for the module."""
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()
