"""The zone editor end to end, through real processes: ingest and reporting as `python -m services.<x>.main`,
the moto server for S3 / SQS, PostgreSQL with the migrations, and Debian's Chromium driven by Playwright.

A camera is registered at ingest and posts a frame through ingest; the frame's analysis arrives on reporting's
queue as the detector would publish it (the test writes that one message: the person box of the drawn worker),
reporting makes the face-blurred snapshot, and the editor draws, saves and shows zones that ingest stores.
Needs /usr/bin/chromium (`make test-deps`).
"""

import asyncio
import os
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import cv2
import httpx
import numpy as np
import pytest
from playwright.async_api import Page, async_playwright

from shared.config import PlatformSettings
from shared.contracts import FrameAnalyzed, FrameContext, FrameRef
from shared.rekognition import DetectProtectiveEquipmentResponse, SummarizationAttributes
from shared.sqs import Publisher, QueueResolver
from tests.integration.reporting.conftest import ADMIN, ANALYST
from tests.integration.reporting.test_dashboard import CHROMIUM, CHROMIUM_ARGS
from tests.support.images import HEAD_BOXES, photo_jpeg
from tests.support.processes import new_secret, running_service, service_env
from tests.unit.notifier.builders import person

CAMERA = "yard-cam"
DOCS_SCREENSHOT = Path(__file__).resolve().parents[3] / "docs" / "zone-editor.png"
# the zone drawn in the browser, as ratios of the frame (a hazard area at the foreground worker's feet)
HAZARD = [(0.30, 0.55), (0.70, 0.55), (0.72, 0.97), (0.28, 0.97)]
BOW_TIE = [(0.1, 0.1), (0.4, 0.4), (0.4, 0.1), (0.1, 0.4)]


@dataclass
class Stack:
    ingest: str
    reporting: str
    ingest_token: str
    frame: dict[str, Any]
    photo: bytes


@pytest.fixture
def processes(
    platform_settings: PlatformSettings, provisioned: dict[str, str], migrated_database_url: str, tmp_path: Path
) -> Iterator[tuple[str, str, str]]:
    ingest_token = new_secret()
    with ExitStack() as stack:
        ingest = stack.enter_context(
            running_service(
                "ingest",
                service_env(platform_settings, migrated_database_url, INGEST_ADMIN_TOKEN=ingest_token),
                log_path=tmp_path / "ingest.log",
            )
        )
        reporting = stack.enter_context(
            running_service(
                "reporting",
                service_env(
                    platform_settings,
                    migrated_database_url,
                    REPORTING_ANALYST_TOKEN=ANALYST,
                    REPORTING_ADMIN_TOKEN=ADMIN,
                    REPORTING_INGEST_URL=ingest,
                    REPORTING_INGEST_ADMIN_TOKEN=ingest_token,
                ),
                log_path=tmp_path / "reporting.log",
            )
        )
        yield ingest, reporting, ingest_token


@pytest.fixture
async def stack(processes: tuple[str, str, str], sqs_client: Any, resolver: QueueResolver) -> AsyncIterator[Stack]:
    ingest, reporting, token = processes
    admin = {"Authorization": f"Bearer {token}"}
    photo = photo_jpeg(960, 540)
    async with httpx.AsyncClient(timeout=10) as client:
        # GIVEN a camera registered at ingest that posted one frame of the drawn workers
        created = await client.post(
            f"{ingest}/v1/admin/cameras",
            headers=admin,
            json={"camera_id": CAMERA, "site_id": "site-z", "zone_id": "yard", "required_ppe": ["HEAD_COVER"]},
        )
        assert created.status_code == 201, created.text
        posted = await client.post(
            f"{ingest}/v1/frames",
            params={"captured_at": "2026-12-07T08:30:00Z", "client_frame_id": "f-1"},
            headers={"X-API-Key": created.json()["api_key"], "Content-Type": "image/jpeg"},
            content=photo,
        )
        assert posted.status_code == 202, posted.text
        frame = posted.json()
        # ... and its analysis on reporting's queue: the three workers, each head at the top of its person box
        workers = [
            person(i, left=left, top=top, width=width, height=min(height / 0.3, 1.0 - top), hard_hat=False)
            for i, (left, top, width, height) in enumerate(HEAD_BOXES)
        ]
        analysed = FrameAnalyzed(
            context=FrameContext(
                frame_id=frame["frame_id"], camera_id=CAMERA, site_id="site-z", zone_id="yard",
                captured_at=datetime(2026, 12, 7, 8, 30, tzinfo=UTC),
            ),
            frame=FrameRef(
                bucket=frame["bucket"], key=frame["key"], content_type="image/jpeg", size_bytes=frame["size_bytes"],
                width=frame["width"], height=frame["height"],
            ),
            summarization=SummarizationAttributes(MinConfidence=80, RequiredEquipmentTypes=["HEAD_COVER"]),
            ppe=DetectProtectiveEquipmentResponse(
                ProtectiveEquipmentModelVersion="test", Persons=workers
            ),
        )
        await Publisher(sqs_client, resolver, producer="detector").publish(analysed, correlation_id=frame["frame_id"])
        # WHEN reporting has stored it, the camera's blurred snapshot is there
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            shot = await client.get(
                f"{reporting}/api/v1/cameras/{CAMERA}/snapshot", headers={"Authorization": f"Bearer {ANALYST}"}
            )
            if shot.status_code == 200:
                break
            await asyncio.sleep(0.3)
        assert shot.status_code == 200, shot.text
    yield Stack(ingest, reporting, token, frame, photo)


