"""Notifier settings (env prefix NOTIFIER_). No I/O.

Environment the local stack must set for the notifier:
- shared: AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION, DATABASE_URL,
  PPE_QUEUE_PREFIX, PPE_FRAMES_BUCKET, PPE_LOG_FORMAT
- NOTIFIER_PORT (default 8082)
- NOTIFIER_ADMIN_TOKEN (secret, >= 16 chars, required): bearer token of the rules / channels API.
- NOTIFIER_SECRETS_KEY (secret, required): key(s) of >= 32 chars encrypting channel secrets at rest
  (comma-separated for rotation, the first encrypts; adapters/secret_box.py).
- NOTIFIER_WEBHOOK_ALLOWED_NETWORKS (default none): CIDRs a webhook may reach besides public addresses,
  e.g. `127.0.0.0/8,::1/128` for local receivers (`make run` and the tests set it). Metadata addresses never.
- NOTIFIER_WEBHOOK_SECRET (secret, >= 16 chars, optional): signs webhooks of channels that have no
  secret of their own; without it every webhook channel must be given a secret.
- NOTIFIER_RETENTION_DAYS (30, at least 15) / NOTIFIER_RETENTION_INTERVAL_S (3600): the purge of resolved
  incidents, finished deliveries, published outbox rows, applied-frame marks and alert counters.
Optional: NOTIFIER_SMTP_HOST / _PORT / _USERNAME / _PASSWORD / _STARTTLS / _FROM for email channels,
NOTIFIER_PRESIGN_EXPIRY_S, NOTIFIER_DEFAULT_* (the rule used where no rule matches), tracking and
delivery tuning below.
"""

from typing import Annotated, Any, Self

from pydantic import Field, field_validator, model_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from services.notifier.adapters.secret_box import parse_keys
from services.notifier.adapters.targets import IPNetwork, parse_networks
from services.notifier.domain import TrackerSettings
from services.notifier.policy import RulePolicy, Severity
from shared.config import PlatformSettings, require_secret, split_list
from shared.equipment import EquipmentName
from shared.rekognition import EquipmentType


