"""Ingest in process (ASGI) on the real moto server and a real PostgreSQL with migrations applied."""

import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from services.ingest.api import IngestDeps, build_app
from services.ingest.config import IngestSettings
from services.ingest.main import open_deps
from shared.config import PlatformSettings

ADMIN_TOKEN = "test-admin-token-" + "x" * 16
CAPTURED_AT = datetime(2026, 11, 26, 8, 30, tzinfo=UTC).isoformat()


@dataclass
class Ingest:
    client: httpx.AsyncClient
    deps: IngestDeps

    async def register(self, **overrides: Any) -> tuple[str, str]:
        """Register a camera with a unique id; returns (camera_id, api_key)."""
        body = {"camera_id": f"cam-{uuid.uuid4().hex[:10]}", "site_id": "site-a", "zone_id": "gate", **overrides}
        response = await self.client.post("/v1/admin/cameras", json=body, headers=admin_headers())
        assert response.status_code == 201, response.text
        return body["camera_id"], response.json()["api_key"]

    async def post_jpeg(
        self, camera_id: str, key: str, data: bytes, *, content_type: str = "image/jpeg", **params: Any
    ) -> httpx.Response:
        query = {"camera_id": camera_id, "captured_at": CAPTURED_AT, **params}
        return await self.client.post(
            "/v1/frames", params=query, content=data, headers={"X-API-Key": key, "Content-Type": content_type}
        )


def admin_headers() -> dict[str, str]:
    return {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def ingest_settings(monkeypatch: pytest.MonkeyPatch, database_url: str, **env: str) -> IngestSettings:
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("INGEST_ADMIN_TOKEN", ADMIN_TOKEN)
    monkeypatch.setenv("INGEST_AWS_TIMEOUT_S", "2")
    monkeypatch.setenv("INGEST_RETRY_AFTER_S", "7")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return IngestSettings()


async def running(settings: IngestSettings) -> AsyncIterator[Ingest]:
    async with open_deps(settings) as deps:
        transport = httpx.ASGITransport(app=build_app(deps))
        async with httpx.AsyncClient(transport=transport, base_url="http://ingest", timeout=30) as client:
            yield Ingest(client, deps)


@pytest.fixture
async def ingest(
    platform_settings: PlatformSettings,
    provisioned: dict[str, str],
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[Ingest]:
    async for harness in running(ingest_settings(monkeypatch, database_url)):
        yield harness


async def queued(sqs: Any, url: str) -> list[dict[str, Any]]:
    """Every message waiting on the queue (received and deleted), bodies parsed."""
    bodies: list[dict[str, Any]] = []
    while True:
        response = await sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
        batch = response.get("Messages", [])
        if not batch:
            return bodies
        for message in batch:
            bodies.append(json.loads(message["Body"]))
            await sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


async def stored_keys(s3: Any, bucket: str, prefix: str = "frames/") -> list[str]:
    response = await s3.list_objects_v2(Bucket=bucket, Prefix=prefix)
    return [item["Key"] for item in response.get("Contents", [])]