def _detail(image: np.ndarray, box: tuple[float, float, float, float]) -> float:
    h, w = image.shape[:2]
    left, top, width, height = box
    region = image[int(top * h) : int((top + height) * h), int(left * w) : int((left + width) * w)]
    return float(cv2.Laplacian(cv2.cvtColor(region, cv2.COLOR_BGR2GRAY), cv2.CV_64F).var())


async def test_snapshot_is_the_latest_frame_with_the_face_blurred(stack: Stack) -> None:
    async with httpx.AsyncClient(timeout=10) as client:
        shot = await client.get(
            f"{stack.reporting}/api/v1/cameras/{CAMERA}/snapshot", headers={"Authorization": f"Bearer {ANALYST}"}
        )
        anonymous = await client.get(f"{stack.reporting}/api/v1/cameras/{CAMERA}/snapshot")
        unknown = await client.get(
            f"{stack.reporting}/api/v1/cameras/nobody/snapshot", headers={"Authorization": f"Bearer {ANALYST}"}
        )
    assert shot.headers["content-type"] == "image/jpeg" and shot.headers["x-frame-id"] == stack.frame["frame_id"]
    assert anonymous.status_code == 401
    assert unknown.status_code == 404 and "post a frame" in unknown.json()["detail"]
    snapshot = cv2.imdecode(np.frombuffer(shot.content, np.uint8), cv2.IMREAD_COLOR)
    original = cv2.imdecode(np.frombuffer(stack.photo, np.uint8), cv2.IMREAD_COLOR)
    assert snapshot.shape == original.shape
    assert shot.content != stack.photo
    for box in HEAD_BOXES:
        head = _detail(snapshot, box) / _detail(original, box)
        assert head < 0.2, f"the head at {box} keeps {head:.0%} of its detail"
    floor = _detail(snapshot, (0.0, 0.75, 0.25, 0.2)) / _detail(original, (0.0, 0.75, 0.25, 0.2))
    assert floor > 0.5, "the scene itself must stay visible to draw zones on"


async def _click(page: Page, points: list[tuple[float, float]]) -> None:
    box = await page.locator("#overlay").bounding_box()
    assert box is not None
    for x, y in points:
        await page.mouse.click(box["x"] + x * box["width"], box["y"] + y * box["height"])


async def _status(page: Page, contains: str) -> str:
    await page.wait_for_function(
        "text => document.getElementById('status').textContent.includes(text)", arg=contains, timeout=15_000
    )
    return await page.locator("#status").inner_text()


