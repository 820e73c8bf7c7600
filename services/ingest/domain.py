"""Ingest rules and data, no I/O: image sniffing and header checks, API keys, rate limiting, errors.

The image checks run cheapest first: magic bytes, then the dimensions written in the PNG IHDR / JPEG SOF
header (`shared.images`, so a decompression bomb is refused before a single pixel is decoded), then the real
decode.
"""

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Literal

from shared import images
from shared.contracts import ZoneLayout
from shared.images import ContentType
from shared.images import ImageHeader as ImageHeader  # handlers read it from here

MIN_SIDE = 64
MAX_SIDE = 4096
MAX_IMAGE_BYTES = 4 * 1024 * 1024  # Rekognition's raw-bytes limit


class Reason(StrEnum):
    """Typed reasons a request is refused; each maps to one HTTP status (see STATUS)."""

    invalid_request = "invalid_request"
    missing_api_key = "missing_api_key"
    invalid_api_key = "invalid_api_key"
    camera_mismatch = "camera_mismatch"
    camera_disabled = "camera_disabled"
    location_override_forbidden = "location_override_forbidden"
    admin_unauthorized = "admin_unauthorized"
    forbidden = "forbidden"
    camera_not_found = "camera_not_found"
    frame_not_found = "frame_not_found"
    camera_exists = "camera_exists"
    idempotency_conflict = "idempotency_conflict"
    frame_in_progress = "frame_in_progress"
    body_too_large = "body_too_large"
    body_timeout = "body_timeout"
    unsupported_media_type = "unsupported_media_type"
    invalid_image = "invalid_image"
    image_dimensions = "image_dimensions"
    rate_limited = "rate_limited"
    dependency_unavailable = "dependency_unavailable"


STATUS: dict[Reason, int] = {
    Reason.invalid_request: 422,
    Reason.missing_api_key: 401,
    Reason.invalid_api_key: 401,
    Reason.admin_unauthorized: 401,
    Reason.forbidden: 403,
    Reason.camera_mismatch: 403,
    Reason.camera_disabled: 403,
    Reason.location_override_forbidden: 403,
    Reason.camera_not_found: 404,
    Reason.frame_not_found: 404,
    Reason.camera_exists: 409,
    Reason.idempotency_conflict: 409,
    Reason.frame_in_progress: 409,
    Reason.body_too_large: 413,
    Reason.body_timeout: 408,
    Reason.unsupported_media_type: 415,
    Reason.invalid_image: 400,
    Reason.image_dimensions: 400,
    Reason.rate_limited: 429,
    Reason.dependency_unavailable: 503,
}


class IngestError(Exception):
    """A refusal the client can act on: typed reason, message saying what to do, optional extra fields."""

    def __init__(
        self, reason: Reason, message: str, *, retry_after_s: int | None = None, **extra: str | int | None
    ) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.retry_after_s = retry_after_s
        self.extra = {k: v for k, v in extra.items() if v is not None}

    @property
    def status(self) -> int:
        return STATUS[self.reason]


# ---------------------------------------------------------------------------------------------- images


def read_header(data: bytes) -> ImageHeader:
    """Sniff the type and read the stored dimensions (and JPEG EXIF orientation) without decoding pixels."""
    try:
        return images.read_header(data)
    except images.InvalidImage as exc:
        reason = Reason.unsupported_media_type if exc.unsupported else Reason.invalid_image
        raise IngestError(reason, str(exc)) from exc


def check_dimensions(header: ImageHeader) -> None:
    width, height = header.width, header.height
    if not (MIN_SIDE <= width <= MAX_SIDE and MIN_SIDE <= height <= MAX_SIDE):
        raise IngestError(
            Reason.image_dimensions,
            f"image is {width}x{height} px; each side must be {MIN_SIDE}..{MAX_SIDE} px: resize it and resend",
            width=width,
            height=height,
        )


def check_complete(data: bytes, content_type: ContentType) -> None:
    """Refuse truncated files: libjpeg and libpng 'decode' a cut file into grey padding without an error."""
    tail = data[-4096:].rstrip(b"\x00")
    if content_type == "image/jpeg" and not tail.endswith(b"\xff\xd9"):
        raise IngestError(Reason.invalid_image, "JPEG has no end-of-image marker: the upload was cut short")
    if content_type == "image/png" and b"IEND" not in tail[-16:]:
        raise IngestError(Reason.invalid_image, "PNG has no IEND chunk: the upload was cut short")


