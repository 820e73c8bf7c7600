"""The frames consumer applies a camera's received frames as one batch: same incidents as frame by frame,
duplicates and malformed messages in the middle of a batch handled as before."""

import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from services.notifier.adapters import db
from services.notifier.config import NotifierSettings
from services.notifier.main import drain_until_idle, worker
from shared.contracts import Envelope
from shared.sqs import Publisher, QueueResolver
from tests.integration.notifier.conftest import publish_frames
from tests.unit.notifier.builders import hat_scenario


async def incident_facts(engine: AsyncEngine, camera_id: str) -> list[tuple[Any, ...]]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            sa.select(db.incidents)
            .where(db.incidents.c.camera_id == camera_id)
            .order_by(db.incidents.c.started_at)
        )
        return [(r.status, r.started_at, r.resolved_at, r.missing_equipment, r.alerted) for r in rows]


async def test_batched_frames_give_the_same_incidents_as_frame_by_frame(
    notifier_settings: NotifierSettings, engine: AsyncEngine, sqs_client: Any, resolver: QueueResolver
) -> None:
    # GIVEN the same 12 s of frames for two cameras; cam-b's are sent with a duplicate and a malformed
    # message in the middle of its group
    one_by_one = hat_scenario(camera_id="cam-a", before_s=2, without_s=6, after_s=4, fps=2, prefix="a")
    batched = hat_scenario(camera_id="cam-b", before_s=2, without_s=6, after_s=4, fps=2, prefix="b")
    publisher = Publisher(sqs_client, resolver, producer="detector")
    await publish_frames(sqs_client, resolver, batched[:5])
    duplicate = Envelope.wrap(batched[3], producer="detector", correlation_id=batched[3].context.frame_id)
    await publisher.send_raw(
        "frames-analyzed-notifier", duplicate.to_json(), group_id="cam-b", dedup_id=str(uuid.uuid4())
    )
    await publisher.send_raw("frames-analyzed-notifier", '{"payload": "nonsense"}', group_id="cam-b")
    await publish_frames(sqs_client, resolver, batched[5:])

    async with worker(notifier_settings, engine) as w:
        # WHEN cam-a's frames go through the handler one at a time, and cam-b's through the consumer
        for frame in one_by_one:
            await w.frame_handler.handle_batch([frame])
        await drain_until_idle(w)

        # THEN the consumer handled every well-formed message, several frames per transaction
        assert w.frames.processed == len(batched) + 1
        assert w.frames.batches < w.frames.processed
        assert w.frames.rejected == 1

    # ... and both cameras have the same incidents (one, opened after the minimum time, resolved)
    facts_a, facts_b = await incident_facts(engine, "cam-a"), await incident_facts(engine, "cam-b")
    assert len(facts_b) == 1 and facts_b[0][0] == "resolved"
    assert facts_a == facts_b
    async with engine.connect() as conn:
        applied = await conn.scalar(
            sa.select(sa.func.count()).select_from(db.applied_frames).where(db.applied_frames.c.camera_id == "cam-b")
        )
    assert applied == len(batched)
