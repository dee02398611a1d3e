"""The APM console page in headless Chromium (Playwright): the service map graph, a
service's RED and latency chart, span search and the waterfall of a failing trace.
Skips (saying why) only when no Chromium binary is installed."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
from pathlib import Path

import pytest

from mantissa.api.app import create_app
from mantissa.api.auth import TokenStore
from mantissa.apm import demo as apm_demo
from mantissa.lake.ingest import IngestSummary, Pipeline
from mantissa.runtime import Runtime
from mantissa.sources.base import get_source
from tests.api.conftest import start_server
from tests.conftest import ROOT

pytestmark = pytest.mark.slow

CHROMIUM = os.environ.get("MANTISSA_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
if not Path(CHROMIUM).exists():
    pytest.skip(f"no Chromium at {CHROMIUM}: `apt-get install chromium`", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package (dev extra)")
TIMEOUT_MS = 90_000
sync_api.expect.set_options(timeout=TIMEOUT_MS)


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    rt = Runtime(tmp_path_factory.mktemp("apm-console"))
    apm_demo.load(rt, dt.datetime.now(dt.UTC))
    # log lines of one failing trace (json_lines with a W3C traceparent: logs join traces)
    tid, start = rt.engine.execute(
        "SELECT trace_id, min(start_time) FROM traces WHERE service_name = 'payment' "
        "AND status_code = 'ERROR' GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 1"
    ).rows[0]
    lines = [
        {
            "timestamp": start.isoformat(),
            "level": "error",
            "message": f"charge failed: processor timeout (attempt {i})",
            "traceparent": f"00-{tid}-00f067aa0ba902b7-01",
            "host": "payment-7d9f",
        }
        for i in (1, 2)
    ]
    pipeline = Pipeline(rt.storage, get_source("json_lines", {}), rt.config.ingest)
    summary = IngestSummary("json_lines")
    pipeline.ingest_bytes(
        b"".join(json.dumps(x).encode() + b"\n" for x in lines), "payment.log", summary
    )
    assert summary.rejected == 0 and summary.events == 2, summary
    _, viewer = TokenStore(rt.state).create("viewer", name="sre")
    server = start_server(create_app(rt))
    yield {"url": server.url, "token": viewer, "trace_id": tid}
    server.stop()


def test_service_map_red_search_and_waterfall(shop):
    expect = sync_api.expect
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM, args=["--headless", "--no-sandbox", "--disable-gpu"]
        )
        page = browser.new_page(viewport={"width": 1440, "height": 1000})
        page.set_default_timeout(TIMEOUT_MS)
        problems: list[str] = []
        page.on("pageerror", lambda e: problems.append(str(e)))
        page.on(
            "console",
            lambda m: problems.append(m.text) if m.type == "error" else None,
        )
        page.goto(shop["url"] + "/console/apm")
        page.fill("#token", shop["token"])
        page.click("#login-submit")
        page.wait_for_url("**/console/apm**")

        # the map: one node per service plus virtual nodes, edges with calls and p99
        expect(page.locator('#apm-map [data-node="payment"]')).to_be_visible()
        expect(page.locator('#apm-map [data-node="stripe"] rect')).to_have_count(1)
        assert page.locator("#apm-map .edge").count() >= 9
        # payment's error rate colours it red
        assert (
            page.locator('#apm-map [data-node="payment"] circle').get_attribute("fill") == "#dc2626"
        )
        art = ROOT / "test-artifacts"
        art.mkdir(exist_ok=True)
        page.screenshot(path=str(art / "apm-service-map.png"))

        # a node opens its RED, latency chart with exemplars, slowest and failed traces
        page.locator('#apm-map [data-node="payment"]').click()
        panel = page.locator("#apm-service")
        expect(panel.locator("h2")).to_contain_text("payment")
        expect(panel.locator(".apm-latency")).to_be_visible()
        assert panel.locator(".exemplar").count() > 0
        assert panel.locator("tr.error").count() > 0

        # an exemplar dot of the latency chart opens the waterfall of its trace
        ex = panel.locator("a.exemplar").first
        href = ex.get_attribute("href")
        assert href and href.startswith("/console/apm/trace/")
        ex.click()
        page.wait_for_url("**" + href)
        expect(page.locator("#waterfall .wf-row").first).to_be_visible()
        expect(page.locator("h1")).to_contain_text(href.rsplit("/", 1)[-1])
        page.go_back()
        page.wait_for_url("**/console/apm")
        expect(page.locator('#apm-map [data-node="payment"]')).to_be_visible()
        page.locator('#apm-map [data-node="payment"]').click()
        expect(panel.locator(".apm-latency")).to_be_visible()

        # span search
        page.fill("#apm-q-service", "inventory")
        page.fill("#apm-q-min", "500ms")
        page.click("#apm-search button[type=submit]")
        expect(page.locator("#apm-results tbody tr").first).to_be_visible()

        # an exemplar opens the waterfall of its trace
        panel.locator("tr.error a").first.click()
        page.wait_for_url("**/console/apm/trace/*")
        wf = page.locator("#waterfall")
        expect(wf.locator(".wf-row").first).to_be_visible()
        assert wf.locator(".wf-row.error").count() >= 1
        expect(wf).to_contain_text("CardProcessorTimeout")
        page.screenshot(path=str(art / "apm-waterfall.png"))

        # the waterfall lists the log lines of its trace
        page.goto(shop["url"] + f"/console/apm/trace/{shop['trace_id']}")
        logs = page.locator("#trace-logs")
        expect(logs.locator("h2")).to_contain_text("Log lines of this trace (2)")
        expect(logs).to_contain_text("charge failed: processor timeout (attempt 2)")

        # an alert's service entity opens that service's traces
        page.goto(shop["url"] + "/console/apm?service=payment")
        expect(page.locator("#apm-service h2")).to_contain_text("payment")
        expect(page.locator("#apm-results tbody tr").first).to_be_visible()
        browser.close()
        assert not problems, problems
