"""Settings every service shares. Each service subclasses `ServiceSettings` with its own env prefix.

Endpoints are chosen only here: `AWS_ENDPOINT_URL` (botocore reads it natively) points every AWS client at
AWS, LocalStack or the moto emulator; `DATABASE_URL` points at any PostgreSQL. Service code never branches
on which one it talks to.
"""

import json
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.equipment import BUILT_IN, Catalogue, CustomEquipment, default_custom_equipment

PLACEHOLDER_SECRETS = frozenset({"", "changeme", "change-me", "secret", "password", "xxx", "todo"})
CACHE_ROOT = Path("~/.cache/ppe-platform")  # where built models and the workshop's caches live unless set

# A folder setting: `~` is the user's home; an empty variable counts as unset (env_ignore_empty below).
Folder = Annotated[Path, AfterValidator(lambda path: path.expanduser())]


class PlatformSettings(BaseSettings):
    """Shared, unprefixed settings: names are the conventional ones (AWS_REGION, DATABASE_URL, ...)."""

    model_config = SettingsConfigDict(extra="ignore", env_file=None)

    aws_region: str = Field(default="us-east-1", validation_alias="AWS_REGION", description="AWS region.")
    aws_endpoint_url: str | None = Field(
        default=None,
        validation_alias="AWS_ENDPOINT_URL",
        description="Override for every AWS service endpoint (LocalStack, moto). Unset on AWS.",
    )
    database_url: str | None = Field(
        default=None,
        validation_alias="DATABASE_URL",
        description="SQLAlchemy URL of PostgreSQL, e.g. postgresql+psycopg://user:pw@host/db.",
    )
    queue_prefix: str = Field(
        default="ppe-",
        validation_alias="PPE_QUEUE_PREFIX",
        description="Prefix of every queue name, so several deployments can share one account.",
    )
    frames_bucket: str = Field(
        default="ppe-frames", validation_alias="PPE_FRAMES_BUCKET", description="S3 bucket holding frames."
    )
    log_format: Literal["json", "console"] = Field(
        default="json", validation_alias="PPE_LOG_FORMAT", description="json in production, console on a terminal."
    )
    log_level: str = Field(default="INFO", validation_alias="PPE_LOG_LEVEL", description="Python log level name.")
    custom_equipment: dict[str, CustomEquipment] = Field(
        default_factory=default_custom_equipment,
        validation_alias="PPE_CUSTOM_EQUIPMENT",
        description='Custom equipment rules may require, JSON {"hi_vis_vest": {"present": [...], "absent": [...]}}: '
        "which custom-label names mean worn / seen without. Default: the shipped vest model's labels.",
    )

    @field_validator("custom_equipment", mode="before")
    @classmethod
    def _parse_custom_equipment(cls, value: Any) -> Any:
        if isinstance(value, str):
            try:
                return json.loads(value) if value.strip() else {}
            except json.JSONDecodeError as exc:
                raise ValueError(f"PPE_CUSTOM_EQUIPMENT is not valid JSON: {exc}") from exc
        return value

    @field_validator("custom_equipment")
    @classmethod
    def _custom_names(cls, value: dict[str, CustomEquipment]) -> dict[str, CustomEquipment]:
        for name in value:
            if name in BUILT_IN or not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]{0,63}", name):
                raise ValueError(
                    f"PPE_CUSTOM_EQUIPMENT: {name!r} must be a new name of letters, digits and _ "
                    f"(not one of {list(BUILT_IN)})"
                )
        return value

    def catalogue(self) -> Catalogue:
        return Catalogue(dict(self.custom_equipment))

    @field_validator("database_url")
    @classmethod
    def _normalise_database_url(cls, value: str | None) -> str | None:
        return normalise_database_url(value) if value else value


class ModelDirSettings(BaseSettings):
    """Where the local engine's built model files live (`model_workshop.model_store fetch` writes them there)."""

    model_config = SettingsConfigDict(extra="ignore", env_file=None, env_ignore_empty=True)

    model_dir: Folder = Field(
        default=CACHE_ROOT / "models",
        validation_alias="PPE_MODEL_DIR",
        description="Folder of the fetched and built ONNX models (default ~/.cache/ppe-platform/models).",
    )


def split_list(value: Any) -> Any:
    """A list setting from the environment: a JSON array, or comma-separated items (blanks dropped)."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            return json.loads(text)
        return [item.strip() for item in text.split(",") if item.strip()]
    return value


def normalise_database_url(url: str) -> str:
    """One driver everywhere (psycopg 3, sync and async): accept the plain postgres:// forms too."""
    for prefix in ("postgresql+asyncpg://", "postgresql+psycopg2://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def require_secret(name: str, value: str) -> str:
    """Fail fast on a missing or placeholder secret, naming the variable to set."""
    if value.strip().lower() in PLACEHOLDER_SECRETS or len(value) < 16:
        raise ValueError(f"{name} must be set to a real secret of at least 16 characters (got a placeholder)")
    return value
