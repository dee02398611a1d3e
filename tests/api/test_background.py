"""Background services run by `serve`: started with the app, supervised, stopped with it."""

from __future__ import annotations

import threading
import time

from fastapi.testclient import TestClient

from mantissa.api import background
from mantissa.api.app import create_app
from tests.api.conftest import bearer


def test_supervisor_restarts_a_crashed_service(runtime):
    calls: list[float] = []
    done = threading.Event()

    def flaky(rt, stop: threading.Event) -> None:
        calls.append(time.monotonic())
        if len(calls) == 1:
            raise RuntimeError("first run fails")
        done.set()
        stop.wait()

    background.register(flaky, name="test-flaky")
    states: list[tuple[str, bool]] = []
    try:
        sup = background.Supervisor(runtime, on_state=lambda n, up: states.append((n, up)))
        assert sup.start(only=["test-flaky"]) == ["test-flaky"]
        assert done.wait(10), "the service was not restarted"
        sup.stop(timeout=5)
        assert not any(t.is_alive() for t in sup.threads)
    finally:
        background._SERVICES.pop("test-flaky", None)
    assert len(calls) == 2 and calls[1] - calls[0] >= 0.9  # restarted after a backoff
    assert states[:2] == [("test-flaky", True), ("test-flaky", False)]
    assert states[-1] == ("test-flaky", False)


def test_serve_app_runs_the_detection_scheduler(runtime, tokens):
    app = create_app(runtime, background=True)
    with TestClient(app) as client:
        assert "detection-scheduler" in app.state.background_services
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            text = client.get("/metrics", headers=bearer(tokens["viewer"])).text
            if 'mantissa_background_service_up{service="detection-scheduler"} 1.0' in text:
                break
            time.sleep(0.1)
        else:
            raise AssertionError("the detection scheduler is not up")
        threads = [t for t in threading.enumerate() if t.name == "mantissa-detection-scheduler"]
        assert threads
    for t in threads:
        t.join(15)
        assert not t.is_alive(), "the scheduler did not stop with the app"
