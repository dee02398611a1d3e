"""The APM console page in headless Chromium (Playwright): the service map graph, a
service's RED and latency chart, span search and the waterfall of a failing trace.
Skips (saying why) only when no Chromium binary is installed."""

from __future__ import annotations

import datetime as dt
import os
import shutil
from pathlib import Path

import pytest

from mantissa.api.app import create_app
from mantissa.api.auth import TokenStore
from mantissa.apm import demo as apm_demo
from mantissa.runtime import Runtime
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
    _, viewer = TokenStore(rt.state).create("viewer", name="sre")
    server = start_server(create_app(rt))
    yield {"url": server.url, "token": viewer}
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
        browser.close()
        assert not problems, problems