# ---------------------------------------------------------------------------------------------- keys


API_KEY_PREFIX = "ppe_"


def new_api_key() -> str:
    """256 random bits; sha256 of such a key is as good as a slow hash (nothing to brute-force)."""
    return API_KEY_PREFIX + secrets.token_urlsafe(32)


def hash_api_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def key_matches(key: str, stored_hash: str) -> bool:
    return hmac.compare_digest(hash_api_key(key), stored_hash)


# ---------------------------------------------------------------------------------------------- cameras


@dataclass(frozen=True)
class Camera:
    camera_id: str
    site_id: str
    zone_id: str
    required_ppe: tuple[str, ...]  # Rekognition types and custom equipment (PPE_CUSTOM_EQUIPMENT)
    min_confidence: float
    key_hash: str
    enabled: bool
    rate_limit_per_s: float | None = None
    sampling: dict[str, float | int | bool] = field(default_factory=dict)
    zones: ZoneLayout | None = None  # polygon zones, sent with every frame (FrameReceived.zones)
    # admin-granted: this camera's frames may name another site / zone than its registration (e.g. a PTZ preset)
    allow_location_override: bool = False


def frame_location(camera: Camera, *, site_id: str | None, zone_id: str | None) -> tuple[str, str]:
    """(site, zone) of a frame: the camera's registration, unless an admin allowed it to say otherwise.

    A camera key is not a site credential: without the grant, a frame naming another site or zone is refused
    (it would land in that site's storage, reports and alert channels).
    """
    site = site_id or camera.site_id
    zone = zone_id or camera.zone_id
    if (site, zone) != (camera.site_id, camera.zone_id) and not camera.allow_location_override:
        raise IngestError(
            Reason.location_override_forbidden,
            f"camera {camera.camera_id} is registered at site {camera.site_id}, zone {camera.zone_id}: omit "
            "site_id / zone_id, or ask an admin to allow this camera to override them",
        )
    return site, zone


@dataclass(frozen=True)
class FrameRecord:
    frame_id: str
    camera_id: str
    client_frame_id: str | None
    status: Literal["pending", "committed"]
    sha256: str
    bucket: str
    key: str
    content_type: str
    size_bytes: int
    width: int
    height: int
    captured_at: datetime
    received_at: datetime


def new_frame_id() -> str:
    """Sortable by time (millisecond prefix), unique by 80 random bits: 'fr_' + 12 hex + 20 hex."""
    return f"fr_{int(time.time() * 1000):012x}{secrets.token_hex(10)}"


# ---------------------------------------------------------------------------------------------- rate limit


class TokenBucket:
    """Classic token bucket: `rate` tokens per second, at most `burst` saved up."""

    def __init__(self, rate: float, burst: float, *, now: float) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = burst
        self.updated = now

    def take(self, now: float) -> float:
        """Take one token; returns 0 when allowed, else the seconds until one is available."""
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.rate


class RateLimiter:
    """Per-camera token buckets, in process: the limit holds per worker (INGEST_RATE_LIMIT_STORE=memory).

    With several workers or tasks use the shared one (adapters.db.SharedRateLimiter, the default)."""

    def __init__(self, *, default_rate: float, burst_s: float, max_cameras: int = 100_000) -> None:
        self._default_rate = default_rate
        self._burst_s = burst_s
        self._max_cameras = max_cameras
        self._buckets: dict[str, TokenBucket] = {}

    async def take(self, camera_id: str, rate: float | None) -> float:
        """The limiter interface the API uses (the shared one, adapters.db.SharedRateLimiter, is async)."""
        return self.check(camera_id, rate)

    def check(self, camera_id: str, rate: float | None, *, now: float | None = None) -> float:
        """0 when the frame may pass; otherwise seconds to wait."""
        now = time.monotonic() if now is None else now
        rate = rate or self._default_rate
        burst = max(1.0, rate * self._burst_s)
        bucket = self._buckets.get(camera_id)
        if bucket is None or bucket.rate != rate:
            if len(self._buckets) >= self._max_cameras:
                self._buckets.clear()
            bucket = self._buckets[camera_id] = TokenBucket(rate, burst, now=now)
        return bucket.take(now)
