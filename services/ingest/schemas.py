"""Request and response bodies of the ingest HTTP API (every field described; they form the OpenAPI docs)."""

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

from services.ingest.domain import Camera, FrameRecord, Reason
from shared.rekognition import EquipmentType

# Ids end up in S3 keys and object metadata: keep them to a safe ASCII alphabet.
Identifier = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")]


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FrameMetadata(Model):
    """Metadata of one posted frame: query parameters, or form fields beside the image in a multipart body."""

    camera_id: Identifier | None = Field(
        default=None, description="Camera id; the API key's camera when omitted, and it must be that camera if sent."
    )
    captured_at: AwareDatetime = Field(description="Capture time, ISO 8601 with a UTC offset.")
    site_id: Identifier | None = Field(
        default=None,
        description="Override of the camera's site: refused (403) unless an admin allowed this camera to override.",
    )
    zone_id: Identifier | None = Field(
        default=None,
        description="Override of the camera's zone, e.g. a PTZ preset: refused (403) unless an admin allowed it.",
    )
    client_frame_id: Identifier | None = Field(
        default=None,
        description="Camera's own frame id. Sending the same id twice never creates a second frame (idempotency).",
    )
    required_ppe: list[EquipmentType] | None = Field(
        default=None, min_length=1, description="Override of the camera's required PPE for this frame."
    )
    min_confidence: float | None = Field(
        default=None, ge=0, le=100, description="Override of the camera's MinConfidence (0..100) for this frame."
    )


class FrameQuery(Model):
    """The same fields as FrameMetadata, as query parameters; a multipart body may send them as form fields."""

    camera_id: str | None = Field(default=None, description="Camera id; defaults to the API key's camera.")
    captured_at: str | None = Field(
        default=None, description="Capture time, ISO 8601 with a UTC offset (required here or in the form)."
    )
    site_id: str | None = Field(default=None, description="Override of the camera's site (needs the admin grant).")
    zone_id: str | None = Field(default=None, description="Override of the camera's zone (needs the admin grant).")
    client_frame_id: str | None = Field(default=None, description="Camera's own frame id, for idempotency.")
    required_ppe: list[str] | None = Field(
        default=None, description="Repeat per type: FACE_COVER, HAND_COVER, HEAD_COVER. Overrides the camera's."
    )
    min_confidence: str | None = Field(default=None, description="Override of MinConfidence, 0..100.")


class FrameAccepted(Model):
    frame_id: str = Field(description="Platform frame id; follows the frame through every service.")
    camera_id: str = Field(description="Camera the frame belongs to.")
    client_frame_id: str | None = Field(description="The client frame id sent with the frame, if any.")
    duplicate: bool = Field(description="True when this client_frame_id was already accepted: nothing new stored.")
    status: Literal["pending", "committed"] = Field(description="committed once stored and queued for analysis.")
    bucket: str = Field(description="S3 bucket of the stored frame.")
    key: str = Field(description="S3 key of the stored frame (frames/<site>/<camera>/<yyyy>/<mm>/<dd>/<id>.<ext>).")
    content_type: str = Field(description="image/jpeg or image/png, detected from the bytes.")
    size_bytes: int = Field(description="Stored size in bytes.")
    width: int = Field(description="Width in pixels after EXIF orientation.")
    height: int = Field(description="Height in pixels after EXIF orientation.")
    sha256: str = Field(description="Hex sha256 of the stored bytes.")
    captured_at: datetime = Field(description="Capture time sent by the camera.")
    received_at: datetime = Field(description="When ingest accepted the frame.")
    status_url: str = Field(description="GET it (same API key) for this frame's intake record.")
    result_hint: str = Field(
        description="Where the analysis appears: the detector publishes FrameAnalyzed with correlation id = frame_id."
    )

    @classmethod
    def of(cls, record: FrameRecord, *, duplicate: bool) -> "FrameAccepted":
        return cls(
            frame_id=record.frame_id,
            camera_id=record.camera_id,
            client_frame_id=record.client_frame_id,
            duplicate=duplicate,
            status=record.status,
            bucket=record.bucket,
            key=record.key,
            content_type=record.content_type,
            size_bytes=record.size_bytes,
            width=record.width,
            height=record.height,
            sha256=record.sha256,
            captured_at=record.captured_at,
            received_at=record.received_at,
            status_url=f"/v1/frames/{record.frame_id}",
            result_hint=f"FrameAnalyzed correlation_id={record.frame_id} (reporting API, by frame id)",
        )


