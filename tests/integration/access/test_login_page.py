"""The dashboard's sign-in page in headless Debian Chromium (Playwright): no token pasting. A viewer of
site A signs in, sees site A's figures and none of site B's, and is refused site B; a wrong password stays on
the page with the reason; she subscribes to a digest e-mail and unsubscribes; signing out returns to it.
Sign-in returns to the page asked for, if it is a page of this site. Real PostgreSQL, the reporting app served
by uvicorn."""

import asyncio
import os
from collections.abc import AsyncIterator

import pytest
from playwright.async_api import Page, async_playwright

from services.reporting.adapters.repository import ReportingRepository
from services.reporting.api.app import build_app
from services.reporting.api.deps import Tokens
from services.reporting.retention import RetentionJob
from shared.access.config import AccessSettings
from shared.access.http import Access
from shared.access.roles import Role
from shared.db import make_engine
from shared.http import EmbeddedServer
from tests.conftest import free_port
from tests.integration.access.conftest import PASSWORD, REPORTING_ADMIN, REPORTING_ANALYST, SESSION_KEY, make_user
from tests.integration.reporting.conftest import seed
from tests.integration.reporting.test_dashboard import CHROMIUM, CHROMIUM_ARGS

HAVE_CHROMIUM = os.path.exists(CHROMIUM)
RANGE = "#bucket=hour&start=2026-01-05T20:00:00Z&end=2026-01-06T12:00:00Z"


@pytest.fixture
async def served(migrated_database_url: str) -> AsyncIterator[str]:
    engine = make_engine(migrated_database_url)
    repository = ReportingRepository(engine)
    await seed(repository)  # site-a: cam-1, cam-2; site-b: cam-9
    await make_user(engine, "vera", roles={"site-a": Role.VIEWER})
    await make_user(engine, "ada", roles={"site-a": Role.ADMIN})
    tokens = Tokens(analyst=REPORTING_ANALYST, admin=REPORTING_ADMIN)
    app = build_app(
        repository=repository, tokens=tokens,
        retention=RetentionJob(repository, None, bucket="unused", retention_days=3650, frames_retention_days=30),
        access=Access(engine, tokens.principals(), AccessSettings(session_key=SESSION_KEY)),
    )
    port = free_port()
    server = EmbeddedServer(app, host="127.0.0.1", port=port, access_log=True)
    task = asyncio.create_task(server.serve())
    for _ in range(400):
        if server.started:
            break
        await asyncio.sleep(0.05)
    assert server.started, "uvicorn did not start within 20 s"
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    await task
    await engine.dispose()


@pytest.fixture
async def page() -> AsyncIterator[Page]:
    """A fresh page of headless Debian Chromium; the test fails on any script error in it."""
    assert HAVE_CHROMIUM, "Debian chromium is missing: run `make test-deps` (apt-get install chromium)"
    errors: list[str] = []
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page()
            page.on("pageerror", lambda e: errors.append(str(e)))
            yield page
        finally:
            await browser.close()
    assert errors == []


async def sign_in(page: Page, username: str, password: str) -> None:
    await page.fill("#username", username)
    await page.fill("#password", password)
    await page.click("button[type=submit]")


