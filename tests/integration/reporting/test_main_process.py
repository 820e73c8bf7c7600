"""`python -m services.reporting.main` with only the local stack's environment: serves, consumes, SIGTERM exits 0."""

import asyncio
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from typing import Any

import httpx

from shared.config import PlatformSettings
from shared.sqs import Publisher, QueueResolver
from tests.conftest import REPO_ROOT, free_port
from tests.integration.reporting.builders import frame_analyzed, person
from tests.integration.reporting.conftest import ADMIN, ANALYST


async def test_service_process_ingests_serves_and_stops_cleanly_on_sigterm(
    platform_settings: PlatformSettings, sqs_client: Any, resolver: QueueResolver, migrated_database_url: str
) -> None:
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": migrated_database_url,
        "REPORTING_PORT": str(port),
        "REPORTING_HOST": "127.0.0.1",
        "REPORTING_ANALYST_TOKEN": ANALYST,
        "REPORTING_ADMIN_TOKEN": ADMIN,
        "PPE_LOG_FORMAT": "json",
    }
    captured = datetime.now(UTC)
    await Publisher(sqs_client, resolver, producer="detector").publish(
        frame_analyzed("proc-1", captured_at=captured, persons=[person(0, head=False, face=True)]),
        correlation_id="proc-1",
    )
    process = subprocess.Popen(  # noqa: ASYNC220 - a child process the test drives from outside
        [sys.executable, "-m", "services.reporting.main"],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        auth = {"Authorization": f"Bearer {ANALYST}"}
        deadline = time.monotonic() + 60
        persons = 0
        async with httpx.AsyncClient(base_url=base, timeout=5) as client:
            while time.monotonic() < deadline and persons == 0:
                try:
                    response = await client.get("/api/v1/compliance/breakdown", headers=auth)
                    if response.status_code == 200 and response.json()["rows"]:
                        persons = response.json()["rows"][0]["persons_without"]
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.3)
            ready = (await client.get("/readyz")).json() if persons else None
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=60)
    log = output.decode()
    assert (persons, ready) == (1, {"status": "ready"}), log[-3000:]
    assert process.returncode == 0, log[-3000:]
    assert '"event": "reporting stopped"' in log
    assert "proc-1" in log  # structured lines carry the frame id