class NotifierSettings(PlatformSettings):
    model_config = SettingsConfigDict(env_prefix="NOTIFIER_", extra="ignore", env_file=None)

    port: int = Field(default=8082, ge=1, le=65535, description="HTTP port of the rules API, health and metrics.")
    host: str = Field(default="127.0.0.1", description="Interface the HTTP server binds (containers set 0.0.0.0).")
    admin_token: str = Field(description="Bearer token for the rules / channels API (>= 16 characters).")
    webhook_secret: str | None = Field(
        default=None, description="Default HMAC key of webhook channels without their own secret (>= 16 characters)."
    )
    secrets_key: str = Field(
        default="",
        repr=False,
        description="Key(s) encrypting channel secrets at rest: >= 32 characters each, comma-separated, "
        "the first encrypts.",
    )
    webhook_allowed_networks: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="CIDRs (comma-separated or JSON list) webhooks may reach besides public addresses; "
        "private, loopback and link-local targets are refused otherwise.",
    )

    # The rule in force where no stored rule matches a camera.
    default_required_equipment: list[EquipmentName] = Field(
        default_factory=lambda: [EquipmentType.HEAD_COVER.value],
        min_length=1,
        description="Rekognition types or custom equipment of PPE_CUSTOM_EQUIPMENT (JSON list).",
    )
    default_min_confidence: float = Field(default=80.0, ge=0, le=100)
    default_min_violation_s: float = Field(default=2.0, ge=0)
    default_min_frames: int = Field(default=2, ge=1)
    default_window_frames: int = Field(default=3, ge=1)
    default_resolve_after_s: float = Field(default=2.0, ge=0)
    default_cooldown_camera_s: float = Field(default=60.0, ge=0)
    default_cooldown_person_s: float = Field(default=300.0, ge=0)
    default_max_alerts_per_hour: int = Field(default=30, ge=0)
    default_severity: Severity = Field(default="warning")

    rules_cache_s: float = Field(default=5.0, ge=0, le=300, description="Seconds a worker reuses a looked-up rule.")
    sweep_interval_s: float = Field(
        default=10.0, gt=0, le=300,
        description="Seconds between sweeps (unsent outbox rows, due escalation steps): an escalation fires at "
        "most this late.",
    )

    # Tracking
    track_iou_threshold: float = Field(default=0.2, gt=0, le=1)
    track_max_centre_distance: float = Field(default=0.15, gt=0, le=2)
    track_ttl_s: float = Field(default=5.0, gt=0, description="A person unseen this long has left; incident resolves.")

    # Delivery
    presign_expiry_s: int = Field(default=3600, ge=60, le=7 * 24 * 3600, description="Lifetime of frame links.")
    alert_frames_prefix: str = Field(
        default="alerts/",
        pattern=r"^[a-z0-9][a-z0-9_-]*/$",
        description="Key prefix (frames bucket) of the face-blurred frame copies that alerts link to.",
    )
    webhook_timeout_s: float = Field(default=5.0, gt=0)
    webhook_attempts: int = Field(default=3, ge=1, le=10, description="Tries within one delivery before requeueing.")
    webhook_backoff_s: float = Field(default=0.5, gt=0, description="First retry delay; doubles, with jitter.")
    max_retry_after_s: float = Field(default=10.0, gt=0, description="Longest 429 Retry-After waited in process.")
    delivery_max_receives: int = Field(default=8, ge=1, description="Receives of a delivery before it goes to the DLQ.")
    smtp_host: str | None = Field(default=None, description="SMTP server for email channels.")
    smtp_port: int = Field(default=25, ge=1, le=65535)
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_starttls: bool = False
    smtp_from: str = Field(default="ppe-alerts@localhost", description="From address of alert emails.")

    # Workers
    frame_concurrency: int = Field(
        default=16, ge=1, le=64, description="Camera groups (each a batch of that camera's frames) handled at once."
    )
    delivery_concurrency: int = Field(default=16, ge=1, le=128, description="Deliveries sent at once.")
    db_pool_size: int = Field(default=16, ge=1, le=100)

    # Retention. At least 15 days: an applied-frame mark must outlive the DLQ's 14-day retention, so a frame
    # redriven from the DLQ is still recognised as applied.
    retention_days: int = Field(
        default=30, ge=15, le=3650, description="Resolved incidents, finished deliveries and marks older than this go."
    )
    retention_interval_s: float = Field(default=3600.0, gt=0, description="Seconds between retention purges.")

    @field_validator("admin_token")
    @classmethod
    def _real_token(cls, value: str) -> str:
        return require_secret("NOTIFIER_ADMIN_TOKEN", value)

    @field_validator("secrets_key")
    @classmethod
    def _real_secrets_key(cls, value: str) -> str:
        parse_keys(require_secret("NOTIFIER_SECRETS_KEY", value))
        return value

    @field_validator("webhook_allowed_networks", mode="before")
    @classmethod
    def _split_networks(cls, value: Any) -> Any:
        return split_list(value)

    @field_validator("webhook_allowed_networks")
    @classmethod
    def _valid_networks(cls, value: list[str]) -> list[str]:
        try:
            parse_networks(value)
        except ValueError as exc:
            raise ValueError(f"NOTIFIER_WEBHOOK_ALLOWED_NETWORKS: {exc} (give CIDRs like 10.0.0.0/8)") from exc
        return value

    def webhook_networks(self) -> tuple[IPNetwork, ...]:
        return parse_networks(self.webhook_allowed_networks)

    @field_validator("alert_frames_prefix")
    @classmethod
    def _apart_from_frames(cls, value: str) -> str:
        if value == "frames/":
            raise ValueError("NOTIFIER_ALERT_FRAMES_PREFIX must not be frames/: raw frames live there")
        return value

    @field_validator("webhook_secret")
    @classmethod
    def _real_webhook_secret(cls, value: str | None) -> str | None:
        return None if value is None else require_secret("NOTIFIER_WEBHOOK_SECRET", value)

    @model_validator(mode="after")
    def _known_default_equipment(self) -> Self:
        self.catalogue().check(self.default_required_equipment, where="NOTIFIER_DEFAULT_REQUIRED_EQUIPMENT")
        return self

    def default_policy(self) -> RulePolicy:
        return RulePolicy(
            required_equipment=list(self.default_required_equipment),
            min_confidence=self.default_min_confidence,
            min_violation_s=self.default_min_violation_s,
            min_frames=self.default_min_frames,
            window_frames=self.default_window_frames,
            resolve_after_s=self.default_resolve_after_s,
            cooldown_camera_s=self.default_cooldown_camera_s,
            cooldown_person_s=self.default_cooldown_person_s,
            max_alerts_per_hour=self.default_max_alerts_per_hour,
            severity=self.default_severity,
        )

    def tracker(self) -> TrackerSettings:
        return TrackerSettings(
            iou_threshold=self.track_iou_threshold,
            max_centre_distance=self.track_max_centre_distance,
            track_ttl_s=self.track_ttl_s,
        )