async def test_a_viewer_signs_in_and_sees_only_their_site(served: str, page: Page) -> None:
    # GIVEN nobody signed in: the dashboard sends them to the sign-in page, keeping the options
    await page.goto(f"{served}/{RANGE}")
    await page.wait_for_url(f"{served}/static/login.html{RANGE}")
    # WHEN the password is wrong THEN the page says so and stays
    await sign_in(page, "vera", "not the password")
    await page.wait_for_selector("body[data-state=error]")
    assert "wrong user name or password" in await page.inner_text("#status")
    # WHEN vera signs in THEN the dashboard shows site-a, and nothing of site-b
    await sign_in(page, "vera", PASSWORD)
    await page.wait_for_url(f"{served}/{RANGE}")
    await page.wait_for_selector("body[data-state=ready]", timeout=15_000)
    assert await page.inner_text("#who-name") == "vera (viewer of site-a)"
    rows = await page.locator("#breakdown-table tbody tr").all_inner_texts()
    assert {r.split("\t")[0] for r in rows} == {"site-a"} and len(rows) == 2
    cookie = (await page.context.cookies())[0]
    assert cookie["name"] == "ppe_session" and cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    # WHEN she subscribes to site-a's daily digest (her only site, filled in) THEN it is listed
    assert await page.input_value("#digest-site") == "site-a"
    assert await page.is_visible("#digest-none")
    await page.select_option("#digest-period", "daily")
    await page.fill("#digest-email", "vera@example.com")
    await page.click("#digest-form button[type=submit]")
    await page.wait_for_selector("#digest-table tbody tr")
    listed = await page.locator("#digest-table tbody tr").all_inner_texts()
    assert [r.split("\t")[:3] for r in listed] == [["site-a", "daily", "vera@example.com"]]
    assert not await page.is_visible("#digest-none")
    stored = await (await page.request.get(f"{served}/api/v1/digests/subscriptions")).json()
    assert [(s["site_id"], s["period"], s["email"]) for s in stored] == [("site-a", "daily", "vera@example.com")]
    # WHEN she unsubscribes THEN the list is empty, and so is the server's
    await page.click("#digest-table tbody tr button")
    await page.wait_for_selector("#digest-table tbody tr", state="detached")
    assert await page.is_visible("#digest-none")
    assert await (await page.request.get(f"{served}/api/v1/digests/subscriptions")).json() == []
    # WHEN she asks for site-b THEN 403, shown as the reason
    await page.fill("#site", "site-b")
    await page.click("#controls button[type=submit]")
    await page.wait_for_selector("body[data-state=error]")
    assert "403" in await page.inner_text("#status") and "site-b" in await page.inner_text("#status")
    # WHEN she signs out THEN the session is over: the dashboard sends her back to sign in
    await page.click("#signout")
    await page.wait_for_url(f"{served}/static/login.html**")
    response = await page.request.get(f"{served}/api/v1/auth/me")
    assert response.status == 401


FOREIGN = ["//evil.example/x", "https://evil.example/", "/\\evil.example", "\\\\evil.example", "/\t/evil.example",
           "/\n/evil.example", "javascript:alert(1)", "evil.example", "", "/%0a/x\u007f"]


async def test_sign_in_returns_to_the_page_asked_for_and_only_to_a_local_one(served: str, page: Page) -> None:
    # GIVEN nobody signed in, asking for the audit trail: reporting sends them to sign in (303)
    await page.goto(f"{served}/audit#actor=vera")
    await page.wait_for_url(f"{served}/static/login.html?next=/audit#actor=vera")
    # WHEN an admin signs in THEN she lands on the audit trail, fragment kept
    await sign_in(page, "ada", PASSWORD)
    await page.wait_for_url(f"{served}/audit#actor=vera")
    assert await page.title() == "Audit trail · PPE compliance"
    # GIVEN an open page whose script finds no session (common.js's 401) WHEN vera signs in THEN back there
    await page.context.clear_cookies()
    await page.goto(f"{served}/zones?camera=cam-1")
    await page.wait_for_url(f"{served}/static/login.html?next=%2Fzones%3Fcamera%3Dcam-1")
    await sign_in(page, "vera", PASSWORD)
    await page.wait_for_url(f"{served}/zones?camera=cam-1")
    # THEN anything but a local path is refused: the dashboard instead (no open redirect)
    await page.goto(f"{served}/static/login.html?next=%2F%2Fevil.example%2Fx")
    checked = await page.evaluate("(targets) => targets.map((t) => localPage(t))",
                                  FOREIGN + ["/audit?site=site-a", "/zones"])
    assert checked == ["/"] * len(FOREIGN) + ["/audit?site=site-a", "/zones"]
    await sign_in(page, "vera", PASSWORD)
    await page.wait_for_url(f"{served}/")
