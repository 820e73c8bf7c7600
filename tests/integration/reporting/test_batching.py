"""Frames stored together in one transaction (the frames consumer's batch handler) keep their own outcomes:
new, duplicate, or failed alone - through the real queue (moto) into the real database."""

from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from prometheus_client import REGISTRY
from sqlalchemy.ext.asyncio import AsyncEngine

from services.reporting.adapters.repository import ReportingRepository
from services.reporting.domain import frame_record
from services.reporting.handlers import FrameHandler
from shared.contracts import Envelope, FrameAnalyzed
from shared.sqs import Consumer, Publisher, QueueResolver
from tests.integration.reporting.builders import frame_analyzed, person
from tests.support.queues import drain

T = datetime(2026, 5, 4, 12, 0, tzinfo=UTC)
QUEUE = "frames-analyzed-reporting"


def frame(frame_id: str, *persons_: object) -> FrameAnalyzed:
    return frame_analyzed(frame_id, captured_at=T, persons=list(persons_))  # type: ignore[arg-type]


async def stored_counts(engine: AsyncEngine) -> tuple[int, int, int]:
    async with engine.connect() as conn:
        frames = await conn.scalar(sa.text("SELECT count(*) FROM reporting_frames"))
        events = await conn.scalar(sa.text("SELECT count(*) FROM reporting_person_events"))
        rolled = await conn.scalar(
            sa.text("SELECT sum(persons_without) FROM reporting_rollup_15m WHERE equipment_type = 'ALL'")
        )
    return int(frames or 0), int(events or 0), int(rolled or 0)


def outcomes() -> tuple[float, float]:
    def value(outcome: str) -> float:
        return REGISTRY.get_sample_value("reporting_frames_total", {"outcome": outcome}) or 0.0

    return value("stored"), value("duplicate")


async def send(sqs_client: Any, resolver: QueueResolver, frames: list[FrameAnalyzed]) -> None:
    """Each frame as its own message (a frame sent twice is two messages, as a producer retrying sends it)."""
    publisher = Publisher(sqs_client, resolver, producer="detector")
    for item in frames:
        envelope = Envelope.wrap(item, producer="detector", correlation_id=item.context.frame_id)
        await publisher.send_raw(QUEUE, envelope.to_json())


def consumer(
    sqs_client: Any, resolver: QueueResolver, repository: ReportingRepository, **options: Any
) -> Consumer[Any]:
    handler = FrameHandler(repository)
    return Consumer(sqs_client, resolver, QUEUE, FrameAnalyzed, batch_handler=handler.handle_envelopes, **options)


async def test_a_batch_answers_each_frame(
    sqs_client: Any, resolver: QueueResolver, repository: ReportingRepository, engine: AsyncEngine
) -> None:
    assert await repository.ingest_frame(frame_record(frame("old", person(0, head=False))))
    # GIVEN one receive's worth of frames: two new, one twice, one already stored
    await send(
        sqs_client,
        resolver,
        [
            frame("a", person(0, head=False)),
            frame("b", person(0, head=False), person(1, head=False)),
            frame("c", person(0, head=False)),
            frame("c", person(0, head=False)),
            frame("old", person(0, head=False)),
        ],
    )
    stored_before, duplicates_before = outcomes()
    # WHEN the frames consumer handles them
    frames = consumer(sqs_client, resolver, repository)
    await frames.run(until_idle=True)
    # THEN each frame is counted as new or duplicate, every person once, and every message is deleted
    stored, duplicates = outcomes()
    assert (stored - stored_before, duplicates - duplicates_before) == (3, 2)
    assert await stored_counts(engine) == (4, 5, 5)
    assert frames.processed == 5 and frames.batches < 5
    assert await drain(sqs_client, await resolver.url(QUEUE)) == []


async def test_a_bad_frame_fails_alone(
    sqs_client: Any, resolver: QueueResolver, repository: ReportingRepository, engine: AsyncEngine
) -> None:
    # GIVEN a frame that breaks a constraint (two persons with one Id) between two good ones
    await send(
        sqs_client,
        resolver,
        [
            frame("good-1", person(0, head=False)),
            frame("bad", person(0, head=False), person(0, head=True)),
            frame("good-2", person(0, head=False)),
        ],
    )
    # WHEN they are received in one batch (partial batch failure: the batch is retried frame by frame)
    frames = consumer(sqs_client, resolver, repository)
    await frames.run(until_idle=True)
    # THEN the good frames are stored and the bad one is in the dead-letter queue with the reason
    assert await stored_counts(engine) == (2, 2, 2)
    assert (frames.processed, frames.rejected) == (2, 1)
    dead = await drain(sqs_client, await resolver.url(f"{QUEUE}-dlq"))
    assert len(dead) == 1 and '"bad"' in dead[0]["Body"]
    assert "constraints" in dead[0]["MessageAttributes"]["reject_reason"]["StringValue"]
    assert await drain(sqs_client, await resolver.url(QUEUE)) == []


@pytest.mark.parametrize("batch_size", [1, 4])
async def test_every_frame_is_stored_whatever_the_batch_size(
    sqs_client: Any, resolver: QueueResolver, repository: ReportingRepository, engine: AsyncEngine, batch_size: int
) -> None:
    await send(sqs_client, resolver, [frame(f"f{i}", person(0, head=False)) for i in range(7)])
    frames = consumer(sqs_client, resolver, repository, batch_size=batch_size)
    await frames.run(until_idle=True)
    assert frames.processed == 7 and frames.batches >= (7 if batch_size == 1 else 2)
    assert await stored_counts(engine) == (7, 7, 7)
