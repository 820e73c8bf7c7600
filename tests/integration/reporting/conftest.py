"""Fixtures of reporting's tests: a repository on a fresh migrated database, the seeded data set, the app."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from services.reporting.adapters.repository import ReportingRepository
from services.reporting.api.app import build_app
from services.reporting.api.deps import Tokens
from services.reporting.domain import frame_record
from services.reporting.retention import RetentionJob
from shared.contracts import FrameAnalyzed
from shared.db import make_engine
from shared.migrate import upgrade
from tests.conftest import create_database
from tests.integration.reporting.builders import HEAD, frame_analyzed, person

ANALYST = "analyst-token-0123456789"
ADMIN = "admin-token-0123456789ab"


def seeded_frames() -> list[FrameAnalyzed]:
    """The small data set every aggregate test computes its expectations from, by hand.

    site-a is in Europe/Berlin (UTC+1 in January), site-b has no row (UTC). Required: HEAD+FACE on site-a,
    HEAD only on site-b. Person verdicts (with / without / indeterminate):
      F1 site-a zone-1 cam-1 2026-01-05 22:30Z (Berlin 23:30 Jan 5): p0 with, p1 without (bare head), p2 with
      F2 site-a zone-1 cam-1 2026-01-05 23:10Z (Berlin 00:10 Jan 6): p0 with
      F3 site-a zone-2 cam-2 2026-01-06 08:00Z (Berlin 09:00 Jan 6): p0 indeterminate (face not visible),
                                                                       p1 without, p2 indeterminate (conf 40)
      F4 site-b zone-9 cam-9 2026-01-05 23:10Z (Monday):               p0 with, p1 without
      F5 site-b zone-9 cam-9 2026-01-12 10:00Z (next Monday):          p0 without
    """
    t = lambda *a: datetime(*a, tzinfo=UTC)  # noqa: E731
    return [
        frame_analyzed(
            "F1",
            captured_at=t(2026, 1, 5, 22, 30),
            persons=[
                person(0, head=True, face=True),
                person(1, head=False, face=True),
                person(2, head=True, face=True),
            ],
        ),
        frame_analyzed("F2", captured_at=t(2026, 1, 5, 23, 10), persons=[person(0, head=True, face=True)]),
        frame_analyzed(
            "F3",
            captured_at=t(2026, 1, 6, 8, 0),
            zone_id="zone-2",
            camera_id="cam-2",
            persons=[
                person(0, head=True, face=None),
                person(1, head=False, face=False),
                person(2, confidence=40.0, head=True, face=True),
            ],
        ),
        frame_analyzed(
            "F4",
            captured_at=t(2026, 1, 5, 23, 10),
            site_id="site-b",
            zone_id="zone-9",
            camera_id="cam-9",
            required=(HEAD,),
            persons=[person(0, head=True), person(1, head=False)],
        ),
        frame_analyzed(
            "F5",
            captured_at=t(2026, 1, 12, 10, 0),
            site_id="site-b",
            zone_id="zone-9",
            camera_id="cam-9",
            required=(HEAD,),
            persons=[person(0, head=False)],
        ),
    ]


@pytest.fixture
async def engine(migrated_database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(migrated_database_url)
    yield engine
    await engine.dispose()


@pytest.fixture
def repository(engine: AsyncEngine) -> ReportingRepository:
    return ReportingRepository(engine)


async def seed(repository: ReportingRepository) -> None:
    await repository.set_site_timezone(site_id="site-a", timezone="Europe/Berlin")
    for payload in seeded_frames():
        assert await repository.ingest_frame(frame_record(payload))


@pytest.fixture
async def seeded(repository: ReportingRepository) -> ReportingRepository:
    """The seed in a fresh database, for tests that change it."""
    await seed(repository)
    return repository


@pytest.fixture(scope="module")
async def seeded_database_url(postgres_server_url: str) -> str:
    """The seed in a database shared by one module's read-only tests (saves a migration per test)."""
    url = create_database(postgres_server_url)
    upgrade(url)
    engine = make_engine(url)
    try:
        await seed(ReportingRepository(engine))
    finally:
        await engine.dispose()
    return url


@pytest.fixture
async def client(seeded_database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """Analyst client of the app on the shared seeded database (must not write)."""
    engine = make_engine(seeded_database_url)
    async with app_client(ReportingRepository(engine)) as http:
        yield http
    await engine.dispose()


@pytest.fixture
async def writable_client(seeded: ReportingRepository) -> AsyncIterator[httpx.AsyncClient]:
    """Analyst client of the app on its own seeded database (may write)."""
    async with app_client(seeded) as http:
        yield http


def make_app(repository: ReportingRepository, *, retention_days: int = 3650, s3: object | None = None) -> object:
    retention = RetentionJob(
        repository, s3, bucket="unused", retention_days=retention_days, frames_retention_days=30
    )
    return build_app(repository=repository, tokens=Tokens(analyst=ANALYST, admin=ADMIN), retention=retention)


@asynccontextmanager
async def app_client(repository: ReportingRepository) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=make_app(repository))  # type: ignore[arg-type]
    async with httpx.AsyncClient(
        transport=transport, base_url="http://reporting", headers={"Authorization": f"Bearer {ANALYST}"}
    ) as http:
        yield http