async def test_editor_draws_saves_and_shows_zones_stored_at_ingest(stack: Stack, tmp_path: Path) -> None:
    assert os.path.exists(CHROMIUM), "Debian chromium is missing: run `make test-deps` (apt-get install chromium)"
    external: list[str] = []
    errors: list[str] = []
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page(viewport={"width": 1280, "height": 860})
            # offline: every request goes to reporting (the snapshot is shown from a blob: URL of the fetched bytes)
            local = (stack.reporting, f"blob:{stack.reporting}")
            page.on("request", lambda r: None if r.url.startswith(local) else external.append(r.url))
            page.on("pageerror", lambda e: errors.append(str(e)))
            await page.goto(f"{stack.reporting}/zones#token={ADMIN}")
            await page.wait_for_selector("body[data-state=ready]", timeout=15_000)
            assert await page.evaluate("() => document.getElementById('frame').naturalWidth") == 960
            assert "hi_vis_vest" in await page.locator("#equipment").inner_text()

            # bad input 1: two points cannot close
            await _click(page, HAZARD[:2])
            await page.click("#close")
            assert "at least 3 points" in await _status(page, "at least 3 points")
            await page.click("#clear")

            # bad input 2: a bow tie is refused by the server with the crossing edges named; nothing is stored
            await _click(page, BOW_TIE)
            await page.click("#close")
            await page.fill("#zone-id", "bowtie")
            await page.click("#add-zone")
            await page.click("#save")
            refused = await _status(page, "not saved")
            assert "edges 1 and 3 cross" in refused and "intersects itself" in refused
            await page.click("#zone-list li button")  # remove the refused zone from the draft layout

            # GIVEN a hazard area drawn at the worker's feet requiring a hard hat and a hi-vis vest in day hours
            await _click(page, HAZARD)
            await page.click("#close")
            await page.fill("#zone-id", "hazard")
            await page.check("#equipment input[value=HEAD_COVER]")
            await page.check("#equipment input[value=hi_vis_vest]")
            await page.fill("#min-confidence", "90")
            await page.fill("#active-from", "06:00")
            await page.fill("#active-to", "18:00")
            await page.fill("#timezone", "Europe/Berlin")
            await page.click("#add-zone")
            # WHEN it is saved and the page reloaded
            await page.click("#save")
            assert "saved 1 zone(s)" in await _status(page, "saved")
            await page.reload()
            await page.wait_for_selector("body[data-state=ready]", timeout=15_000)
            # THEN the saved zone is drawn over the frame where it was drawn
            overlay = page.locator("#overlay polygon[data-zone-id=hazard]")
            points = [tuple(map(float, p.split(","))) for p in (await overlay.get_attribute("points") or "").split()]
            assert np.allclose(points, HAZARD, atol=0.005), points
            assert "hazard: HEAD_COVER, hi_vis_vest, MinConfidence 90" in await page.locator("#zone-list").inner_text()
            screenshot = DOCS_SCREENSHOT if os.environ.get("PPE_UPDATE_DOCS_SCREENSHOT") == "1" else tmp_path / "z.png"
            await page.screenshot(path=str(screenshot), full_page=True)

            # the analyst token (a global analyst) may look but not save
            await page.goto(f"{stack.reporting}/zones#token={ANALYST}&camera={CAMERA}")
            await page.reload()
            await page.wait_for_selector("body[data-state=ready]", timeout=15_000)
            await page.click("#save")
            assert "needs the admin role" in await _status(page, "admin role")
        finally:
            await browser.close()
    assert errors == [] and external == []

    # AND ingest stored the zone in normalised image coordinates, with the PPE, MinConfidence and hours chosen
    async with httpx.AsyncClient(timeout=10) as client:
        camera = (
            await client.get(
                f"{stack.ingest}/v1/admin/cameras/{CAMERA}", headers={"Authorization": f"Bearer {stack.ingest_token}"}
            )
        ).json()
    [zone] = camera["zones"]["zones"]
    assert np.allclose([(p["x"], p["y"]) for p in zone["polygon"]], HAZARD, atol=0.005)
    assert sorted(zone["required_equipment"]) == ["HEAD_COVER", "hi_vis_vest"]
    assert (zone["min_confidence"], zone["active_from"], zone["active_to"], zone["timezone"]) == (
        90.0, "06:00:00", "18:00:00", "Europe/Berlin"
    )
    assert camera["zones"]["outside"] == "camera"


BAD_ZONES = [
    ({"polygon": [{"x": 0.1, "y": 0.1}, {"x": 0.5, "y": 0.1}]}, "at least 3"),
    ({"polygon": [{"x": x, "y": y} for x, y in BOW_TIE]}, "edges 1 and 3 cross"),
    ({"polygon": [{"x": x, "y": y} for x, y in HAZARD], "required_equipment": ["safety_goggles"]}, "unknown equipment"),
]


async def test_bad_zones_and_wrong_roles_are_refused_with_a_clear_message_and_change_nothing(stack: Stack) -> None:
    admin = {"Authorization": f"Bearer {ADMIN}"}
    analyst = {"Authorization": f"Bearer {ANALYST}"}
    ingest_admin = {"Authorization": f"Bearer {stack.ingest_token}"}
    good = {"zones": [{"zone_id": "ok", "polygon": [{"x": x, "y": y} for x, y in HAZARD]}]}
    async with httpx.AsyncClient(timeout=10) as client:
        for zone, message in BAD_ZONES:
            layout = {"zones": [{"zone_id": "bad", **zone}]}
            # refused by reporting before it calls ingest, and by ingest itself when called directly
            for response in (
                await client.put(f"{stack.reporting}/api/v1/cameras/{CAMERA}/zones", json=layout, headers=admin),
                await client.put(f"{stack.ingest}/v1/admin/cameras/{CAMERA}/zones", json=layout, headers=ingest_admin),
            ):
                assert response.status_code == 422 and message in response.text.lower(), response.text
        assert "hi_vis_vest" in response.text  # the unknown-equipment message lists the known names
        assert (await client.get(f"{stack.reporting}/api/v1/cameras")).status_code == 401
        listed = await client.get(f"{stack.reporting}/api/v1/cameras", headers=analyst)
        as_analyst = await client.put(f"{stack.reporting}/api/v1/cameras/{CAMERA}/zones", json=good, headers=analyst)
        unknown = await client.put(f"{stack.reporting}/api/v1/cameras/nobody/zones", json=good, headers=admin)
        camera = (await client.get(f"{stack.ingest}/v1/admin/cameras/{CAMERA}", headers=ingest_admin)).json()
    assert [c["camera_id"] for c in listed.json()] == [CAMERA] and "api_key" not in listed.text
    assert as_analyst.status_code == 403
    assert unknown.status_code == 404 and "nobody" in unknown.text
    assert camera["zones"] is None  # nothing of the above changed the camera
