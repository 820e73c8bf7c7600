"""The incident console end to end, through real processes: the notifier and reporting as
`python -m services.<x>.main`, the emulator's queues, PostgreSQL with the migrations, webhook receivers on
127.0.0.1, and Debian's Chromium driven by Playwright.

A rule of site-1 alerts the "ops" webhook when an incident opens and escalates to the "site-manager" webhook
when nobody acknowledges it within ESCALATE_AFTER_S. An operator of site-1 signs in on the sign-in page, sees the
first incident arrive in the console and acknowledges it: it never escalates. A second incident, left alone,
escalates exactly once. A viewer of site-b sees neither and is refused their URLs.
Needs /usr/bin/chromium (`make test-deps`).
"""

import asyncio
import os
from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, Page, async_playwright

from shared.access.roles import Role
from shared.config import PlatformSettings
from shared.db import make_engine
from shared.sqs import QueueResolver
from tests.integration.access.conftest import PASSWORD, SESSION_KEY, make_user
from tests.integration.notifier.conftest import WEBHOOK_SECRET, publish_frames
from tests.integration.notifier.receivers import HttpReceiver
from tests.integration.reporting.conftest import ADMIN, ANALYST
from tests.integration.reporting.test_dashboard import CHROMIUM, CHROMIUM_ARGS
from tests.support.processes import new_secret, running_service, service_env
from tests.unit.notifier.builders import hat_scenario

ESCALATE_AFTER_S = 10.0  # long enough for a person to acknowledge in a slow CI browser, short for the test
HAVE_CHROMIUM = os.path.exists(CHROMIUM)
DOCS_SCREENSHOT = Path(__file__).resolve().parents[3] / "docs" / "incident-console.png"
AUDIT_SCREENSHOT = DOCS_SCREENSHOT.with_name("audit-trail.png")


@pytest.fixture
def processes(
    platform_settings: PlatformSettings, provisioned: dict[str, str], migrated_database_url: str, tmp_path: Path
) -> Iterator[tuple[str, str, str]]:
    token = new_secret()
    with ExitStack() as stack:
        notifier = stack.enter_context(running_service("notifier", service_env(
            platform_settings, migrated_database_url, NOTIFIER_ADMIN_TOKEN=token,
            NOTIFIER_WEBHOOK_SECRET=WEBHOOK_SECRET, NOTIFIER_SECRETS_KEY=new_secret() + new_secret(),
            NOTIFIER_WEBHOOK_ALLOWED_NETWORKS="127.0.0.0/8", NOTIFIER_SWEEP_INTERVAL_S="0.5",
            PPE_SESSION_KEY=SESSION_KEY,
        ), log_path=tmp_path / "notifier.log"))
        reporting = stack.enter_context(running_service("reporting", service_env(
            platform_settings, migrated_database_url, REPORTING_ANALYST_TOKEN=ANALYST, REPORTING_ADMIN_TOKEN=ADMIN,
            REPORTING_NOTIFIER_URL=notifier, REPORTING_NOTIFIER_ADMIN_TOKEN=token, PPE_SESSION_KEY=SESSION_KEY,
        ), log_path=tmp_path / "reporting.log"))
        yield notifier, reporting, token


@pytest.fixture
async def hooks() -> AsyncIterator[tuple[HttpReceiver, HttpReceiver]]:
    ops, manager = await HttpReceiver(secret=WEBHOOK_SECRET).start(), await HttpReceiver(secret=WEBHOOK_SECRET).start()
    yield ops, manager
    await ops.stop()
    await manager.stop()


@pytest.fixture
async def people(migrated_database_url: str) -> None:
    engine = make_engine(migrated_database_url)
    await make_user(engine, "olga", roles={"site-1": Role.OPERATOR})
    await make_user(engine, "victor", roles={"site-b": Role.VIEWER})
    await make_user(engine, "root", global_role=Role.ADMIN)
    await engine.dispose()


