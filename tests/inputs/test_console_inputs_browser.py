"""The console's Overview page shows each collector input's health (Debian's headless
Chromium through Playwright): a Pub/Sub input that ran, and one whose config is broken."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from mantissa.api.app import create_app
from mantissa.api.auth import TokenStore
from mantissa.inputs.base import Runner, configured_inputs
from mantissa.runtime import Runtime
from tests.api.conftest import start_server
from tests.conftest import ROOT
from tests.inputs.pubsub_stub import PubSubStub, rsa_key
from tests.inputs.test_pubsub import payloads, write_config

pytestmark = pytest.mark.slow

CHROMIUM = os.environ.get("MANTISSA_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
LAUNCH_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]
TIMEOUT_MS = 90_000

if not Path(CHROMIUM).exists():
    pytest.skip(
        f"no Chromium at {CHROMIUM}: `apt-get install chromium` (scripts/test-deps.sh does)",
        allow_module_level=True,
    )
sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package (dev extra)")


@pytest.fixture
def served(data_dir: Path):
    sa, pub = rsa_key()
    stub = PubSubStub(pub, sa["client_email"])
    try:
        stub.publish(payloads(42))
        write_config(data_dir, stub, sa)
        (data_dir / "mantissa.yaml").write_text(
            (data_dir / "mantissa.yaml").read_text() + "  vpc_broken:\n    type: gcp_vpc_flow\n"
            "    subscription: projects/p/subscriptions/s\n"
        )
        rt = Runtime(data_dir)
        runner = Runner(rt)
        for input_id, (cls, cfg) in configured_inputs(rt).items():
            runner.cycle(input_id, cls, cfg)
    finally:
        stub.close()
    _, viewer = TokenStore(rt.state).create("viewer", name="vera")
    server = start_server(create_app(rt))
    yield server.url, viewer
    server.stop()


def test_overview_shows_per_input_health(served) -> None:
    url, token = served
    expect = sync_api.expect
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        try:
            page = browser.new_context(viewport={"width": 1440, "height": 1100}).new_page()
            page.set_default_timeout(TIMEOUT_MS)
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(url + "/console/login")
            page.fill("#token", token)
            page.click("#login-submit")
            page.wait_for_url(lambda u: "/console/login" not in u)
            page.goto(url + "/console/overview")
            table = page.locator("#inputs-health")
            expect(table).to_be_visible(timeout=TIMEOUT_MS)
            ok = table.locator("tbody tr", has_text="gcp_audit")
            expect(ok).to_have_count(1)
            cells = ok.locator("td")
            expect(cells.nth(0)).to_have_text("gcp")
            expect(cells.nth(2)).to_have_text("ok")
            expect(cells.nth(3)).to_contain_text("messages=42")
            expect(cells.nth(4)).to_contain_text("ago")  # last event time
            expect(cells.nth(6)).to_have_text("42")  # events in the last hour
            expect(cells.nth(7)).to_have_text("0")
            bad = table.locator("tbody tr", has_text="vpc_broken")
            expect(bad.locator("td").nth(2)).to_have_text("error")
            expect(bad.locator("td").nth(7)).to_have_text("1")
            expect(bad.locator("td").nth(9)).to_contain_text("credentials_file")
            (ROOT / "test-artifacts").mkdir(exist_ok=True)
            page.locator("#inputs-card").screenshot(
                path=str(ROOT / "test-artifacts" / "console-inputs.png")
            )
            assert not errors, errors
        finally:
            browser.close()
