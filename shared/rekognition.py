"""Amazon Rekognition DetectProtectiveEquipment / DetectCustomLabels shapes and the Summary rules.

Field names are Rekognition's own (PascalCase), so `model_dump(exclude_none=True)` is the AWS JSON.
"""

from collections.abc import Iterable, Sequence
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _AwsModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EquipmentType(StrEnum):
    FACE_COVER = "FACE_COVER"
    HAND_COVER = "HAND_COVER"
    HEAD_COVER = "HEAD_COVER"


class BodyPartName(StrEnum):
    FACE = "FACE"
    HEAD = "HEAD"
    LEFT_HAND = "LEFT_HAND"
    RIGHT_HAND = "RIGHT_HAND"


# Which body parts an equipment type must cover. HAND_COVER needs both hands.
REQUIRED_PARTS: dict[EquipmentType, tuple[BodyPartName, ...]] = {
    EquipmentType.FACE_COVER: (BodyPartName.FACE,),
    EquipmentType.HEAD_COVER: (BodyPartName.HEAD,),
    EquipmentType.HAND_COVER: (BodyPartName.LEFT_HAND, BodyPartName.RIGHT_HAND),
}

# Rekognition never returns predictions below this confidence; a lower MinConfidence acts as this.
MIN_RETURNED_CONFIDENCE = 50.0

Confidence = Field(ge=0.0, le=100.0, description="Confidence as a percentage, 0..100.")


class BoundingBox(_AwsModel):
    Width: float = Field(description="Width as a ratio of the image width.")
    Height: float = Field(description="Height as a ratio of the image height.")
    Left: float = Field(description="Left edge as a ratio of the image width; may be slightly < 0.")
    Top: float = Field(description="Top edge as a ratio of the image height; may be slightly < 0.")


class CoversBodyPart(_AwsModel):
    Confidence: float = Field(ge=0.0, le=100.0, description="Confidence that Value is right, 0..100.")
    Value: bool = Field(description="True when the equipment covers the body part.")


class EquipmentDetection(_AwsModel):
    BoundingBox: BoundingBox
    Confidence: float = Field(ge=0.0, le=100.0, description="Confidence that this is the equipment, 0..100.")
    Type: EquipmentType = Field(description="FACE_COVER, HAND_COVER or HEAD_COVER.")
    CoversBodyPart: CoversBodyPart


class BodyPart(_AwsModel):
    Name: BodyPartName = Field(description="FACE, HEAD, LEFT_HAND or RIGHT_HAND.")
    Confidence: float = Field(ge=0.0, le=100.0, description="Confidence that this is the body part, 0..100.")
    EquipmentDetections: list[EquipmentDetection] = Field(default_factory=list)


class ProtectiveEquipmentPerson(_AwsModel):
    BodyParts: list[BodyPart] = Field(default_factory=list)
    BoundingBox: BoundingBox
    Confidence: float = Field(ge=0.0, le=100.0, description="Confidence that this is a person, 0..100.")
    Id: int = Field(ge=0, description="Person id, unique only within one response.")


class ProtectiveEquipmentSummary(_AwsModel):
    PersonsWithRequiredEquipment: list[int] = Field(default_factory=list)
    PersonsWithoutRequiredEquipment: list[int] = Field(default_factory=list)
    PersonsIndeterminate: list[int] = Field(default_factory=list)


class SummarizationAttributes(_AwsModel):
    MinConfidence: float = Field(ge=0.0, le=100.0, description="Minimum confidence for the Summary, 0..100.")
    RequiredEquipmentTypes: list[EquipmentType] = Field(description="Equipment every person must wear.")


class DetectProtectiveEquipmentResponse(_AwsModel):
    ProtectiveEquipmentModelVersion: str
    Persons: list[ProtectiveEquipmentPerson] = Field(default_factory=list)
    Summary: ProtectiveEquipmentSummary | None = Field(
        default=None, description="Present when SummarizationAttributes was given."
    )

    def to_aws(self) -> dict[str, object]:
        """The JSON body AWS would send (no nulls)."""
        return self.model_dump(mode="json", exclude_none=True)


_BoundingBox = BoundingBox
_CoversBodyPart = CoversBodyPart


class Point(_AwsModel):
    X: float
    Y: float


class Geometry(_AwsModel):
    BoundingBox: _BoundingBox | None = None
    Polygon: list[Point] | None = None


_Geometry = Geometry


class CustomLabel(_AwsModel):
    Name: str = Field(description="Label name, e.g. 'hi_vis_vest'.")
    Confidence: float = Field(ge=0.0, le=100.0, description="Confidence, 0..100.")
    Geometry: _Geometry | None = Field(default=None, description="Location; absent for image-level labels.")


class DetectCustomLabelsResponse(_AwsModel):
    CustomLabels: list[CustomLabel] = Field(default_factory=list)


Verdict = Literal["with", "without", "indeterminate"]


def _part_verdict(
    person: ProtectiveEquipmentPerson, part: BodyPartName, equipment: EquipmentType, min_confidence: float
) -> Verdict:
    body_part = next((bp for bp in person.BodyParts if bp.Name == part), None)
    if body_part is None or body_part.Confidence < min_confidence:
        return "indeterminate"
    detections = [d for d in body_part.EquipmentDetections if d.Type == equipment]
    if not detections:
        return "without"
    if any(
        d.CoversBodyPart.Value and d.Confidence >= min_confidence and d.CoversBodyPart.Confidence >= min_confidence
        for d in detections
    ):
        return "with"
    if all(not d.CoversBodyPart.Value and d.CoversBodyPart.Confidence >= min_confidence for d in detections):
        return "without"
    return "indeterminate"


def person_verdict(
    person: ProtectiveEquipmentPerson, required: Iterable[EquipmentType], min_confidence: float
) -> Verdict:
    """One person's Summary bucket.

    A confident violation on any required part wins over an unknown part: a bare head is reported even
    when the hands are out of view. With no required types every confident person is "with".
    """
    threshold = max(min_confidence, MIN_RETURNED_CONFIDENCE)
    if person.Confidence < threshold:
        return "indeterminate"
    verdicts = [
        _part_verdict(person, part, equipment, threshold)
        for equipment in dict.fromkeys(required)
        for part in REQUIRED_PARTS[equipment]
    ]
    if "without" in verdicts:
        return "without"
    if "indeterminate" in verdicts:
        return "indeterminate"
    return "with"


def summarize(
    persons: Sequence[ProtectiveEquipmentPerson], attributes: SummarizationAttributes
) -> ProtectiveEquipmentSummary:
    buckets: dict[Verdict, list[int]] = {"with": [], "without": [], "indeterminate": []}
    for person in persons:
        buckets[person_verdict(person, attributes.RequiredEquipmentTypes, attributes.MinConfidence)].append(person.Id)
    return ProtectiveEquipmentSummary(
        PersonsWithRequiredEquipment=buckets["with"],
        PersonsWithoutRequiredEquipment=buckets["without"],
        PersonsIndeterminate=buckets["indeterminate"],
    )
