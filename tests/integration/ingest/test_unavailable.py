"""S3 or SQS down: 503 with Retry-After, and nothing half-written (no row, no object, no message)."""

import subprocess
import sys
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from services.ingest.adapters.db import frames
from shared.config import PlatformSettings
from devstack.emulator import command as emulator_command
from shared.sqs import QueueResolver
from tests.conftest import free_port, wait_http
from tests.integration.ingest.conftest import ingest_settings, queued, running, stored_keys
from tests.unit.ingest.images import jpeg


async def frame_rows(database_url: str, camera_id: str) -> int:
    engine = create_async_engine(database_url)
    async with engine.connect() as connection:
        count = (
            await connection.execute(
                sa.select(sa.func.count()).select_from(frames).where(frames.c.camera_id == camera_id)
            )
        ).scalar_one()
    await engine.dispose()
    return int(count)


def assert_503(response: Any) -> None:
    assert response.status_code == 503, response.text
    assert response.json()["code"] == "dependency_unavailable"
    assert response.headers["Retry-After"] == "7"


async def test_missing_bucket_gives_503_and_leaves_no_row_or_message(
    platform_settings: PlatformSettings,
    provisioned: dict[str, str],
    database_url: str,
    sqs_client: Any,
    resolver: QueueResolver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = ingest_settings(monkeypatch, database_url, PPE_FRAMES_BUCKET="no-such-bucket-for-ingest")
    async for ingest in running(settings):
        camera_id, key = await ingest.register()
        response = await ingest.post_jpeg(camera_id, key, jpeg(), client_frame_id="retry-me")
        assert_503(response)
        ready = await ingest.client.get("/readyz")
        assert ready.status_code == 503 and ready.json()["checks"]["s3"] == "unavailable"  # no exception text
    assert await frame_rows(database_url, camera_id) == 0
    assert await queued(sqs_client, await resolver.url("frames-received")) == []


async def test_missing_queue_gives_503_and_the_stored_object_is_removed(
    platform_settings: PlatformSettings,
    provisioned: dict[str, str],
    database_url: str,
    s3_client: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN a real bucket but a queue prefix under which no queue exists
    settings = ingest_settings(monkeypatch, database_url, PPE_QUEUE_PREFIX="no-such-prefix-")
    async for ingest in running(settings):
        camera_id, key = await ingest.register()
        # WHEN a frame is posted
        response = await ingest.post_jpeg(camera_id, key, jpeg(), client_frame_id="retry-me")
        # THEN 503, and the object written before the failed send is gone again
        assert_503(response)
        ready = await ingest.client.get("/readyz")
        assert ready.status_code == 503 and ready.json()["checks"]["sqs"] == "unavailable"  # no exception text
    assert await stored_keys(s3_client, settings.frames_bucket) == []
    assert await frame_rows(database_url, camera_id) == 0


async def test_stopped_emulator_gives_503_and_leaves_no_row(
    platform_settings: PlatformSettings, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from shared.aws import aws_client
    from shared.topology import provision_buckets, provision_queues

    # GIVEN ingest pointed at its own moto server, provisioned, which is then stopped
    port = free_port()
    command = emulator_command(port)
    endpoint = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # noqa: ASYNC220
    try:
        wait_http(f"{endpoint}/moto-api/")
        settings = ingest_settings(monkeypatch, database_url, AWS_ENDPOINT_URL=endpoint)
        async with aws_client("sqs", settings) as sqs, aws_client("s3", settings) as s3:
            await provision_queues(sqs, prefix=settings.queue_prefix)
            await provision_buckets(s3, {"frames_bucket": settings.frames_bucket}, region=settings.aws_region)
        async for ingest in running(settings):
            camera_id, key = await ingest.register()
            assert (await ingest.client.get("/readyz")).status_code == 200
            process.terminate()
            process.wait(timeout=10)

            # WHEN a frame is posted while S3 and SQS are unreachable
            response = await ingest.post_jpeg(camera_id, key, jpeg(), client_frame_id="during-outage")

            # THEN 503 with Retry-After, and no ledger row survives
            assert_503(response)
            assert (await ingest.client.get("/readyz")).status_code == 503
            assert await frame_rows(database_url, camera_id) == 0
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=10)
