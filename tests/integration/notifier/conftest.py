"""Fixtures for the notifier against the real emulator (moto server) and a real, migrated PostgreSQL."""

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from services.notifier.adapters.secret_box import SecretBox
from services.notifier.api import build_app
from services.notifier.config import NotifierSettings
from shared.config import PlatformSettings
from shared.contracts import FrameAnalyzed
from shared.db import make_engine
from shared.sqs import Publisher, QueueResolver
from tests.integration.notifier.receivers import HttpReceiver
from tests.support.images import HEAD_BOXES, photo_jpeg
from tests.support.queues import drain  # noqa: F401 - re-exported: the notifier tests import it from here

ADMIN_TOKEN = "test-admin-token-0123456789"
WEBHOOK_SECRET = "whsec-test-0123456789abcdef"
SECRETS_KEY = "test-secrets-key-0123456789abcdefghijklmnop"
# the receivers of these tests listen on 127.0.0.1: allowed explicitly, as `make run` does
LOOPBACK = "127.0.0.0/8,::1/128"


@pytest.fixture
def notifier_settings(
    platform_settings: PlatformSettings, migrated_database_url: str, monkeypatch: pytest.MonkeyPatch
) -> NotifierSettings:
    monkeypatch.setenv("DATABASE_URL", migrated_database_url)
    monkeypatch.setenv("NOTIFIER_ADMIN_TOKEN", ADMIN_TOKEN)
    monkeypatch.setenv("NOTIFIER_SECRETS_KEY", SECRETS_KEY)
    monkeypatch.setenv("NOTIFIER_WEBHOOK_ALLOWED_NETWORKS", LOOPBACK)
    return NotifierSettings(webhook_backoff_s=0.05, default_cooldown_camera_s=60, default_cooldown_person_s=300)  # type: ignore[call-arg]


@pytest.fixture
async def engine(notifier_settings: NotifierSettings) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(notifier_settings.database_url, pool_size=10)
    yield engine
    await engine.dispose()


@pytest.fixture
async def admin(engine: AsyncEngine, notifier_settings: NotifierSettings) -> AsyncIterator[httpx.AsyncClient]:
    """The rules / channels API, in process, with the admin token."""
    app = build_app(
        engine=engine,
        admin_token=ADMIN_TOKEN,
        default_policy=notifier_settings.default_policy(),
        secret_box=SecretBox(SECRETS_KEY),
        webhook_networks=notifier_settings.webhook_networks(),
    )
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://notifier",
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
    ) as client:
        yield client


@pytest.fixture
async def webhook() -> AsyncIterator[HttpReceiver]:
    receiver = await HttpReceiver(secret=WEBHOOK_SECRET).start()
    yield receiver
    await receiver.stop()


async def add_channel(admin: httpx.AsyncClient, **values: Any) -> int:
    response = await admin.post("/v1/channels", json=values)
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


async def add_webhook(admin: httpx.AsyncClient, receiver: HttpReceiver, name: str = "ops-webhook", **extra: Any) -> int:
    return await add_channel(
        admin, name=name, kind="webhook", target=f"{receiver.url}/hooks/ppe", secret=WEBHOOK_SECRET, **extra
    )


async def publish_frames(sqs: Any, resolver: QueueResolver, frames: list[FrameAnalyzed]) -> None:
    publisher = Publisher(sqs, resolver, producer="detector")
    await publisher.publish_many(
        frames,
        correlation_ids=[f.context.frame_id for f in frames],
        group_ids=[f.context.camera_id for f in frames],
    )


def bare_head_jpeg() -> tuple[bytes, list[tuple[float, float, float, float]]]:
    """A photo-like frame drawn in the test with a large bare head, and its head boxes (left, top, width, height)."""
    return photo_jpeg(960, 540), [HEAD_BOXES[0]]
