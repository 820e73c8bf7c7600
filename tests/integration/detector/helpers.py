"""Putting real frames on S3 + the frames-received queue, and reading what the detector published."""

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

from services.detector.adapters.images import inspect_image
from shared.contracts import Envelope, FrameAnalyzed, FrameContext, FrameReceived, FrameRef
from shared.rekognition import EquipmentType, SummarizationAttributes
from shared.s3 import FrameStore, frame_key
from shared.sqs import Publisher, QueueResolver
from tests.support.queues import drain


async def submit_frame(
    data: bytes,
    frame_id: str,
    *,
    store: FrameStore,
    publisher: Publisher,
    camera_id: str = "cam-1",
    site_id: str = "site-1",
    required: tuple[EquipmentType, ...] = (EquipmentType.HEAD_COVER,),
    min_confidence: float = 50.0,
    put: bool = True,
) -> FrameReceived:
    """What ingest does: store the frame and announce it."""
    captured_at = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
    key = frame_key(site_id=site_id, camera_id=camera_id, captured_at=captured_at, frame_id=frame_id, extension="jpg")
    try:
        header = inspect_image(data)
        width, height = header.width, header.height
    except Exception:  # noqa: BLE001 - tests also submit broken frames on purpose
        width, height = 1280, 720
    if put:
        await store.put(key, data, content_type="image/jpeg", metadata={"frame-id": frame_id})
    received = FrameReceived(
        context=FrameContext(
            frame_id=frame_id, camera_id=camera_id, site_id=site_id, zone_id="zone-1", captured_at=captured_at
        ),
        frame=FrameRef(
            bucket=store.bucket,
            key=key,
            content_type="image/jpeg",
            size_bytes=len(data),
            width=width,
            height=height,
            sha256=hashlib.sha256(data).hexdigest(),
        ),
        summarization=SummarizationAttributes(MinConfidence=min_confidence, RequiredEquipmentTypes=list(required)),
    )
    await publisher.publish(received, correlation_id=frame_id)
    return received


async def published(sqs: Any, resolver: QueueResolver, queue: str) -> list[FrameAnalyzed]:
    return [
        Envelope[FrameAnalyzed].model_validate_json(m["Body"]).payload
        for m in await drain(sqs, await resolver.url(queue))
    ]


async def dead_letters(sqs: Any, resolver: QueueResolver) -> dict[str, str]:
    """frame id -> reject reason, from the frames-received DLQ."""
    return {
        json.loads(m["Body"])["correlation_id"]: m["MessageAttributes"]["reject_reason"]["StringValue"]
        for m in await drain(sqs, await resolver.url("frames-received-dlq"))
    }
