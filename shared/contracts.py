"""Message contracts: one versioned envelope, and the payloads that travel inside it.

Messages point to data; they never carry it: a frame travels as its S3 bucket and key. Each payload class
names its message type and schema version; a consumer refuses an envelope whose type or major version it
does not know (it goes to the dead-letter queue, see shared.sqs).
"""

import uuid
from datetime import UTC, datetime, time
from typing import Any, ClassVar, Generic, Literal, Self, TypeVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

from shared.equipment import EquipmentName
from shared.geometry import polygon_problem
from shared.rekognition import (
    BoundingBox,
    CustomLabel,
    DetectProtectiveEquipmentResponse,
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
        envelope: Envelope[P] = Envelope[type(payload)](  # type: ignore[misc,operator]  # runtime-parametrised generic
            correlation_id=correlation_id,
            message_type=payload.MESSAGE_TYPE,
            schema_version=payload.SCHEMA_VERSION,
            producer=producer,
            payload=payload,
        )
        return envelope

    def to_json(self) -> str:
        return self.model_dump_json()


def parse_envelope(body: str | bytes, payload_type: type[P]) -> Envelope[P]:
    """Parse a queue message body into a typed envelope; raises pydantic.ValidationError when malformed."""
    return Envelope[payload_type].model_validate_json(body)  # type: ignore[valid-type]  # a generic parametrised at run time


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


class ZonePoint(Contract):
    """A polygon vertex in normalised image coordinates (0..1 of width and height, origin top left)."""

    x: float = Field(ge=0, le=1, description="Ratio of the image width from the left edge.")
    y: float = Field(ge=0, le=1, description="Ratio of the image height from the top edge.")


class Zone(Contract):
    """A named area inside one camera's image with its own requirements (e.g. a walkway or a hazard area)."""

    zone_id: str = Field(
        min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$", description="Zone id, reported as zone."
    )
    polygon: list[ZonePoint] = Field(min_length=3, max_length=64, description="Vertices in order (closed implicitly).")
    required_equipment: list[EquipmentName] = Field(
        default_factory=list, description="PPE required inside (Rekognition types or custom equipment); [] = none."
    )
    min_confidence: float = Field(default=80.0, ge=0, le=100, description="MinConfidence of verdicts inside.")
    active_from: time | None = Field(default=None, description="Start of active hours (local); None = always.")
    active_to: time | None = Field(default=None, description="End of active hours (local, exclusive).")
    timezone: str = Field(default="UTC", description="IANA time zone of the active hours.")

    @model_validator(mode="after")
    def _hours_pair(self) -> Self:
        if (self.active_from is None) != (self.active_to is None):
            raise ValueError(f"zone {self.zone_id}: set both active_from and active_to, or neither")
        return self

    @model_validator(mode="after")
    def _simple_polygon(self) -> Self:
        problem = polygon_problem([(point.x, point.y) for point in self.polygon])
        if problem is not None:
            raise ValueError(f"zone {self.zone_id}: {problem}")
        return self

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        return known_timezone(value)


class ZoneLayout(Contract):
    """A camera's zones. A person belongs to the first listed zone holding their foot point (bottom centre)."""

    zones: list[Zone] = Field(default_factory=list, max_length=32, description="Zones, most specific first.")
    outside: Literal["camera", "ignore"] = Field(
        default="camera", description="Persons outside every zone: judged by the camera's rule, or ignored."
    )

    @model_validator(mode="after")
    def _unique_ids(self) -> Self:
        ids = [zone.zone_id for zone in self.zones]
        if len(ids) != len(set(ids)):
            raise ValueError(f"zone ids must be unique per camera (got {ids})")
        return self


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
    custom_equipment: list[EquipmentName] = Field(
        default_factory=list,
        description="Custom-label equipment (e.g. hi_vis_vest) required beside summarization's Rekognition types.",
    )
    zones: ZoneLayout | None = Field(default=None, description="The camera's zones in force; None = no zones.")


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
    custom_equipment: list[EquipmentName] = Field(
        default_factory=list, description="Custom-label equipment required beside summarization's types (camera)."
    )
    zones: ZoneLayout | None = Field(default=None, description="The camera's zones, copied from FrameReceived.")
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
    zone_id: str = Field(description="Zone of the person: their polygon zone's id, else the camera's zone.")
    missing_equipment: list[EquipmentName] = Field(
        description="Required PPE the person is missing: Rekognition types or custom equipment (e.g. hi_vis_vest)."
    )
    severity: Literal["info", "warning", "critical"] = Field(description="Severity by the matching rule.")
    started_at: AwareDatetime = Field(description="First frame in violation.")
    last_seen_at: AwareDatetime = Field(description="Latest frame in violation.")
    resolved_at: AwareDatetime | None = Field(default=None, description="When the violation ended.")
    frame_id: str = Field(description="Frame that triggered this change.")
    max_confidence: float = Field(ge=0, le=100, description="Highest confidence of the violation so far.")
    version: int = Field(
        default=0,
        ge=0,
        description="Per-incident change number (1 = open, +1 per change); consumers keep the highest. "
        "0 = sent by a notifier without versions: order by the change time instead.",
    )
    acknowledged_at: AwareDatetime | None = Field(default=None, description="When an operator acknowledged it.")
    acknowledged_by: str | None = Field(default=None, description="Who acknowledged it (user:<name>).")
    resolved_by: str | None = Field(default=None, description="Who resolved it by hand; None = the camera saw it end.")
    review: Literal["confirmed", "false_positive"] | None = Field(
        default=None, description="The reviewer's verdict: a real violation, or a false positive; None = not reviewed."
    )
    review_reason: str | None = Field(default=None, description="Why it was marked a false positive.")


class NotificationRequested(Payload):
    """notifier -> notifier (deliveries queue): send one alert about one incident change to one channel."""

    MESSAGE_TYPE: ClassVar[str] = "NotificationRequested"

    delivery_id: str = Field(description="Row of the notifier's delivery log; the idempotency key of the send.")
    channel_id: int = Field(description="Notifier channel that receives the alert.")
    incident: IncidentChanged = Field(description="The incident change to announce.")
    frame: FrameRef = Field(description="The frame that triggered the change (linked, and attached as a snapshot).")
    captured_at: AwareDatetime = Field(description="When the camera captured that frame.")
    blur_faces: bool = Field(
        description="The rule's blur_faces. Not read by the notifier any more: an alert always links to (and "
        "attaches) the face-blurred copy of the frame."
    )
    face_boxes: list[BoundingBox] = Field(default_factory=list, description="Regions to blur, as image ratios.")
    escalation_step: int = Field(
        default=0, ge=0, description="0 = the incident's own alert; n = its n-th escalation (nobody acknowledged)."
    )


MESSAGE_TYPES: dict[str, type[Payload]] = {
    cls.MESSAGE_TYPE: cls for cls in (FrameReceived, FrameAnalyzed, IncidentChanged, NotificationRequested)
}


def json_schemas() -> dict[str, dict[str, Any]]:
    """JSON Schema of every envelope type, for the schema-compatibility check."""
    return {name: Envelope[cls].model_json_schema() for name, cls in MESSAGE_TYPES.items()}  # type: ignore[valid-type]  # a generic parametrised at run time


def known_timezone(value: str) -> str:
    """`value` when it names an IANA time zone; a ValueError saying what to use otherwise (one check for zones
    and notifier rules)."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {value!r}; use an IANA name such as Europe/Berlin") from exc
    return value
