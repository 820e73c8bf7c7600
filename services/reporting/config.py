"""Reporting settings (env prefix `REPORTING_`). No I/O.

Environment the service reads (besides the platform's AWS_*, DATABASE_URL, PPE_QUEUE_PREFIX,
PPE_FRAMES_BUCKET, PPE_LOG_FORMAT):
- `REPORTING_PORT` (8083): HTTP port of the analyst API and dashboard.
- `REPORTING_ANALYST_TOKEN` (secret, required, >= 16 chars): bearer token of the read-only analyst role.
- `REPORTING_ADMIN_TOKEN` (secret, required, >= 16 chars): bearer token of the writer role (sites, retention).
- `REPORTING_RETENTION_DAYS` (90): events older than this are purged.
- `REPORTING_RETENTION_INTERVAL_S` (3600): how often the retention job runs.
- `REPORTING_FRAMES_RETENTION_DAYS` (30): S3 lifecycle expiry asked for the frames bucket.
- `REPORTING_CONSUMER_CONCURRENCY` (8): messages handled at once per queue.
"""

from typing import Self

from pydantic import Field, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from shared.config import PlatformSettings, require_secret


class ReportingSettings(PlatformSettings):
    model_config = SettingsConfigDict(env_prefix="REPORTING_", extra="ignore", env_file=None)

    port: int = Field(default=8083, ge=1, le=65535, description="HTTP port of the API and dashboard.")
    host: str = Field(default="127.0.0.1", description="Interface the HTTP server binds (containers set 0.0.0.0).")
    analyst_token: str = Field(repr=False, description="Bearer token of the read-only analyst role.")
    admin_token: str = Field(repr=False, description="Bearer token of the writer role (sites, retention runs).")
    retention_days: int = Field(default=90, ge=1, le=3650, description="Events older than this are purged.")
    retention_interval_s: float = Field(default=3600.0, gt=0, description="Seconds between retention runs.")
    frames_retention_days: int = Field(
        default=30, ge=1, le=3650, description="Expiry the S3 lifecycle rule of the frames bucket is asked for."
    )
    consumer_concurrency: int = Field(default=8, ge=1, le=64, description="Messages handled at once per queue.")
    frames_queue: str = Field(default="frames-analyzed-reporting", description="Logical queue of FrameAnalyzed.")
    incidents_queue: str = Field(default="incidents-reporting", description="Logical queue of IncidentChanged.")

    @field_validator("analyst_token")
    @classmethod
    def _analyst_token_is_real(cls, value: str) -> str:
        return require_secret("REPORTING_ANALYST_TOKEN", value)

    @field_validator("admin_token")
    @classmethod
    def _admin_token_is_real(cls, value: str) -> str:
        return require_secret("REPORTING_ADMIN_TOKEN", value)

    @model_validator(mode="after")
    def _tokens_differ(self) -> Self:
        if self.analyst_token == self.admin_token:
            raise ValueError("REPORTING_ANALYST_TOKEN and REPORTING_ADMIN_TOKEN must differ (roles would be equal)")
        return self
