"""Ingest settings. No I/O; fails fast naming the variable.

Environment the local stack must set (besides the shared AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID,
AWS_SECRET_ACCESS_KEY, AWS_REGION, DATABASE_URL, PPE_QUEUE_PREFIX, PPE_FRAMES_BUCKET, PPE_LOG_FORMAT):
- INGEST_ADMIN_TOKEN   (required secret, >= 16 chars, no placeholder): bearer token of the admin API.
- INGEST_PORT          (default 8080), INGEST_HOST (default 127.0.0.1).
Optional tuning: INGEST_WORKERS, INGEST_RATE_LIMIT_PER_S, INGEST_RATE_LIMIT_BURST_S, INGEST_RATE_LIMIT_STORE,
INGEST_PUBLISH_LINGER_S, INGEST_CAMERA_CACHE_TTL_S,
INGEST_MAX_IMAGE_BYTES, INGEST_MAX_JSON_BODY_BYTES, INGEST_BODY_TIMEOUT_S, INGEST_DECODE_CONCURRENCY,
INGEST_PENDING_TIMEOUT_S,
INGEST_AWS_ATTEMPTS, INGEST_RETRY_AFTER_S, INGEST_DB_POOL_SIZE,
INGEST_LEDGER_RETENTION_DAYS, INGEST_RETENTION_INTERVAL_S (the purge of the frame ledger).
The frames bucket's expiry is reporting's (REPORTING_FRAMES_RETENTION_DAYS); INGEST_RETENTION_DAYS is refused.
"""

from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import SettingsConfigDict

from services.ingest.domain import MAX_IMAGE_BYTES
from shared.config import PlatformSettings, require_secret


class IngestSettings(PlatformSettings):
    model_config = SettingsConfigDict(env_prefix="INGEST_", extra="ignore", env_file=None)

    admin_token: str = Field(default="", description="Bearer token that authorises the admin API (INGEST_ADMIN_TOKEN).")
    host: str = Field(default="127.0.0.1", description="Interface to listen on.")
    port: int = Field(default=8080, ge=0, le=65535, description="HTTP port (INGEST_PORT).")
    workers: int = Field(
        default=1,
        ge=1,
        le=64,
        description="Worker processes sharing the port (INGEST_WORKERS); each is one event loop on one core. "
        "The rate limit holds across them with INGEST_RATE_LIMIT_STORE=database.",
    )
    max_image_bytes: int = Field(
        default=MAX_IMAGE_BYTES, ge=1, le=MAX_IMAGE_BYTES, description="Largest accepted image (Rekognition: 4 MB)."
    )
    multipart_overhead_bytes: int = Field(
        default=64 * 1024, ge=1024, description="Extra bytes a multipart body may carry besides the image."
    )
    max_json_body_bytes: int = Field(
        default=64 * 1024, ge=1024, description="Largest body of the other routes (admin JSON), counted as read."
    )
    body_timeout_s: float = Field(default=10.0, gt=0, description="A body not fully received by then gets 408.")
    rate_limit_per_s: float = Field(default=10.0, gt=0, description="Default frames/s per camera (token bucket).")
    rate_limit_store: Literal["database", "memory"] = Field(
        default="database",
        description="Where the per-camera token buckets live: `database` holds the limit across every ingest "
        "worker and task (one upsert per frame); `memory` only per process.",
    )
    rate_limit_burst_s: float = Field(
        default=2.0, gt=0, description="Bucket size in seconds of the rate: how long a camera may burst."
    )
    camera_cache_ttl_s: float = Field(
        default=2.0, ge=0, description="How long a camera lookup is cached: disable/rotate take effect within it."
    )
    decode_concurrency: int = Field(default=2, ge=1, description="Images decoded at once (bounds memory).")
    pending_timeout_s: float = Field(
        default=60.0, gt=0, description="A reservation older than this (crashed writer) may be taken over."
    )
    aws_attempts: int = Field(default=2, ge=1, description="Tries per S3/SQS call before answering 503.")
    publish_linger_s: float = Field(
        default=0.002,
        ge=0,
        le=1,
        description="Concurrent frames share SQS SendMessageBatch calls; a frame waits at most this long for company "
        "(0: one SQS call per frame).",
    )
    aws_timeout_s: float = Field(default=5.0, gt=0, description="Connect/read timeout of S3/SQS calls.")
    retry_after_s: int = Field(default=5, ge=1, description="Retry-After sent with 503.")
    retention_days: int | None = Field(
        default=None, description="Gone: refused with a pointer to REPORTING_FRAMES_RETENTION_DAYS (see below)."
    )
    ledger_retention_days: int = Field(
        default=30,
        ge=1,
        le=3650,
        description="Ledger rows (frame ids, raw-frame keys) older than this are purged; a client_frame_id "
        "re-sent after that is a new frame.",
    )
    retention_interval_s: float = Field(default=3600.0, gt=0, description="Seconds between ledger purges.")
    db_pool_size: int = Field(default=10, ge=1, description="PostgreSQL connections.")

    @field_validator("retention_days")
    @classmethod
    def _moved(cls, value: int | None) -> None:
        if value is not None:
            raise ValueError(
                "INGEST_RETENTION_DAYS is no longer read: reporting alone owns the frames bucket's expiry, set "
                "REPORTING_FRAMES_RETENTION_DAYS instead (and INGEST_LEDGER_RETENTION_DAYS for ingest's ledger rows)"
            )
        return None

    @field_validator("admin_token")
    @classmethod
    def _real_secret(cls, value: str) -> str:
        return require_secret("INGEST_ADMIN_TOKEN", value)