async def add_rule(notifier: str, token: str, ops: HttpReceiver, manager: HttpReceiver) -> None:
    async with httpx.AsyncClient(base_url=notifier, headers={"Authorization": f"Bearer {token}"}) as admin:
        ids = []
        for name, receiver in (("ops", ops), ("site-manager", manager)):
            response = await admin.post("/v1/channels", json={
                "name": name, "kind": "webhook", "target": f"{receiver.url}/hooks/ppe", "secret": WEBHOOK_SECRET})
            assert response.status_code == 201, response.text
            ids.append(response.json()["id"])
        policy = {"channel_ids": [ids[0]], "min_violation_s": 1, "cooldown_camera_s": 0, "cooldown_person_s": 0,
                  "escalation": [{"after_min": ESCALATE_AFTER_S / 60, "channel_ids": [ids[1]]}]}
        response = await admin.post("/v1/rules", json={"site_id": "site-1", "policy": policy})
        assert response.status_code == 201, response.text


async def sign_in(browser: Browser, reporting: str, username: str) -> Page:
    page = await browser.new_page()
    await page.goto(f"{reporting}/")
    await page.wait_for_url(f"{reporting}/static/login.html**")
    await page.fill("#username", username)
    await page.fill("#password", PASSWORD)
    await page.click("button[type=submit]")
    await page.wait_for_url(f"{reporting}/")
    await page.click("a[href='/incidents']")  # the dashboard links the console
    await page.wait_for_selector("body[data-state=ready]", timeout=15_000)
    return page


def row(camera: str) -> str:
    return f"#incidents tbody tr:has(td:text-is('{camera}'))"