class ErrorBody(Model):
    """Every refusal has this shape."""

    code: Reason = Field(description="Machine-readable reason.")
    message: str = Field(description="What went wrong and what to do about it.")
    status: int = Field(description="HTTP status, repeated for logs.")
    retry_after_s: int | None = Field(default=None, description="For 408/409/429/503: seconds to wait before retrying.")
    frame_id: str | None = Field(default=None, description="For 409: the frame already holding this client_frame_id.")
    width: int | None = Field(default=None, description="For image_dimensions: the refused width.")
    height: int | None = Field(default=None, description="For image_dimensions: the refused height.")
    limit_bytes: int | None = Field(default=None, description="For 413: the size limit.")
    details: list[dict[str, Any]] | None = Field(default=None, description="For 422: each invalid field.")


class SamplingHints(Model):
    """How the camera client should sample (it reads them from GET /v1/cameras/me)."""

    target_fps: float = Field(default=1.0, gt=0, le=30, description="Frames per second to send.")
    max_side_px: int = Field(default=1920, ge=64, le=4096, description="Downscale so the long side is at most this.")
    jpeg_quality: int = Field(default=85, ge=30, le=100, description="JPEG quality to encode with.")


class CameraCreate(Model):
    camera_id: Identifier = Field(description="Unique camera id (letters, digits, . _ -).")
    site_id: Identifier = Field(description="Site the camera belongs to.")
    zone_id: Identifier = Field(description="Zone within the site.")
    required_ppe: list[EquipmentType] = Field(
        default_factory=lambda: [EquipmentType.HEAD_COVER], min_length=1, description="Default required PPE."
    )
    min_confidence: float = Field(default=80.0, ge=0, le=100, description="Default MinConfidence, 0..100.")
    sampling: SamplingHints = Field(default_factory=SamplingHints, description="Sampling hints for the camera.")
    rate_limit_per_s: float | None = Field(
        default=None, gt=0, le=10_000, description="Frames/s this camera may post; default INGEST_RATE_LIMIT_PER_S."
    )
    allow_location_override: bool = Field(
        default=False,
        description="Let this camera's frames name another site_id / zone_id than its registration (e.g. a PTZ "
        "camera moving between zones). Off by default: the registration decides where frames land.",
    )


class LocationOverride(Model):
    allowed: bool = Field(description="Whether the camera's frames may override its registered site / zone.")


class CameraOut(Model):
    camera_id: str = Field(description="Camera id.")
    site_id: str = Field(description="Site id.")
    zone_id: str = Field(description="Zone id.")
    required_ppe: list[EquipmentType] = Field(description="Default required PPE.")
    min_confidence: float = Field(description="Default MinConfidence.")
    sampling: SamplingHints = Field(description="Sampling hints.")
    rate_limit_per_s: float | None = Field(description="Per-camera rate limit; null = service default.")
    enabled: bool = Field(description="False once disabled: its key is refused with 403.")
    allow_location_override: bool = Field(description="Whether frames may override the site / zone (admin grant).")

    @classmethod
    def of(cls, camera: Camera) -> "CameraOut":
        return cls(
            camera_id=camera.camera_id,
            site_id=camera.site_id,
            zone_id=camera.zone_id,
            required_ppe=list(camera.required_ppe),
            min_confidence=camera.min_confidence,
            sampling=SamplingHints.model_validate(camera.sampling),
            rate_limit_per_s=camera.rate_limit_per_s,
            enabled=camera.enabled,
            allow_location_override=camera.allow_location_override,
        )


class CameraWithKey(Model):
    camera: CameraOut = Field(description="The camera.")
    api_key: str = Field(description="The camera's API key (X-API-Key). Shown once; only its hash is stored.")


class Health(Model):
    status: Literal["ok", "ready", "not_ready"] = Field(description="Overall state.")
    checks: dict[str, str] = Field(default_factory=dict, description="Dependency -> 'ok' or the error.")
