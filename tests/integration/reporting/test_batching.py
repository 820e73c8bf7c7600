"""Frames stored together in one transaction keep their own answers (new, duplicate, or failed)."""

import asyncio
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from services.reporting.adapters.repository import ReportingRepository
from services.reporting.batching import FrameBatcher
from services.reporting.domain import frame_record
from tests.integration.reporting.builders import frame_analyzed, person

T = datetime(2026, 5, 4, 12, 0, tzinfo=UTC)


def record(frame_id: str, *persons_: object) -> object:
    return frame_record(frame_analyzed(frame_id, captured_at=T, persons=list(persons_)))  # type: ignore[arg-type]


async def stored_counts(engine: AsyncEngine) -> tuple[int, int, int]:
    async with engine.connect() as conn:
        frames = await conn.scalar(sa.text("SELECT count(*) FROM reporting_frames"))
        events = await conn.scalar(sa.text("SELECT count(*) FROM reporting_person_events"))
        rolled = await conn.scalar(
            sa.text("SELECT sum(persons_without) FROM reporting_rollup_15m WHERE equipment_type = 'ALL'")
        )
    return int(frames or 0), int(events or 0), int(rolled or 0)


async def test_a_batch_answers_each_frame(repository: ReportingRepository, engine: AsyncEngine) -> None:
    assert await repository.ingest_frame(record("old", person(0, head=False)))  # type: ignore[arg-type]
    batcher = FrameBatcher(repository, max_frames=10, max_wait_s=0.05)
    # GIVEN concurrent handlers: two new frames, one frame twice, one already stored
    results = await asyncio.gather(
        batcher.submit(record("a", person(0, head=False))),  # type: ignore[arg-type]
        batcher.submit(record("b", person(0, head=False), person(1, head=False))),  # type: ignore[arg-type]
        batcher.submit(record("c", person(0, head=False))),  # type: ignore[arg-type]
        batcher.submit(record("c", person(0, head=False))),  # type: ignore[arg-type]
        batcher.submit(record("old", person(0, head=False))),  # type: ignore[arg-type]
    )
    # THEN each learns whether it was new, and every person is counted once
    assert results == [True, True, True, False, False]
    assert await stored_counts(engine) == (4, 5, 5)


async def test_a_bad_frame_fails_alone(repository: ReportingRepository, engine: AsyncEngine) -> None:
    batcher = FrameBatcher(repository, max_frames=3, max_wait_s=1.0)
    results = await asyncio.gather(
        batcher.submit(record("good-1", person(0, head=False))),  # type: ignore[arg-type]
        batcher.submit(record("bad", person(0, head=False), person(0, head=True))),  # type: ignore[arg-type]
        batcher.submit(record("good-2", person(0, head=False))),  # type: ignore[arg-type]
        return_exceptions=True,
    )
    assert results[0] is True and results[2] is True
    assert isinstance(results[1], IntegrityError)
    assert await stored_counts(engine) == (2, 2, 2)


@pytest.mark.parametrize("max_frames", [1, 4])
async def test_batches_close_on_size_or_time(
    repository: ReportingRepository, engine: AsyncEngine, max_frames: int
) -> None:
    batcher = FrameBatcher(repository, max_frames=max_frames, max_wait_s=0.01)
    ids = [f"f{i}" for i in range(7)]
    results = await asyncio.gather(*(batcher.submit(record(i, person(0, head=False))) for i in ids))  # type: ignore[arg-type]
    assert results == [True] * 7
    assert await stored_counts(engine) == (7, 7, 7)
