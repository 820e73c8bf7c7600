"""`python -m services.reporting.main` with only the local stack's environment: serves, consumes, SIGTERM
exits 0, and a schema fuzzer finds no server error."""

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from shared.config import PlatformSettings
from shared.sqs import QueueResolver
from tests.conftest import REPO_ROOT, free_port, wait_http
from tests.integration.reporting.conftest import ADMIN, ANALYST


@dataclass
class Service:
    url: str
    process: "subprocess.Popen[bytes]"
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@pytest.fixture
async def service(
    platform_settings: PlatformSettings, resolver: QueueResolver, migrated_database_url: str, tmp_path: Path
) -> AsyncIterator[Service]:
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
    log_path = tmp_path / "reporting.log"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(  # noqa: ASYNC220 - a child process the test drives from outside
            [sys.executable, "-m", "services.reporting.main"], cwd=REPO_ROOT, env=env, stdout=log_file, stderr=log_file
        )
    running = Service(f"http://127.0.0.1:{port}", process, log_path)
    try:
        await asyncio.to_thread(wait_http, f"{running.url}/healthz", timeout_s=60)
        yield running
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            await asyncio.to_thread(process.wait, 60)


async def test_service_process_ingests_serves_and_stops_cleanly_on_sigterm(
    service: Service, sqs_client: object, resolver: QueueResolver
) -> None:
    from shared.sqs import Publisher
    from tests.integration.reporting.builders import frame_analyzed, person

    await Publisher(sqs_client, resolver, producer="detector").publish(
        frame_analyzed("proc-1", captured_at=datetime.now(UTC), persons=[person(0, head=False, face=True)]),
        correlation_id="proc-1",
    )
    auth = {"Authorization": f"Bearer {ANALYST}"}
    persons = 0
    deadline = time.monotonic() + 60
    async with httpx.AsyncClient(base_url=service.url, timeout=5) as client:
        while time.monotonic() < deadline and persons == 0:
            response = await client.get("/api/v1/compliance/breakdown", headers=auth)
            if response.status_code == 200 and response.json()["rows"]:
                persons = response.json()["rows"][0]["persons_without"]
            await asyncio.sleep(0.3)
        ready = (await client.get("/readyz")).json()
    assert (persons, ready) == (1, {"status": "ready"}), service.log()[-3000:]

    service.process.send_signal(signal.SIGTERM)
    assert await asyncio.to_thread(service.process.wait, 60) == 0, service.log()[-3000:]
    log = service.log()
    assert '"event": "reporting stopped"' in log
    assert '"frame_id": "proc-1"' in log  # structured lines carry the frame id


async def test_fuzzing_the_openapi_schema_finds_no_server_error(service: Service, tmp_path: Path) -> None:
    command = [
        str(Path(sys.executable).parent / "schemathesis"),
        "run",
        f"{service.url}/openapi.json",
        "--checks",
        "not_a_server_error",
        "--max-examples",
        "15",
        "--seed",
        "20261126",
        "--workers",
        "1",
        "--max-time",
        "60",
        "--request-timeout",
        "20",
        "--header",
        f"Authorization: Bearer {ADMIN}",
        "--no-color",
        "--report-dir",
        str(tmp_path),
    ]
    result = await asyncio.to_thread(
        subprocess.run, command, capture_output=True, text=True, timeout=240, cwd=tmp_path, check=False
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:] + service.log()[-3000:]
    # the API links schemathesis derives from the operations (22 with sign-in, tokens, users and audit)
    assert "22 selected / 22 total" in result.stdout and " passed" in result.stdout
