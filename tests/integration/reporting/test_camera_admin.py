"""Camera management for admins end to end, through real processes: ingest and reporting as
`python -m services.<x>.main`, the emulator's bucket and queues, PostgreSQL with the migrations, and Debian's
Chromium driven by Playwright.

An admin of site-a registers a camera through reporting (never holding ingest's token); the key it is shown
works on ingest's camera API; rotating it makes the old key fail and the new one work; disabling makes ingest
refuse the camera; each change is an audit record in the admin's name. An admin of site-b and a viewer of
site-a are refused. Needs /usr/bin/chromium (`make test-deps`).
"""

import os
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from playwright.async_api import async_playwright

from shared.access import store
from shared.access.roles import Role
from shared.config import PlatformSettings
from shared.db import make_engine
from tests.integration.access.conftest import PASSWORD, SESSION_KEY, make_user
from tests.integration.reporting.conftest import ADMIN, ANALYST
from tests.integration.reporting.test_dashboard import CHROMIUM, CHROMIUM_ARGS
from tests.support.images import photo_jpeg
from tests.support.processes import new_secret, running_service, service_env

HAVE_CHROMIUM = os.path.exists(CHROMIUM)
DOCS_SCREENSHOT = Path(__file__).resolve().parents[3] / "docs" / "cameras.png"


@dataclass
class Stack:
    ingest: str
    reporting: str
    alice: dict[str, str]  # admin of site-a
    bob: dict[str, str]  # admin of site-b
    vera: dict[str, str]  # viewer of site-a
    database_url: str


@pytest.fixture
def processes(
    platform_settings: PlatformSettings, provisioned: dict[str, str], migrated_database_url: str, tmp_path: Path
) -> Iterator[tuple[str, str]]:
    token = new_secret()
    with ExitStack() as stack:
        ingest = stack.enter_context(running_service("ingest", service_env(
            platform_settings, migrated_database_url, INGEST_ADMIN_TOKEN=token, PPE_SESSION_KEY=SESSION_KEY,
        ), log_path=tmp_path / "ingest.log"))
        reporting = stack.enter_context(running_service("reporting", service_env(
            platform_settings, migrated_database_url, REPORTING_ANALYST_TOKEN=ANALYST, REPORTING_ADMIN_TOKEN=ADMIN,
            REPORTING_INGEST_URL=ingest, REPORTING_INGEST_ADMIN_TOKEN=token, PPE_SESSION_KEY=SESSION_KEY,
        ), log_path=tmp_path / "reporting.log"))
        yield ingest, reporting


@pytest.fixture
async def stack(processes: tuple[str, str], migrated_database_url: str) -> Stack:
    engine = make_engine(migrated_database_url)
    bearers = []
    for name, site, role in (("alice", "site-a", Role.ADMIN), ("bob", "site-b", Role.ADMIN),
                             ("vera", "site-a", Role.VIEWER)):
        user_id = await make_user(engine, name, roles={site: role})
        _, token = await store.create_token(engine, user_id=user_id, name="tests", expires_at=None)
        bearers.append({"Authorization": f"Bearer {token}"})
    await engine.dispose()
    return Stack(*processes, *bearers, database_url=migrated_database_url)


async def me(client: httpx.AsyncClient, stack: Stack, key: str) -> int:
    """What ingest's camera API answers the key: 200 (accepted), 401 (unknown key), 403 (disabled)."""
    return (await client.get(f"{stack.ingest}/v1/cameras/me", headers={"X-API-Key": key})).status_code


async def audit_of(stack: Stack, camera_id: str) -> list[tuple[str, str]]:
    engine = make_engine(stack.database_url)
    async with engine.connect() as conn:
        rows = (await conn.execute(sa.text(
            "SELECT action, actor FROM access_audit WHERE target = :t AND actor LIKE 'user:%' ORDER BY seq"
        ), {"t": f"camera:{camera_id}"})).all()
    await engine.dispose()
    return [(r.action, r.actor) for r in rows]


