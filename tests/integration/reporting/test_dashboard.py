"""The dashboard in headless Debian Chromium (driven by Playwright), on the seeded data set.

Needs /usr/bin/chromium (`apt-get install -y chromium`, done by `make test-setup` and .ci/run). Playwright
never downloads a browser here: it launches the system one.
"""

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import async_playwright

from services.reporting.adapters.repository import ReportingRepository
from shared.http import EmbeddedServer
from tests.conftest import free_port
from tests.integration.reporting.builders import incident
from tests.integration.reporting.conftest import ANALYST, make_app, seeded_frames

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# The screenshot in the docs is refreshed only on request (PPE_UPDATE_DOCS_SCREENSHOT=1), so a test run
# never changes a tracked file.
DOCS_SCREENSHOT = Path(__file__).resolve().parents[3] / "docs" / "reporting-dashboard.png"


@pytest.fixture
async def served(seeded: ReportingRepository) -> AsyncIterator[str]:
    for frame in seeded_frames()[:3]:
        await seeded.record_incident(
            incident(
                f"inc-{frame.context.frame_id}",
                started_at=frame.context.captured_at,
                camera_id=frame.context.camera_id,
                zone_id=frame.context.zone_id,
                severity="critical" if frame.context.frame_id == "F3" else "warning",
            ),
            changed_at=frame.context.captured_at,
        )
    port = free_port()
    server = EmbeddedServer(make_app(seeded), host="127.0.0.1", port=port, access_log=True)
    task = asyncio.create_task(server.serve())
    for _ in range(400):  # uvicorn has no "started" event to await
        if server.started:
            break
        await asyncio.sleep(0.05)
    assert server.started, "uvicorn did not start within 20 s"
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    await task


async def test_dashboard_renders_chart_tables_offline(served: str, tmp_path: Path) -> None:
    assert os.path.exists(CHROMIUM), "Debian chromium is missing: run `make test-deps` (apt-get install chromium)"
    url = f"{served}/#token={ANALYST}&site=site-a&bucket=hour&start=2026-01-05T20:00:00Z&end=2026-01-06T12:00:00Z"
    external: list[str] = []
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page(viewport={"width": 1200, "height": 760})
            # Offline: any request that leaves this service fails the test.
            page.on("request", lambda r: None if r.url.startswith(served) else external.append(r.url))
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            await page.goto(url)
            await page.wait_for_selector("body[data-state=ready]", timeout=15_000)

            # Chart.js drew the three hourly points of site-a (Berlin): 23:00, 00:00, 09:00 local.
            chart = await page.evaluate(
                "() => { const c = Chart.getChart('trend-chart');"
                " return {labels: c.data.labels, data: c.data.datasets[0].data}; }"
            )
            assert chart["labels"] == ["2026-01-05 23:00", "2026-01-06 00:00", "2026-01-06 09:00"]
            assert [round(v, 1) for v in chart["data"]] == [66.7, 100.0, 0.0]
            drawn = await page.evaluate(
                "() => { const c = document.getElementById('trend-chart');"
                " const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
                " let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++; return n; }"
            )
            assert drawn > 1000  # pixels actually painted on the canvas

            rows = await page.locator("#breakdown-table tbody tr").all_inner_texts()
            assert [r.split("\t") for r in rows] == [
                ["site-a", "zone-1", "cam-1", "3", "1", "0", "75.0 %"],
                ["site-a", "zone-2", "cam-2", "0", "1", "2", "0.0 %"],
            ]
            incidents = await page.locator("#incidents-table tbody tr").all_inner_texts()
            assert [r.split("\t")[1] for r in incidents] == [
                "site-a / zone-2 / cam-2",
                "site-a / zone-1 / cam-1",
                "site-a / zone-1 / cam-1",
            ]
            screenshot = DOCS_SCREENSHOT if os.environ.get("PPE_UPDATE_DOCS_SCREENSHOT") == "1" else tmp_path / "d.png"
            await page.screenshot(path=str(screenshot), full_page=True)
            assert screenshot.stat().st_size > 10_000
        finally:
            await browser.close()
    assert errors == []
    assert external == []
