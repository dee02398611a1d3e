"""The demo step: routes stored alerts to the local file and signed webhook; copes with none."""

from __future__ import annotations

import io
import json
from pathlib import Path

from rich.console import Console

from mantissa.alerts.demo import alerts_step
from mantissa.alerts.service import AlertService
from mantissa.demo import DemoContext, steps
from mantissa.demo.scenario import Scenario
from tests.alerts.conftest import candidate


def _ctx(rt) -> tuple[DemoContext, io.StringIO]:
    buf = io.StringIO()
    return DemoContext(
        runtime=rt, scenario=Scenario(), console=Console(file=buf, width=200), results={}
    ), buf


def test_demo_step_is_registered_after_detection() -> None:
    s = {x.name: x.order for x in steps()}
    assert s["Alerts: routing and delivery"] == 50


def test_demo_step_without_alerts(make_runtime) -> None:
    ctx, buf = _ctx(make_runtime({}))
    alerts_step(ctx)
    assert "No alerts yet" in buf.getvalue()
    assert ctx.results["alerts"] == {"alerts": 0, "deliveries": 0}


def test_demo_step_routes_and_shows_deliveries(make_runtime) -> None:
    rt = make_runtime({})
    AlertService(rt).raise_alerts(
        [
            candidate(entities={"user": "alice@example.com", "ip": "185.220.101.7"}),
            candidate(dedup_key="low", severity="low", rule_title="Low one"),
        ]
    )
    ctx, buf = _ctx(rt)
    alerts_step(ctx)
    res = ctx.results["alerts"]
    assert res["alerts"] == 2 and res["deliveries"] == 3 and res["webhook_verified"] == 1
    lines = [json.loads(x) for x in Path(res["file"]).read_text().splitlines()]
    assert {x["alert"]["rule_title"] for x in lines} == {
        "AWS root account console login",
        "Low one",
    }
    assert "alice@example.com" in json.dumps(lines)  # internal: not redacted
    out = buf.getvalue()
    assert "1 signed requests verified" in out and "[EMAIL-" in out  # the webhook saw a pseudonym
    # running the demo again does not deliver twice
    ctx2, _ = _ctx(rt)
    alerts_step(ctx2)
    assert ctx2.results["alerts"]["deliveries"] == 0
