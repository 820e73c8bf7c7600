"""Builders of FrameAnalyzed / IncidentChanged messages for reporting tests.

A person is described by what they wear per equipment type: True (covered, confident), False (the body part
is seen with no equipment), None (the body part is not visible). Confidences are fixed and named here, so
tests can state expected confidences by hand.
"""

from datetime import datetime

from shared.contracts import FrameAnalyzed, FrameContext, FrameRef, IncidentChanged
from shared.rekognition import (
    REQUIRED_PARTS,
    BodyPart,
    BoundingBox,
    CoversBodyPart,
    DetectProtectiveEquipmentResponse,
    EquipmentDetection,
    EquipmentType,
    ProtectiveEquipmentPerson,
    SummarizationAttributes,
)

PART_CONFIDENCE = 97.0  # a visible body part
DETECTION_CONFIDENCE = 95.0  # the equipment detection
COVERS_CONFIDENCE = 93.0  # CoversBodyPart.Confidence -> type confidence of a covered part: min(95, 93) = 93
BOX = BoundingBox(Width=0.1, Height=0.1, Left=0.1, Top=0.1)

HEAD = EquipmentType.HEAD_COVER
FACE = EquipmentType.FACE_COVER
HANDS = EquipmentType.HAND_COVER


def person(
    person_id: int,
    *,
    confidence: float = 99.0,
    head: bool | None = None,
    face: bool | None = None,
    hands: bool | None = None,
) -> ProtectiveEquipmentPerson:
    parts: list[BodyPart] = []
    for equipment, worn in ((HEAD, head), (FACE, face), (HANDS, hands)):
        if worn is None:
            continue
        for part in REQUIRED_PARTS[equipment]:
            detections = (
                [
                    EquipmentDetection(
                        BoundingBox=BOX,
                        Confidence=DETECTION_CONFIDENCE,
                        Type=equipment,
                        CoversBodyPart=CoversBodyPart(Confidence=COVERS_CONFIDENCE, Value=True),
                    )
                ]
                if worn
                else []
            )
            parts.append(BodyPart(Name=part, Confidence=PART_CONFIDENCE, EquipmentDetections=detections))
    return ProtectiveEquipmentPerson(BodyParts=parts, BoundingBox=BOX, Confidence=confidence, Id=person_id)


def frame_analyzed(
    frame_id: str,
    *,
    captured_at: datetime,
    persons: list[ProtectiveEquipmentPerson],
    site_id: str = "site-a",
    zone_id: str = "zone-1",
    camera_id: str = "cam-1",
    required: tuple[EquipmentType, ...] = (HEAD, FACE),
    min_confidence: float = 80.0,
) -> FrameAnalyzed:
    return FrameAnalyzed(
        context=FrameContext(
            frame_id=frame_id, camera_id=camera_id, site_id=site_id, zone_id=zone_id, captured_at=captured_at
        ),
        frame=FrameRef(
            bucket="frames",
            key=f"frames/{site_id}/{camera_id}/x/{frame_id}.jpg",
            content_type="image/jpeg",
            size_bytes=1000,
            width=640,
            height=480,
        ),
        summarization=SummarizationAttributes(MinConfidence=min_confidence, RequiredEquipmentTypes=list(required)),
        ppe=DetectProtectiveEquipmentResponse(ProtectiveEquipmentModelVersion="test", Persons=persons),
        analyzed_at=captured_at,
    )


def incident(
    incident_id: str,
    *,
    started_at: datetime,
    status: str = "open",
    site_id: str = "site-a",
    zone_id: str = "zone-1",
    camera_id: str = "cam-1",
    severity: str = "warning",
    missing: tuple[EquipmentType, ...] = (HEAD,),
    last_seen_at: datetime | None = None,
    resolved_at: datetime | None = None,
    max_confidence: float = 90.0,
    version: int = 0,
) -> IncidentChanged:
    return IncidentChanged(
        incident_id=incident_id,
        status=status,  # type: ignore[arg-type]
        camera_id=camera_id,
        site_id=site_id,
        zone_id=zone_id,
        missing_equipment=list(missing),
        severity=severity,  # type: ignore[arg-type]
        started_at=started_at,
        last_seen_at=last_seen_at or started_at,
        resolved_at=resolved_at,
        frame_id=f"frame-of-{incident_id}",
        max_confidence=max_confidence,
        version=version,
    )
