"""The SOAR console pages driven in Debian's headless Chromium (Playwright): a responder
runs a playbook from the console, it stops at an approval, the approval is given on the
approvals page and the execution shows ``succeeded``; a signed approval link opens the
console approval page after a login and is refused once expired; an analyst sees the
pages read-only and a viewer sees the API's 403.

Skips (saying why) only when no Chromium binary or no playwright package is installed.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mantissa.api.app import create_app
from mantissa.api.auth import TokenStore
from mantissa.soar.executor import Executor
from mantissa.soar.store import PlaybookStore
from tests.api.conftest import start_server
from tests.conftest import ROOT
from tests.soar.conftest import playbook

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
TIMEOUT_MS = 30_000

if not Path(CHROMIUM).exists():
    pytest.skip(
        f"no Chromium at {CHROMIUM}: `apt-get install chromium` (scripts/test-deps.sh does)",
        allow_module_level=True,
    )
sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package (dev extra)")
expect = sync_api.expect

GATED = [
    {
        "id": "revoke",
        "name": "Revoke sessions",
        "action_type": "revoke_sessions",
        "parameters": {"user_id": "{{ input.user }}", "connection": "okta_main"},
    },
    {
        "id": "suspend",
        "name": "Suspend the account",
        "action_type": "disable_user",
        "requires_approval": True,
        "depends_on": ["revoke"],
        "parameters": {"user_id": "{{ input.user }}", "connection": "okta_main"},
    },
]


@pytest.fixture
def site(make_runtime: Any, okta: Any) -> Iterator[dict[str, Any]]:
    # the pages do not depend on the state backend (the API tests cover both): SQLite only
    rt = make_runtime(
        {
            "connections": {
                "okta_main": {"type": "okta", "base_url": okta[1].url, "token": "${env:OKTA_TOKEN}"}
            }
        }
    )
    PlaybookStore(rt).import_text(
        playbook(GATED, id="okta-takeover", name="Okta takeover", tags=["identity"])
    )
    store = TokenStore(rt.state)
    toks = {r: store.create(r, name=f"{r}-1")[1] for r in ("viewer", "analyst", "responder")}
    server = start_server(create_app(rt))
    try:
        yield {"url": server.url, "tokens": toks, "runtime": rt, "okta": okta[0]}
    finally:
        server.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        yield b
        b.close()


@pytest.fixture
def new_page(browser: Any) -> Iterator[Any]:
    contexts: list[Any] = []

    def make() -> Any:
        ctx = browser.new_context(viewport={"width": 1360, "height": 900})
        contexts.append(ctx)
        pg = ctx.new_page()
        pg.set_default_timeout(TIMEOUT_MS)
        problems: list[str] = []
        pg.on("pageerror", lambda e: problems.append(f"page error: {e}"))

        def on_console(msg: Any) -> None:
            # the browser logs every non-2xx fetch: 403s are what these tests look for
            if msg.type == "error" and "status of 403" not in msg.text:
                problems.append(f"console {msg.type}: {msg.text}")

        pg.on("console", on_console)
        pg.problems = problems
        return pg

    yield make
    for ctx in contexts:
        ctx.close()


def shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), full_page=True)


def sign_in(page: Any, url: str, token: str, lands: str) -> None:
    page.goto(url)
    assert "/console/login" in page.url  # not signed in: sent to the sign-in page
    page.fill("#token", token)
    page.click("#login-submit")
    page.wait_for_url(lambda u: lands in u and "/console/login" not in u)


def test_run_from_console_stops_at_approval_approved_in_console(
    site: dict[str, Any], new_page: Any
) -> None:
    page = new_page()
    sign_in(page, site["url"] + "/console/playbooks", site["tokens"]["responder"], "/playbooks")
    row = page.locator("#playbooks-table tr", has_text="okta-takeover")
    expect(row).to_contain_text("1.0.0")
    expect(row).to_contain_text("manual")
    expect(row.locator(".badge")).to_have_text("active")
    shot(page, "soar-playbooks.png")
    row.locator("button.run").click()
    page.fill("#run-input", '{"user": "bob@example.com"}')
    page.click("#run-submit")
    page.wait_for_url("**/console/executions/ex_*")
    expect(page.locator("#exec-status .badge")).to_have_attribute("data-status", "waiting_approval")
    expect(page.locator('[data-step="revoke"] .badge')).to_have_attribute(
        "data-status", "succeeded"
    )
    expect(page.locator('[data-step="revoke"]')).to_contain_text(
        '"revoked": true'
    )  # the step's output
    expect(page.locator('[data-step="suspend"] .badge')).to_have_attribute(
        "data-status", "waiting_approval"
    )
    assert page.locator("#exec-cancel").is_visible()
    eid = page.url.rsplit("/", 1)[1]
    page.click("#goto-approvals")
    page.wait_for_url("**/console/approvals")
    card = page.locator("section.approval")
    expect(card).to_have_count(1)
    expect(card).to_contain_text(eid)
    expect(card).to_contain_text('"user_id": "bob@example.com"')  # bound parameters
    expect(card.locator(".countdown")).to_contain_text("expires in")
    shot(page, "soar-approvals.png")
    card.locator("input.reason").fill("confirmed with the user's manager")
    card.locator("button.approve").click()
    expect(page.locator("#approvals-count")).to_have_text("0 pending")
    page.goto(f"{site['url']}/console/executions/{eid}")
    expect(page.locator("#exec-status .badge")).to_have_attribute("data-status", "succeeded")
    expect(page.locator('[data-step="suspend"] .badge')).to_have_attribute(
        "data-status", "succeeded"
    )
    expect(page.locator("#exec-cancel")).to_have_count(0)  # nothing to cancel any more
    shot(page, "soar-execution.png")
    doc = Executor(site["runtime"]).get(eid)
    assert doc["status"] == "succeeded"
    assert doc["approvals"][0]["decided_by"].startswith("responder-1")
    assert doc["approvals"][0]["reason"] == "confirmed with the user's manager"
    assert doc["approvals"][0]["via"] == "console"
    assert site["okta"].effects == [("revoke_sessions", "00ub0b"), ("suspend", "00ub0b")]
    # the execution list shows it too
    page.goto(site["url"] + "/console/executions")
    expect(page.locator("#executions-table tr", has_text=eid)).to_contain_text("succeeded")
    assert not page.problems, page.problems


def test_signed_link_opens_console_after_login_and_is_refused_after_expiry(
    site: dict[str, Any], new_page: Any
) -> None:
    from mantissa.soar.approvals import links, sign_link

    rt = site["runtime"]
    ex = Executor(rt)
    eid = ex.start("okta-takeover", input={"user": "bob@example.com"})
    assert ex.run(eid) == "waiting_approval"
    aid = ex.get(eid)["approvals"][0]["id"]
    link = links(rt, aid)["deny"].replace("http://127.0.0.1:8080", site["url"])
    assert "/console/approvals/" in link
    # an expired link is refused, even to a signed-in responder
    stale = f"{site['url']}/console/approvals/{aid}?decision=approve&token=" + sign_link(
        rt, aid, "approve", ttl_secs=1
    )
    page = new_page()
    sign_in(page, link, site["tokens"]["responder"], f"/console/approvals/{aid}")
    assert "token=" in page.url  # the login kept the link's query
    card = page.locator(f'[data-approval="{aid}"]')
    expect(card).to_contain_text("disable_user")
    expect(card.locator("button.deny")).to_have_class("deny primary")
    shot(page, "soar-approval-link.png")
    time.sleep(1.1)
    page.goto(stale)
    expect(page.locator("#link-refused")).to_contain_text("invalid or has expired")
    expect(page.locator("button.approve")).to_have_count(0)
    # the valid link decides; the decision is recorded as made through the link
    page.goto(link)
    card.locator("input.reason").fill("false positive: travel")
    card.locator("button.deny").click()
    expect(card.locator(".badge").first).to_have_attribute("data-status", "denied")
    ap = ex.get(eid)["approvals"][0]
    assert (ap["status"], ap["via"]) == ("denied", "link")
    assert ap["decided_by"].startswith("responder-1")
    assert ex.get(eid)["status"] == "denied"
    assert ("suspend", "00ub0b") not in site["okta"].effects
    assert not page.problems, page.problems


def test_analyst_read_only_viewer_refused(site: dict[str, Any], new_page: Any) -> None:
    rt = site["runtime"]
    ex = Executor(rt)
    eid = ex.start("okta-takeover", input={"user": "bob@example.com"})
    assert ex.run(eid) == "waiting_approval"
    page = new_page()
    sign_in(page, site["url"] + "/console/playbooks", site["tokens"]["analyst"], "/playbooks")
    expect(page.locator("#playbooks-table tr", has_text="okta-takeover")).to_be_visible()
    expect(page.locator("#read-only")).to_be_visible()
    expect(page.locator("button.run")).to_have_count(0)
    page.goto(f"{site['url']}/console/executions/{eid}")
    expect(page.locator("#exec-status .badge")).to_have_attribute("data-status", "waiting_approval")
    expect(page.locator("#exec-cancel")).to_have_count(0)
    expect(page.locator("#exec-resume")).to_have_count(0)
    page.goto(site["url"] + "/console/approvals")
    expect(page.locator("#forbidden")).to_be_visible()  # GET /approvals needs responder
    expect(page.locator("button.approve")).to_have_count(0)
    viewer = new_page()
    sign_in(viewer, site["url"] + "/console/executions", site["tokens"]["viewer"], "/executions")
    expect(viewer.locator("#forbidden")).to_be_visible()
    viewer.goto(site["url"] + "/console/playbooks")
    expect(viewer.locator("#forbidden")).to_be_visible()
    expect(viewer.locator("button.run")).to_have_count(0)
    assert Executor(rt).get(eid)["status"] == "waiting_approval"
    assert not page.problems and not viewer.problems, page.problems + viewer.problems
