"""The collector loop: isolation between inputs, serve registration, config errors."""

from __future__ import annotations

import datetime as dt
import threading
import time
from pathlib import Path

import pytest

from mantissa.errors import ConfigError
from mantissa.inputs.base import STATUS_NS, Runner, configured_inputs, parse_duration, statuses
from mantissa.runtime import Runtime
from tests.inputs.stubs import OktaStub


def test_one_failing_input_never_stops_the_others(data_dir: Path, monkeypatch) -> None:
    monkeypatch.setenv("OKTA_TOKEN", "00okta-test-token")
    good = OktaStub()
    try:
        ids = good.add_events(
            30, dt.datetime.now(dt.UTC) - dt.timedelta(hours=1), dt.timedelta(minutes=1)
        )
        (data_dir / "mantissa.yaml").write_text(
            "inputs:\n"
            f"  good: {{type: okta, domain: a.okta.com, token: '${{env:OKTA_TOKEN}}', base_url: '{good.url}', interval: 1s}}\n"
            "  down: {type: okta, domain: b.okta.com, token: x, base_url: 'http://127.0.0.1:9', interval: 1s,"
            " max_retries: 0, timeout: 1s}\n"
            f"  refused: {{type: okta, domain: c.okta.com, token: bad, base_url: '{good.url}', interval: 1s}}\n"
        )
        rt = Runtime(data_dir)
        stop = threading.Event()
        t = threading.Thread(target=Runner(rt).run_forever, args=(stop,))
        t.start()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            docs = rt.state.items(STATUS_NS)
            if (
                docs.get("good", {}).get("state") == "ok"
                and docs.get("down", {}).get("state") == "error"
                and docs.get("refused", {}).get("state") == "auth_failed"
            ):
                break
            time.sleep(0.2)
        ids_new = good.add_events(
            5, dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5), dt.timedelta(seconds=1)
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            st = {s["id"]: s for s in statuses(rt)}
            if st["good"]["events_total"] >= len(ids) + len(ids_new):
                break
            time.sleep(0.2)
        stop.set()
        t.join(30)
        st = {s["id"]: s for s in statuses(rt)}
        assert st["good"]["events_total"] == 35 and st["good"]["state"] == "ok"
        assert st["good"]["lag_secs"] is not None and st["good"]["next_run"]
        assert (
            st["down"]["state"] == "error" and "ConnectError" in st["down"]["last_error"]["message"]
        )
        assert st["refused"]["state"] == "auth_failed"
    finally:
        good.close()


def test_serve_runs_the_collector_and_syslog() -> None:
    import mantissa.api.routes.ingest  # noqa: F401  (what create_app imports)
    from mantissa.api.background import services

    names = {s.name for s in services()}
    assert {"inputs", "syslog"} <= names


def test_config_errors_are_clear(data_dir: Path) -> None:
    (data_dir / "mantissa.yaml").write_text("inputs:\n  x:\n    type: nosuch\n")
    with pytest.raises(ConfigError, match="unknown input type 'nosuch'"):
        configured_inputs(Runtime(data_dir))
    (data_dir / "mantissa.yaml").write_text("inputs:\n  x:\n    type: okta\n    intervall: 5m\n")
    with pytest.raises(ConfigError, match=r"mantissa.yaml:4: inputs.x.intervall"):
        configured_inputs(Runtime(data_dir))
    assert parse_duration("90s") == 90 and parse_duration("7d") == 7 * 86400
    with pytest.raises(ValueError):
        parse_duration("soon")
