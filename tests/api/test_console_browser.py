"""The console driven like an analyst would, in Debian's headless Chromium (Playwright):
sign in, see the demo's alerts, open one, acknowledge it, ask a question, export CSV.

Screenshots go to ``test-artifacts/``; with ``MANTISSA_UPDATE_SCREENSHOT=1`` the alerts list
is copied to ``docs/console.png`` for the README. Skips (saying why) only when no Chromium binary is installed.
"""

from __future__ import annotations

import csv
import io
import os
import shutil
from pathlib import Path

import pytest

from mantissa.api.app import create_app
from mantissa.api.auth import TokenStore
from mantissa.runtime import Runtime
from tests.api.conftest import start_server
from tests.conftest import ROOT

pytestmark = pytest.mark.slow

CHROMIUM = os.environ.get("MANTISSA_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
ARTIFACTS = ROOT / "test-artifacts"
TIMEOUT_MS = 90_000  # the first query of a fresh server derives every table's schema

if not Path(CHROMIUM).exists():
    pytest.skip(
        f"no Chromium at {CHROMIUM}: `apt-get install chromium` (scripts/test-deps.sh does)",
        allow_module_level=True,
    )
sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package (dev extra)")
sync_api.expect.set_options(timeout=TIMEOUT_MS)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """A data dir after `mantissa demo`, with the demo's alerts, served on 127.0.0.1."""
    from mantissa.alerts.store import AlertStore
    from mantissa.cli.main import run

    data = tmp_path_factory.mktemp("console-demo")
    assert run(["--data-dir", str(data), "demo", "--days", "1"]) == 0
    runtime = Runtime(data)
    store = AlertStore(runtime.state)
    if store.list(limit=1)[1] == 0:
        # a build whose demo does not run detections yet: run them as a user would
        # (`mantissa detect run --since 2d`)
        from mantissa.detect.engine import DetectionEngine

        DetectionEngine(runtime).run(since="2d")
    alerts, total = store.list(limit=1000)
    assert total > 0, "the demo produced no alerts"
    runtime.engine.execute("SELECT count(*) FROM events")  # warm the catalog up
    tokens = TokenStore(runtime.state)
    _, analyst = tokens.create("analyst", name="ana")
    server = start_server(create_app(runtime))
    yield {"url": server.url, "token": analyst, "alerts": alerts, "runtime": runtime}
    server.stop()


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    ctx = browser.new_context(viewport={"width": 1440, "height": 900}, accept_downloads=True)
    pg = ctx.new_page()
    pg.set_default_timeout(TIMEOUT_MS)
    problems: list[str] = []
    pg.on("pageerror", lambda e: problems.append(f"page error: {e}"))

    def on_console(msg) -> None:
        # the browser logs every non-2xx fetch; the 401 of a wrong token is expected
        if msg.type == "error" and "status of 401" not in msg.text:
            problems.append(f"console {msg.type}: {msg.text}")

    pg.on("console", on_console)
    pg.problems = problems  # type: ignore[attr-defined]
    yield pg
    ctx.close()


def shot(page, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    page.screenshot(path=str(path))
    return path


def sign_in(page, demo) -> None:
    page.goto(demo["url"] + "/console/alerts")
    assert "/console/login" in page.url  # not signed in: sent to the sign-in page
    page.fill("#token", "mnt_wrong")
    page.click("#login-submit")
    sync_api.expect(page.locator("#login-error")).to_contain_text("invalid API token")
    page.fill("#token", demo["token"])
    page.click("#login-submit")
    # (a glob would also match the sign-in page's own ?next=/console/alerts)
    page.wait_for_url(lambda url: "/console/alerts" in url and "/console/login" not in url)
    page.wait_for_selector("#alerts-table")


def test_analyst_triages_an_alert_asks_a_question_and_exports(page, demo):
    expect = sync_api.expect
    sign_in(page, demo)

    # the demo's alerts are listed, most recent activity first
    table = page.locator("#alerts-table")
    expect(table).to_be_visible()
    rows = table.locator("tbody tr")
    expect(rows.first).to_be_visible()
    titles = {a.rule_title for a in demo["alerts"]}
    first_title = rows.first.locator(".alert-title").inner_text()
    assert first_title in titles
    shot(page, "console-alerts.png")
    if os.environ.get("MANTISSA_UPDATE_SCREENSHOT"):
        # refresh the README picture on demand, never as a side effect of a test run
        shutil.copyfile(ARTIFACTS / "console-alerts.png", ROOT / "docs" / "console.png")

    # open one with the keyboard (j selects the first row, Enter opens it)
    page.locator("body").press("j")
    page.keyboard.press("Enter")
    page.wait_for_url("**/console/alerts/al_*")
    expect(page.locator("#alert-title")).to_contain_text(first_title)
    expect(page.locator("#evidence")).to_be_visible()
    alert_id = page.url.rsplit("/", 1)[1]
    shot(page, "console-alert.png")

    # acknowledge it
    page.fill("#status-reason", "on it")
    page.click("#action-acknowledged")
    expect(page.locator(".page-head .badge.st-acknowledged")).to_be_visible()
    expect(page.locator("#timeline")).to_contain_text("acknowledged")
    from mantissa.alerts.store import AlertStore

    stored = AlertStore(demo["runtime"].state).get(alert_id)
    assert stored.status == "acknowledged"
    assert stored.history[-1]["actor"].startswith("ana") and stored.history[-1]["reason"] == "on it"
    shot(page, "console-alert-acknowledged.png")

    # ask a question in plain English
    page.goto(demo["url"] + "/console/search")
    page.fill("#search-box", "failed logins in the last 7 days")
    page.keyboard.press("Control+Enter")
    expect(page.locator("#summary")).to_be_visible()
    meta = page.locator("#answer-meta").inner_text()
    assert "answered by: sql" not in meta  # a question tier answered, not raw SQL
    expect(page.locator("#results-table")).to_be_visible()
    assert page.locator("#sql-box").input_value().upper().startswith(("SELECT", "WITH"))
    shown = page.locator("#results-table tbody tr").count()
    shot(page, "console-search.png")

    # export what is on screen as CSV
    with page.expect_download() as dl:
        page.click("#export-csv")
    target = ARTIFACTS / "console-export.csv"
    dl.value.save_as(str(target))
    rows_csv = list(csv.reader(io.StringIO(target.read_text())))
    header = [h.inner_text() for h in page.locator("#results-table thead th").all()]
    assert rows_csv[0] == header
    no_rows = page.locator("#results-table td.empty").count() == 1
    assert len(rows_csv) - 1 == (0 if no_rows else shown)

    # keyboard navigation to the overview
    page.locator("body").press("g")
    page.keyboard.press("o")
    page.wait_for_url("**/console/overview")
    expect(page.locator("svg.chart")).to_be_visible()
    expect(page.locator("#open-alerts")).to_be_visible()
    shot(page, "console-overview.png")

    assert not page.problems, page.problems  # no script errors, no CSP violations


def test_pivot_from_an_entity_searches_its_activity(page, demo):
    sign_in(page, demo)
    # an alert on log data (pivots search the logs; APM alerts point at traces)
    page.goto(demo["url"] + "/console/alerts?q=cloudtrail")
    link = page.locator("#alerts-table a.pivot").first
    value = link.inner_text()
    link.click()
    page.wait_for_url("**/console/search?pivot=*")
    sync_api.expect(page.locator("#results-table")).to_be_visible()
    assert value in page.locator("#search-box").input_value()
    cells = page.locator("#results-table tbody").inner_text()
    assert value in cells
    shot(page, "console-pivot.png")
    assert not page.problems, page.problems


def test_viewer_cannot_change_alerts(browser, demo):
    _, viewer = TokenStore(demo["runtime"].state).create("viewer", name="vera")
    ctx = browser.new_context()
    pg = ctx.new_page()
    pg.set_default_timeout(TIMEOUT_MS)
    pg.goto(demo["url"] + "/console/login")
    pg.fill("#token", viewer)
    pg.click("#login-submit")
    pg.wait_for_url(lambda url: "/console/alerts" in url and "/console/login" not in url)
    pg.locator("#alerts-table tbody tr .alert-title").first.click()
    sync_api.expect(pg.locator("#action-closed")).to_be_disabled()
    ctx.close()
