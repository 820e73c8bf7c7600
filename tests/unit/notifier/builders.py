"""Builders of FrameAnalyzed payloads for the notifier tests, from the contract models."""

from datetime import UTC, datetime, timedelta

from shared.contracts import AttributedCustomLabel, FrameAnalyzed, FrameContext, FrameRef, ZoneLayout
from shared.rekognition import (
    BodyPart,
    BodyPartName,
    BoundingBox,
    CoversBodyPart,
    CustomLabel,
    DetectProtectiveEquipmentResponse,
    EquipmentDetection,
    EquipmentType,
    ProtectiveEquipmentPerson,
    SummarizationAttributes,
    summarize,
)

T0 = datetime(2026, 11, 26, 8, 30, tzinfo=UTC)


def person(
    person_id: int = 0,
    *,
    left: float = 0.3,
    top: float = 0.2,
    width: float = 0.2,
    height: float = 0.6,
    hard_hat: bool | None = True,
    head_confidence: float = 99.0,
    person_confidence: float = 99.0,
) -> ProtectiveEquipmentPerson:
    """A person with a head; hard_hat None = head too unsure to judge (indeterminate)."""
    detections = []
    if hard_hat:
        detections.append(
            EquipmentDetection(
                BoundingBox=BoundingBox(Left=left + width * 0.3, Top=top, Width=width * 0.4, Height=height * 0.1),
                Confidence=98.0,
                Type=EquipmentType.HEAD_COVER,
                CoversBodyPart=CoversBodyPart(Confidence=97.0, Value=True),
            )
        )
    head = BodyPart(
        Name=BodyPartName.HEAD,
        Confidence=30.0 if hard_hat is None else head_confidence,
        EquipmentDetections=detections,
    )
    return ProtectiveEquipmentPerson(
        BodyParts=[head],
        BoundingBox=BoundingBox(Left=left, Top=top, Width=width, Height=height),
        Confidence=person_confidence,
        Id=person_id,
    )


def frame_analyzed(
    frame_id: str,
    *,
    persons: list[ProtectiveEquipmentPerson],
    at: datetime = T0,
    camera_id: str = "cam-1",
    site_id: str = "site-1",
    zone_id: str = "zone-1",
    bucket: str = "frames",
    key: str | None = None,
    required: tuple[EquipmentType, ...] = (EquipmentType.HEAD_COVER,),
    min_confidence: float = 80.0,
    vests: dict[int, bool] | None = None,
    custom_equipment: tuple[str, ...] = (),
    zones: ZoneLayout | None = None,
) -> FrameAnalyzed:
    """`vests`: person id -> the vest model's label on their torso (True hi_vis_vest, False no_hi_vis_vest)."""
    by_id = {p.Id: p for p in persons}
    labels = [
        AttributedCustomLabel(engine="vest", person_id=pid, label=vest_label(by_id[pid].BoundingBox, worn))
        for pid, worn in (vests or {}).items()
    ]
    attributes = SummarizationAttributes(MinConfidence=min_confidence, RequiredEquipmentTypes=list(required))
    return FrameAnalyzed(
        context=FrameContext(frame_id=frame_id, camera_id=camera_id, site_id=site_id, zone_id=zone_id, captured_at=at),
        frame=FrameRef(
            bucket=bucket,
            key=key or f"frames/{site_id}/{camera_id}/2026/11/26/{frame_id}.jpg",
            content_type="image/jpeg",
            size_bytes=1000,
            width=1280,
            height=720,
        ),
        summarization=attributes,
        ppe=DetectProtectiveEquipmentResponse(
            ProtectiveEquipmentModelVersion="test", Persons=persons, Summary=summarize(persons, attributes)
        ),
        custom_labels=labels,
        custom_equipment=list(custom_equipment),
        zones=zones,
    )


def vest_label(person_box: BoundingBox, worn: bool, confidence: float = 92.0) -> CustomLabel:
    """The vest model's label on the torso of a person box (as services.detector attaches it)."""
    torso = BoundingBox(
        Left=person_box.Left + person_box.Width * 0.15,
        Top=person_box.Top + person_box.Height * 0.2,
        Width=person_box.Width * 0.7,
        Height=person_box.Height * 0.35,
    )
    return CustomLabel(
        Name="hi_vis_vest" if worn else "no_hi_vis_vest", Confidence=confidence, Geometry={"BoundingBox": torso}
    )


def hat_scenario(
    *,
    camera_id: str = "cam-1",
    fps: float = 2.0,
    before_s: float = 10,
    without_s: float = 20,
    after_s: float = 10,
    start: datetime = T0,
    prefix: str = "f",
    bucket: str = "frames",
    key: str | None = None,
    box: tuple[float, float, float, float] | None = None,
) -> list[FrameAnalyzed]:
    """One worker walking slowly: hard hat on, off for `without_s` seconds of frame time, back on."""
    frames = []
    total = before_s + without_s + after_s
    step = 1.0 / fps
    for index in range(int(total * fps)):
        t = index * step
        hat = not (before_s <= t < before_s + without_s)
        frames.append(
            frame_analyzed(
                f"{prefix}-{camera_id}-{index:04d}",
                camera_id=camera_id,
                at=start + timedelta(seconds=t),
                persons=[
                    person(index % 7, left=box[0], top=box[1], width=box[2], height=box[3], hard_hat=hat)
                    if box
                    else person(index % 7, left=0.2 + 0.002 * index, hard_hat=hat)
                ],
                bucket=bucket,
                key=key,
            )
        )
    return frames
