"""Publishing the outbox: messages a transaction wrote (IncidentChanged to reporting, NotificationRequested to
the deliveries queue) go out after commit; a row left unpublished by a crash is published by the next redelivery
of its frame or by the periodic sweep, so nothing is lost (at-least-once; the delivery log absorbs duplicates).
"""

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.notifier.adapters.outbox import OutboxRepository
from shared.contracts import MESSAGE_TYPES, Payload
from shared.sqs import Publisher


@dataclass(frozen=True)
class Outgoing:
    """An outbox row written in the current transaction."""

    id: int
    frame_id: str
    payload: Payload


async def enqueue(conn: AsyncConnection, camera_id: str, frame_id: str, payload: Payload) -> Outgoing:
    """Write `payload` to the outbox in the caller's transaction; publish the result after commit."""
    return Outgoing(await OutboxRepository(conn).add(camera_id, frame_id, payload), frame_id, payload)


async def publish_written(engine: AsyncEngine, publisher: Publisher, written: list[Outgoing]) -> None:
    """Publish outbox rows just committed by this worker (no re-read), then mark them sent.

    If publishing fails the rows stay unsent: the frame's redelivery or the sweep publishes them. Rows published
    but not yet marked (a crash in between) are published again: at-least-once, the delivery log dedupes.
    """
    await publisher.publish_many([o.payload for o in written], correlation_ids=[o.frame_id for o in written])
    async with engine.begin() as conn:
        await OutboxRepository(conn).mark_published([o.id for o in written], unless_marked=True)


async def publish_outbox(
    engine: AsyncEngine,
    publisher: Publisher,
    *,
    camera_id: str | None = None,
    frame_id: str | None = None,
    frame_ids: list[str] | None = None,
    older_than_s: float | None = None,
    limit: int = 200,
) -> int:
    """Publish unsent outbox rows (of some frames of a camera, or any older than `older_than_s`), mark them sent."""
    async with engine.begin() as conn:
        outbox = OutboxRepository(conn)
        rows = await outbox.take_unsent(
            camera_id=camera_id,
            frame_ids=frame_ids if frame_ids is not None else [frame_id],
            older_than_s=older_than_s,
            limit=limit,
        )
        if not rows:
            return 0
        payloads = [MESSAGE_TYPES[row.message_type].model_validate(row.payload) for row in rows]
        await publisher.publish_many(payloads, correlation_ids=[row.frame_id for row in rows])
        await outbox.mark_published([row.id for row in rows])
    return len(rows)
