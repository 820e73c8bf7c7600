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
- `REPORTING_EXPORT_TARGET` (unset = no export): data-lake export to `s3://bucket/prefix` or a folder.
- `REPORTING_EXPORT_INTERVAL_S` (3600), `REPORTING_EXPORT_LAG_S` (300), `REPORTING_EXPORT_BATCH_ROWS` (50000).
- `REPORTING_EXPOSURE_CAP_S` (10): longest time one frame's observations stand for (exposure figures).
- `REPORTING_NOTIFIER_URL`, `REPORTING_NOTIFIER_ADMIN_TOKEN` (unset = no incident console): the notifier's
  incident API, reached server-side with its admin token (docs/reporting.md, "Incident console").
- `REPORTING_INGEST_URL`, `REPORTING_INGEST_ADMIN_TOKEN` (unset = no zone editor): ingest's admin API, which holds
  the cameras and their zones; the dashboard's zone editor reads and writes them through reporting.
- `REPORTING_SNAPSHOT_INTERVAL_S` (300): how often a camera's face-blurred snapshot (zone editor) is renewed.
- `REPORTING_SNAPSHOTS_PREFIX` (`snapshots/`): key prefix (frames bucket) of those snapshots.
- `REPORTING_SMTP_HOST` (unset = no digest e-mails), `_PORT` (25), `_FROM`, `_USERNAME`, `_PASSWORD`, `_STARTTLS`:
  the server that sends the daily / weekly digests to their subscribers; `REPORTING_DIGEST_INTERVAL_S` (300) how
  often due digests are looked for, `REPORTING_DIGEST_READY_HOUR` (6) the site-local hour after which a period's
  digest goes out.
"""

from typing import Self

from pydantic import Field, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from shared.config import PlatformSettings, require_secret


class ExportSettings(PlatformSettings):
    """What the export command needs (no API tokens); the service's settings extend it."""

    model_config = SettingsConfigDict(env_prefix="REPORTING_", extra="ignore", env_file=None)

    export_target: str | None = Field(
        default=None, description="Data-lake export to s3://bucket/prefix or a local folder; unset = no export."
    )
    export_interval_s: float = Field(default=3600.0, gt=0, description="Seconds between scheduled export runs.")
    export_lag_s: float = Field(
        default=300.0, ge=0, le=86400, description="Rows stored in the last N seconds wait for the next run."
    )
    export_batch_rows: int = Field(default=50_000, ge=100, le=5_000_000, description="Rows per Parquet row group.")
    exposure_cap_s: float = Field(
        default=10.0, gt=0, le=3600, description="Longest time one frame's observations stand for (exposure)."
    )

    @field_validator("export_target")
    @classmethod
    def _target_parses(cls, value: str | None) -> str | None:
        if value:
            from services.reporting.adapters.datalake import Target

            Target.parse(value)
        return value or None


class ReportingSettings(ExportSettings):
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
    consumer_concurrency: int = Field(
        default=8, ge=1, le=64, description="Messages (frames: batches of up to 10 in a transaction) handled at once."
    )
    frames_queue: str = Field(default="frames-analyzed-reporting", description="Logical queue of FrameAnalyzed.")
    incidents_queue: str = Field(default="incidents-reporting", description="Logical queue of IncidentChanged.")
    ingest_url: str | None = Field(
        default=None, description="Base URL of ingest's admin API (zone editor); unset = the editor is off."
    )
    ingest_admin_token: str | None = Field(
        default=None, repr=False, description="INGEST_ADMIN_TOKEN, sent by reporting only (never to the browser)."
    )
    notifier_url: str | None = Field(
        default=None, description="Base URL of the notifier's incident API (incident console); unset = console off."
    )
    notifier_admin_token: str | None = Field(
        default=None, repr=False, description="NOTIFIER_ADMIN_TOKEN, sent by reporting only (never to the browser)."
    )
    snapshot_interval_s: float = Field(
        default=300.0, gt=0, le=86400, description="Seconds between renewals of a camera's blurred snapshot."
    )
    snapshots_prefix: str = Field(
        default="snapshots/",
        pattern=r"^[a-z0-9][a-z0-9_-]*/$",
        description="Key prefix (frames bucket) of each camera's face-blurred snapshot (zone editor).",
    )
    smtp_host: str | None = Field(default=None, description="SMTP server of the digest e-mails; unset = none sent.")
    smtp_port: int = Field(default=25, ge=1, le=65535, description="SMTP port.")
    smtp_from: str = Field(default="ppe-digest@localhost", description="From address of the digest e-mails.")
    smtp_username: str | None = Field(default=None, description="SMTP user name (optional).")
    smtp_password: str | None = Field(default=None, repr=False, description="SMTP password (optional).")
    smtp_starttls: bool = Field(default=False, description="Upgrade the SMTP connection with STARTTLS.")
    digest_interval_s: float = Field(
        default=300.0, gt=0, le=86400, description="Seconds between looks for due digests."
    )
    digest_ready_hour: int = Field(
        default=6, ge=0, le=23, description="Site-local hour of the next day after which a period's digest is sent."
    )

    @field_validator("snapshots_prefix")
    @classmethod
    def _apart_from_frames(cls, value: str) -> str:
        if value == "frames/":
            raise ValueError("REPORTING_SNAPSHOTS_PREFIX must not be frames/: raw frames live there")
        return value

    @field_validator("analyst_token")
    @classmethod
    def _analyst_token_is_real(cls, value: str) -> str:
        return require_secret("REPORTING_ANALYST_TOKEN", value)

    @field_validator("admin_token")
    @classmethod
    def _admin_token_is_real(cls, value: str) -> str:
        return require_secret("REPORTING_ADMIN_TOKEN", value)

    @field_validator("ingest_admin_token")
    @classmethod
    def _ingest_token_is_real(cls, value: str | None) -> str | None:
        return None if value is None else require_secret("REPORTING_INGEST_ADMIN_TOKEN", value)

    @field_validator("notifier_admin_token")
    @classmethod
    def _notifier_token_is_real(cls, value: str | None) -> str | None:
        return None if value is None else require_secret("REPORTING_NOTIFIER_ADMIN_TOKEN", value)

    @model_validator(mode="after")
    def _notifier_pair(self) -> Self:
        if (self.notifier_url is None) != (self.notifier_admin_token is None):
            raise ValueError(
                "set both REPORTING_NOTIFIER_URL and REPORTING_NOTIFIER_ADMIN_TOKEN (incident console), or neither"
            )
        return self

    @model_validator(mode="after")
    def _ingest_pair(self) -> Self:
        if (self.ingest_url is None) != (self.ingest_admin_token is None):
            raise ValueError("set both REPORTING_INGEST_URL and REPORTING_INGEST_ADMIN_TOKEN (zone editor), or neither")
        return self

    @model_validator(mode="after")
    def _tokens_differ(self) -> Self:
        if self.analyst_token == self.admin_token:
            raise ValueError("REPORTING_ANALYST_TOKEN and REPORTING_ADMIN_TOKEN must differ (roles would be equal)")
        return self
