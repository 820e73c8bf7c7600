"""Builders of valid contract objects for tests (values a test asserts on are passed in explicitly)."""

from datetime import UTC, datetime

from shared.contracts import FrameContext, FrameReceived, FrameRef
from shared.rekognition import EquipmentType, SummarizationAttributes


def frame_received(
    frame_id: str,
    *,
    camera_id: str = "cam-1",
    site_id: str = "site-1",
    zone_id: str = "zone-1",
    bucket: str = "frames",
    key: str | None = None,
    width: int = 1280,
    height: int = 720,
    required: tuple[EquipmentType, ...] = (EquipmentType.HEAD_COVER,),
    min_confidence: float = 80.0,
) -> FrameReceived:
    return FrameReceived(
        context=FrameContext(
            frame_id=frame_id,
            camera_id=camera_id,
            site_id=site_id,
            zone_id=zone_id,
            captured_at=datetime(2026, 11, 26, 8, 30, tzinfo=UTC),
        ),
        frame=FrameRef(
            bucket=bucket,
            key=key or f"frames/{site_id}/{camera_id}/2026/11/26/{frame_id}.jpg",
            content_type="image/jpeg",
            size_bytes=1000,
            width=width,
            height=height,
        ),
        summarization=SummarizationAttributes(MinConfidence=min_confidence, RequiredEquipmentTypes=list(required)),
    )