async def test_a_site_admin_registers_rotates_disables_and_enables_a_camera(stack: Stack) -> None:
    api = f"{stack.reporting}/api/v1/cameras"
    camera = {"camera_id": "gate-cam", "site_id": "site-a", "zone_id": "gate", "required_ppe": ["HEAD_COVER"]}
    async with httpx.AsyncClient(timeout=10) as client:
        # GIVEN alice, admin of site-a, registers a camera there through reporting
        created = await client.post(api, json=camera, headers=stack.alice)
        assert created.status_code == 201, created.text
        first = created.json()["api_key"]
        # THEN its key works on ingest's camera API: it reads its settings and posts a frame
        assert await me(client, stack, first) == 200
        posted = await client.post(
            f"{stack.ingest}/v1/frames", params={"captured_at": "2026-12-07T08:30:00Z"},
            headers={"X-API-Key": first, "Content-Type": "image/jpeg"}, content=photo_jpeg(320, 240),
        )
        assert posted.status_code == 202, posted.text
        # ... and the others may not touch it: bob administers site-b, vera only views site-a
        refused = [
            await client.post(api, json=camera | {"camera_id": "bob-cam"}, headers=stack.bob),
            await client.post(f"{api}/gate-cam/rotate-key", headers=stack.bob),
            await client.post(f"{api}/gate-cam/disable", headers=stack.bob),
            await client.post(api, json=camera | {"camera_id": "vera-cam"}, headers=stack.vera),
            await client.post(f"{api}/gate-cam/rotate-key", headers=stack.vera),
            await client.post(f"{api}/gate-cam/disable", headers=stack.vera),
        ]
        seen_by_vera = (await client.get(api, headers=stack.vera)).json()
        seen_by_bob = (await client.get(api, headers=stack.bob)).json()
        # WHEN alice rotates the key
        rotated = await client.post(f"{api}/gate-cam/rotate-key", headers=stack.alice)
        second = rotated.json()["api_key"]
        after_rotation = (await me(client, stack, first), await me(client, stack, second))
        # ... disables the camera, then enables it again
        disabled = await client.post(f"{api}/gate-cam/disable", headers=stack.alice)
        while_disabled = await me(client, stack, second)
        frame_disabled = await client.post(
            f"{stack.ingest}/v1/frames", params={"captured_at": "2026-12-07T08:31:00Z"},
            headers={"X-API-Key": second, "Content-Type": "image/jpeg"}, content=photo_jpeg(320, 240),
        )
        enabled = await client.post(f"{api}/gate-cam/enable", headers=stack.alice)
        after_enable = await me(client, stack, second)
        # ... and tries what ingest or reporting refuse
        again = await client.post(api, json=camera, headers=stack.alice)
        malformed = await client.post(api, json={"camera_id": "bad id", "site_id": "site-a"}, headers=stack.alice)
        unknown = await client.post(f"{api}/nobody/rotate-key", headers=stack.alice)
    # THEN
    assert [r.status_code for r in refused] == [403] * 6, [r.text for r in refused]
    assert "site site-a" in refused[0].text and "site site-a" in refused[1].text
    assert [(c["camera_id"], c["enabled"]) for c in seen_by_vera] == [("gate-cam", True)] and seen_by_bob == []
    assert "api_key" not in str(seen_by_vera)
    assert rotated.status_code == 200 and second != first
    assert after_rotation == (401, 200)  # the old key fails, the new one works
    assert disabled.status_code == 200 and disabled.json()["enabled"] is False
    assert while_disabled == 403 and frame_disabled.status_code == 403 and "disabled" in frame_disabled.text
    assert enabled.json()["enabled"] is True and after_enable == 200
    assert again.status_code == 409 and "exists" in again.text
    assert malformed.status_code == 422
    assert {tuple(e["loc"]) for e in malformed.json()["detail"]} == {("body", "camera_id"), ("body", "zone_id")}
    assert unknown.status_code == 404
    # AND each change is an audit record in alice's name (ingest's own names its admin token)
    assert await audit_of(stack, "gate-cam") == [
        ("camera.create", "user:alice"), ("camera.rotate_key", "user:alice"), ("camera.disable", "user:alice"),
        ("camera.enable", "user:alice")]


async def test_the_cameras_page_registers_shows_the_key_once_rotates_and_disables(stack: Stack, tmp_path: Path) -> None:
    assert HAVE_CHROMIUM, "Debian chromium is missing: run `make test-deps` (apt-get install chromium)"
    errors: list[str] = []
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page(viewport={"width": 1280, "height": 800})
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("dialog", lambda dialog: dialog.accept())
            # GIVEN alice signed in; the zone editor links the camera page
            await page.goto(f"{stack.reporting}/zones")
            await page.wait_for_url(f"{stack.reporting}/static/login.html**")
            await page.fill("#username", "alice")
            await page.fill("#password", PASSWORD)
            await page.click("button[type=submit]")
            await page.wait_for_url(f"{stack.reporting}/zones**")  # sign-in returns to the page asked for
            await page.click("#controls a[href='/cameras']")
            await page.wait_for_selector("body[data-state=ready]", timeout=15_000)
            assert await page.input_value("#camera-site") == "site-a"  # her only admin site
            # WHEN she registers a camera THEN its key is shown once, and works at ingest
            await page.fill("#camera-id", "dock-cam")
            await page.fill("#camera-zone", "dock")
            await page.fill("#camera-ppe", "HEAD_COVER, HAND_COVER")
            await page.click("#register")
            await page.wait_for_selector("#cameras tr[data-camera-id=dock-cam]")
            first = await page.inner_text("#key-value")
            row = "#cameras tr[data-camera-id=dock-cam]"
            assert "HEAD_COVER, HAND_COVER" in await page.inner_text(row)
            # WHEN she rotates the key THEN a new one is shown
            await page.click(f"{row} button:text-is('Rotate key')")
            await page.wait_for_function("old => document.getElementById('key-value').textContent !== old", arg=first)
            second = await page.inner_text("#key-value")
            # WHEN she disables the camera THEN the row says so
            await page.click(f"{row} button:text-is('Disable')")
            await page.wait_for_selector(f"{row} td.state:text-is('disabled')")
            screenshot = DOCS_SCREENSHOT if os.environ.get("PPE_UPDATE_DOCS_SCREENSHOT") == "1" else tmp_path / "c.png"
            await page.screenshot(path=str(screenshot), full_page=True)
            await page.click("#key-done")
            assert await page.inner_text("#key-value") == ""
        finally:
            await browser.close()
    assert errors == []
    async with httpx.AsyncClient(timeout=10) as client:
        assert (await me(client, stack, first), await me(client, stack, second)) == (401, 403)
        page_for_vera = await client.get(f"{stack.reporting}/cameras", headers=stack.vera)
    assert page_for_vera.status_code == 403