async def test_operator_acknowledges_one_the_other_escalates_once_and_another_site_sees_neither(
    processes: tuple[str, str, str], hooks: tuple[HttpReceiver, HttpReceiver], people: None,
    sqs_client: Any, resolver: QueueResolver, tmp_path: Path,
) -> None:
    assert HAVE_CHROMIUM, "Debian chromium is missing: run `make test-deps` (apt-get install chromium)"
    notifier, reporting, token = processes
    ops, manager = hooks
    await add_rule(notifier, token, ops, manager)
    errors: list[str] = []
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            # GIVEN olga, operator of site-1, signed in on the console: nothing open yet
            page = await sign_in(browser, reporting, "olga")
            page.on("pageerror", lambda e: errors.append(str(e)))
            assert await page.locator("#empty").is_visible()
            # WHEN cam-1's worker takes the hard hat off THEN the incident arrives in the console by itself
            await publish_frames(sqs_client, resolver, hat_scenario(camera_id="cam-1", before_s=2, without_s=6,
                                                                    after_s=0))
            await page.wait_for_selector(row("cam-1"), timeout=30_000)
            first = await page.get_attribute(row("cam-1"), "data-incident-id")
            assert "HEAD_COVER" in await page.inner_text(row("cam-1"))
            # ... and she acknowledges it
            await page.click(row("cam-1"))
            await page.wait_for_selector(f"#detail[data-incident-id='{first}']")
            await page.click("#acknowledge")
            await page.wait_for_selector(f"{row('cam-1')}[data-acknowledged=true]", timeout=10_000)
            assert "olga" in await page.inner_text(row("cam-1"))
            # ... and comments on it
            await page.fill("#comment-text", "hat handed out at the gate")
            await page.click("#comment")
            await page.wait_for_selector("#history li:has-text('comment by user:olga')", timeout=10_000)
            # ... and assigns it to herself (the operators of site-1 are offered)
            await page.select_option("#assignee", "olga")
            await page.click("#assign")
            await page.wait_for_selector(f"{row('cam-1')} td:nth-child(8):text-is('olga')", timeout=10_000)
            assert await page.locator("a[href='/audit']").is_hidden()  # not an admin: no admin links
            # WHEN cam-2's incident opens and nobody acknowledges it
            await publish_frames(sqs_client, resolver, hat_scenario(camera_id="cam-2", prefix="g", before_s=2,
                                                                    without_s=6, after_s=0))
            await page.wait_for_selector(row("cam-2"), timeout=30_000)
            second = await page.get_attribute(row("cam-2"), "data-incident-id")
            # THEN the site manager gets exactly one escalation, of the second incident only
            escalated = await manager.wait_for(1, timeout_s=ESCALATE_AFTER_S + 40)
            await asyncio.sleep(3.0)  # several more sweeps (0.5 s apart): still one
            assert len(manager.received) == 1 and escalated[0].signature_ok
            body = escalated[0].json()
            assert body["event"] == "incident.escalated" and body["incident"]["incident_id"] == second
            assert [r.json()["event"] for r in ops.received] == ["incident.open", "incident.open"]
            # ... and the notifier's history names olga, not the machine token
            async with httpx.AsyncClient(base_url=notifier, headers={"Authorization": f"Bearer {token}"}) as admin:
                history = (await admin.get(f"/v1/incidents/{first}")).json()["history"]
            assert [(h["action"], h["actor"]) for h in history] == [
                ("acknowledge", "user:olga"), ("comment", "user:olga"), ("assign", "user:olga")]
            # ... and the console shows the second one's escalation in its history
            await page.click(row("cam-2"))
            await page.wait_for_selector("#history li:has-text('escalate by service:notifier-escalation')")
            assert await page.locator("#snapshot").is_hidden()  # no ingest link here: no snapshot, no broken image
            screenshot = DOCS_SCREENSHOT if os.environ.get("PPE_UPDATE_DOCS_SCREENSHOT") == "1" else tmp_path / "c.png"
            await page.screenshot(path=str(screenshot), full_page=True)
            # WHEN victor, viewer of site-b, signs in THEN he sees neither, and their URLs answer 403
            other = await sign_in(browser, reporting, "victor")
            other.on("pageerror", lambda e: errors.append(str(e)))
            assert await other.locator("#incidents tbody tr").count() == 0
            assert await other.locator("#empty").is_visible()
            for incident_id in (first, second):
                url = f"{reporting}/api/v1/console/incidents/{incident_id}"
                assert (await other.request.get(url)).status == 403
                acted = await other.request.post(f"{url}/acknowledge", headers={"X-PPE-CSRF": "1"})
                assert acted.status == 403
            listed = await other.request.get(f"{reporting}/api/v1/console/incidents?site_id=site-1")
            assert listed.status == 403
            # ... nor the admin pages
            for admin_page in ("/audit", "/users"):
                refused = await other.goto(f"{reporting}{admin_page}")
                assert refused is not None and refused.status == 403
            # WHEN root, a global admin, follows the console's link to the audit trail
            admin = await sign_in(browser, reporting, "root")
            admin.on("pageerror", lambda e: errors.append(str(e)))
            await admin.click("a[href='/audit']")
            await admin.wait_for_url(f"{reporting}/audit")
            await admin.wait_for_selector("body[data-state=ready]")
            # THEN olga's sign-in and her acknowledgement are there, newest first, and the chain verifies
            for action in ("auth.login", "incident.acknowledge"):
                await admin.wait_for_selector(f"#records tr[data-action='{action}']:has(td:text-is('user:olga'))")
            seqs = [int(s) for s in await admin.locator("#records tbody tr").evaluate_all(
                "rows => rows.map((r) => r.dataset.seq)")]
            assert seqs == sorted(seqs, reverse=True)
            await admin.click("#verify")
            await admin.wait_for_selector("#verdict:has-text('intact')")
            audit_shot = AUDIT_SCREENSHOT if os.environ.get("PPE_UPDATE_DOCS_SCREENSHOT") == "1" else tmp_path / "a.png"
            await admin.screenshot(path=str(audit_shot), full_page=True)
            # ... and filtered to olga, only hers
            await admin.fill("#actor", "user:olga")
            await admin.click("#controls button[type=submit]")
            await admin.wait_for_function(
                "() => [...document.querySelectorAll('#records tbody tr td:nth-child(3)')]"
                ".every((td) => td.textContent === 'user:olga')")
            # ... and on the users page gives victor the viewer role on site-1 (his site-b role stays)
            await admin.click("a[href='/users']")
            await admin.wait_for_selector("body[data-state=ready]")
            await admin.wait_for_selector("#users tr[data-username='olga']:has-text('site-1: operator')")
            await admin.select_option("#role-user", label="victor")
            await admin.fill("#role-site", "site-1")
            await admin.select_option("#role-role", "viewer")
            await admin.click("#grant")
            await admin.wait_for_selector("#users tr[data-username='victor']:has-text('site-1: viewer')")
            assert "site-b: viewer" in await admin.inner_text("#users tr[data-username='victor']")
            # ... and sees the rule of site-1 and its channels on the rules and channels page
            await admin.click("a[href='/notifications']")
            await admin.wait_for_selector("body[data-state=ready]")
            await admin.wait_for_selector("#rules tbody tr:has(td:text-is('site-1'))")
            await admin.wait_for_selector("#channels tr[data-channel-name='site-manager']")
        finally:
            await browser.close()
    assert errors == []
