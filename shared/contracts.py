"""Message contracts: one versioned envelope, and the payloads that travel inside it.

Messages point to data; they never carry it: a frame travels as its S3 bucket and key. Each payload class
names its message type and schema version; a consumer refuses an envelope whose type or major version it
does not know (it goes to the dead-letter queue, see shared.sqs).
"""

import uuid
from datetime import UTC, datetime
from typing import Any, ClassVar, Generic, Literal, Self, TypeVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from shared.rekognition import (
    BoundingBox,
    CustomLabel,
    DetectProtectiveEquipmentResponse,
    EquipmentType,
    SummarizationAttributes,
)


class Contract(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Payload(Contract):
    MESSAGE_TYPE: ClassVar[str]
    SCHEMA_VERSION: ClassVar[int] = 1


P = TypeVar("P", bound=Payload)


def utcnow() -> datetime:
    return datetime.now(UTC)


class Envelope(Contract, Generic[P]):
    """Transport metadata, kept apart from the business payload."""

    message_id: uuid.UUID = Field(default_factory=uuid.uuid4, description="Unique id of this message.")
    correlation_id: str = Field(description="Follows one frame through every service (the frame id).")
    message_type: str = Field(description="Name of the payload contract, e.g. FrameReceived.")
    schema_version: int = Field(ge=1, description="Major version of the payload contract.")
    occurred_at: AwareDatetime = Field(default_factory=utcnow, description="When the producer emitted it (UTC).")
    producer: str = Field(description="Service that produced the message, e.g. ingest.")
    payload: P = Field(description="The business content.")

    @model_validator(mode="after")
    def _type_matches_payload(self) -> Self:
        expected = type(self.payload)
        if self.message_type != expected.MESSAGE_TYPE:
            raise ValueError(f"message_type {self.message_type!r} does not match payload {expected.MESSAGE_TYPE!r}")
        if self.schema_version != expected.SCHEMA_VERSION:
            raise ValueError(
                f"schema_version {self.schema_version} not supported for {self.message_type} "
                f"(this build speaks {expected.SCHEMA_VERSION})"
            )
        return self

    @classmethod
    def wrap(cls, payload: P, *, producer: str, correlation_id: str) -> "Envelope[P]":
        return Envelope[type(payload)](  # type: ignore[misc]
            correlation_id=correlation_id,
            message_type=payload.MESSAGE_TYPE,
            schema_version=payload.SCHEMA_VERSION,
            producer=producer,
            payload=payload,
        )

    def to_json(self) -> str:
        return self.model_dump_json()


def parse_envelope(body: str | bytes, payload_type: type[P]) -> Envelope[P]:
    """Parse a queue message body into a typed envelope; raises pydantic.ValidationError when malformed."""
    return Envelope[payload_type].model_validate_json(body)  # type: ignore[valid-type]


class FrameRef(Contract):
    """Where a frame's bytes live and what they are."""

    bucket: str = Field(description="S3 bucket of the frame object.")
    key: str = Field(description="S3 key of the frame object.")
    content_type: Literal["image/jpeg", "image/png"] = Field(description="Detected from magic bytes.")
    size_bytes: int = Field(ge=1, le=15 * 1024 * 1024, description="Object size in bytes.")
    width: int = Field(ge=1, description="Image width in pixels after EXIF orientation.")
    height: int = Field(ge=1, description="Image height in pixels after EXIF orientation.")
    sha256: str | None = Field(default=None, description="Hex sha256 of the stored bytes.")


class FrameContext(Contract):
    """Which camera took a frame, where and when."""

    frame_id: str = Field(min_length=1, max_length=128, description="Platform frame id (idempotency key).")
    camera_id: str = Field(min_length=1, max_length=128, description="Registered camera id.")
    site_id: str = Field(min_length=1, max_length=128, description="Site the camera belongs to.")
    zone_id: str = Field(min_length=1, max_length=128, description="Zone within the site.")
    captured_at: AwareDatetime = Field(description="When the camera captured the frame (UTC offset required).")


class FrameReceived(Payload):
    """ingest -> detector: a validated frame is stored and waiting for analysis."""

    MESSAGE_TYPE: ClassVar[str] = "FrameReceived"

    context: FrameContext
    frame: FrameRef
    received_at: AwareDatetime = Field(default_factory=utcnow, description="When ingest accepted the frame.")
    client_frame_id: str | None = Field(default=None, max_length=128, description="Camera's own id, if sent.")
    summarization: SummarizationAttributes = Field(
        description="Required PPE and MinConfidence in force for this frame (camera default or request override)."
    )


class AttributedCustomLabel(Contract):
    """A custom label (e.g. hi-vis vest) and the person it belongs to, if any."""

    engine: str = Field(description="Name of the custom-label engine that produced it.")
    person_id: int | None = Field(default=None, description="Id of the person in `ppe.Persons`, if attached.")
    label: CustomLabel = Field(description="The label in Rekognition's DetectCustomLabels shape.")


class FrameAnalyzed(Payload):
    """detector -> notifier, reporting: the merged analysis of one frame."""

    MESSAGE_TYPE: ClassVar[str] = "FrameAnalyzed"

    context: FrameContext
    frame: FrameRef
    summarization: SummarizationAttributes = Field(description="Attributes the Summary was computed with.")
    ppe: DetectProtectiveEquipmentResponse = Field(description="Rekognition-compatible PPE response.")
    custom_labels: list[AttributedCustomLabel] = Field(default_factory=list)
    model_versions: dict[str, str] = Field(default_factory=dict, description="Engine name -> model version.")
    timings_ms: dict[str, float] = Field(default_factory=dict, description="Stage name -> milliseconds.")
    analyzed_at: AwareDatetime = Field(default_factory=utcnow, description="When the detector finished.")


class IncidentChanged(Payload):
    """notifier -> reporting: a tracked person's violation incident opened, updated or resolved."""

    MESSAGE_TYPE: ClassVar[str] = "IncidentChanged"

    incident_id: str = Field(description="Stable id of the incident.")
    status: Literal["open", "updated", "resolved"] = Field(description="What happened to the incident.")
    camera_id: str = Field(description="Camera the incident was seen on.")
    site_id: str = Field(description="Site of the camera.")
    zone_id: str = Field(description="Zone of the camera.")
    missing_equipment: list[EquipmentType] = Field(description="Required PPE the person is missing.")
    severity: Literal["info", "warning", "critical"] = Field(description="Severity by the matching rule.")
    started_at: AwareDatetime = Field(description="First frame in violation.")
    last_seen_at: AwareDatetime = Field(description="Latest frame in violation.")
    resolved_at: AwareDatetime | None = Field(default=None, description="When the violation ended.")
    frame_id: str = Field(description="Frame that triggered this change.")
    max_confidence: float = Field(ge=0, le=100, description="Highest confidence of the violation so far.")


class NotificationRequested(Payload):
    """notifier -> notifier (deliveries queue): send one alert about one incident change to one channel."""

    MESSAGE_TYPE: ClassVar[str] = "NotificationRequested"

    delivery_id: str = Field(description="Row of the notifier's delivery log; the idempotency key of the send.")
    channel_id: int = Field(description="Notifier channel that receives the alert.")
    incident: IncidentChanged = Field(description="The incident change to announce.")
    frame: FrameRef = Field(description="The frame that triggered the change (linked, and attached as a snapshot).")
    captured_at: AwareDatetime = Field(description="When the camera captured that frame.")
    blur_faces: bool = Field(description="Blur faces in the attached snapshot (False when the site opted out).")
    face_boxes: list[BoundingBox] = Field(default_factory=list, description="Regions to blur, as image ratios.")


MESSAGE_TYPES: dict[str, type[Payload]] = {
    cls.MESSAGE_TYPE: cls for cls in (FrameReceived, FrameAnalyzed, IncidentChanged, NotificationRequested)
}


def json_schemas() -> dict[str, dict[str, Any]]:
    """JSON Schema of every envelope type, for the schema-compatibility check."""
    return {name: Envelope[cls].model_json_schema() for name, cls in MESSAGE_TYPES.items()}  # type: ignore[valid-type]
