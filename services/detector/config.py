"""Detector settings (env prefix DETECTOR_), on top of the shared platform settings.

Environment the local stack sets for the detector (all optional except the shared AWS/queue/bucket ones):
- AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION, PPE_QUEUE_PREFIX, PPE_FRAMES_BUCKET,
  PPE_LOG_FORMAT (shared, see shared.config).
- DETECTOR_PORT: HTTP port of health, metrics and the Rekognition-compatible API (default 8081).
- DETECTOR_PPE_ENGINE: `local` (offline models, default) or `rekognition` (AWS).
- DETECTOR_MODEL_DIR: cache dir of the local engine's fetched models (default: the engine's own default).
- DETECTOR_WORKERS: model worker processes of the local engine (default 2, one per core).
- DETECTOR_CONCURRENCY: frames in flight per detector process (the consumer's cap, i.e. the backpressure).
- DETECTOR_CUSTOM_LABEL_MODELS: JSON {"name": {"engine": "crop", "model_path": "...", "label_names": {...}}} of
  custom-label models (fields: CustomLabelModel).
  Default: {"vest": the shipped crop classifier, labels hi_vis_vest / no_hi_vis_vest}.
- DETECTOR_CUSTOM_LABEL_SITES: JSON {"<site id or camera id or *>": ["name", ...]}: which frames use which.
  Default {"*": ["vest"]}. Set both to {} to run no custom-label model.
- DETECTOR_REKOGNITION_ENDPOINT_URL: endpoint of Rekognition for the `rekognition` engine (unset on AWS; it does
  NOT follow AWS_ENDPOINT_URL, which points at the SQS/S3 emulator locally).
- DETECTOR_HOST: bind address (default 127.0.0.1; containers set 0.0.0.0).
- DETECTOR_API_KEYS (secret): the Rekognition-compatible API's clients, `ACCESS_KEY_ID:SECRET` pairs separated by
  commas, one pair per client. Calls are checked with AWS Signature V4 against them; unset, every call is refused.
  `make run` generates one pair into var/secrets.env.
- DETECTOR_API_S3_OBJECTS: JSON list of `bucket/prefix` that `Image.S3Object` may name (default []: none).
- DETECTOR_API_MAX_BODY_BYTES: largest request body the API reads (default: a 4 MB image in base64 plus 64 KiB).
"""

import json
import math
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from shared.config import PlatformSettings, require_secret, split_list

ACCESS_KEY_ID = re.compile(r"^[A-Za-z0-9]{8,128}$")
# Image.Bytes (at most 4 MB, adapters.images.MAX_BYTES_INLINE) arrives base64-encoded inside a small JSON document.
DEFAULT_API_MAX_BODY_BYTES = math.ceil(4 * 1024 * 1024 / 3) * 4 + 64 * 1024


class CustomLabelModel(BaseModel):
    """One configured custom-label model (e.g. the hi-vis vest classifier)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    engine: Literal["crop", "rekognition"] = Field(
        default="crop", description="`crop`: local person-crop classifier; `rekognition`: AWS DetectCustomLabels."
    )
    model_path: Path | None = Field(default=None, description="ONNX file of a `crop` model.")
    project_version_arn: str | None = Field(default=None, description="Rekognition Custom Labels model (rekognition).")
    min_confidence: float = Field(default=50.0, ge=0, le=100, description="Labels under this are dropped.")
    region: Literal["torso", "person", "image"] | None = Field(
        default=None, description="`crop`: what is classified per person (default: the model card's region)."
    )
    label_names: dict[str, str] = Field(
        default_factory=dict, description="`crop`: class -> label name; a class mapped to '' is never returned."
    )

    @model_validator(mode="after")
    def _needs_its_model(self) -> "CustomLabelModel":
        if self.engine == "crop" and self.model_path is None:
            raise ValueError("a `crop` custom-label model needs model_path")
        if self.engine == "rekognition" and not self.project_version_arn:
            raise ValueError("a `rekognition` custom-label model needs project_version_arn")
        return self


WEIGHTS_DIR = Path(__file__).resolve().parent / "local_engine" / "weights"


def default_custom_label_models() -> dict[str, CustomLabelModel]:
    """The shipped hi-vis vest / workwear classifier on each person's torso."""
    return {
        "vest": CustomLabelModel(
            engine="crop",
            model_path=WEIGHTS_DIR / "vest.onnx",
            label_names={"wear": "hi_vis_vest", "no_wear": "no_hi_vis_vest"},
        )
    }


class DetectorSettings(PlatformSettings):
    # hide_input_in_errors: a refused DETECTOR_API_KEYS must not print its secrets
    model_config = SettingsConfigDict(env_prefix="DETECTOR_", extra="ignore", env_file=None, hide_input_in_errors=True)

    port: int = Field(default=8081, ge=0, le=65535, description="HTTP port (health, metrics, Rekognition API).")
    host: str = Field(default="127.0.0.1", description="HTTP bind address (containers set 0.0.0.0).")
    ppe_engine: Literal["local", "rekognition"] = Field(default="local", description="PPE engine plug-in.")
    model_dir: Path | None = Field(default=None, description="Local engine model cache dir.")
    workers: int = Field(default=2, ge=1, le=32, description="Local engine worker processes (one model each).")
    concurrency: int = Field(default=4, ge=1, le=64, description="Frames in flight (consumer cap).")
    receive_when_free: int = Field(
        default=2, ge=1, le=10, description="Poll the queue only when this many of the `concurrency` slots are free."
    )
    delete_linger_s: float = Field(
        default=0.2, ge=0, le=5, description="Collect handled messages this long, then delete them in one batch call."
    )
    handler_timeout_s: float = Field(default=45.0, gt=0, description="Per-frame limit, below the visibility timeout.")
    model_attempts: int = Field(default=3, ge=1, le=10, description="Deliveries before a model error is rejected.")
    retry_delay_s: int = Field(default=5, ge=0, le=900, description="Base delay before retrying a model error.")
    custom_label_models: dict[str, CustomLabelModel] = Field(
        default_factory=default_custom_label_models, description="Custom-label models by name (JSON)."
    )
    custom_label_sites: dict[str, list[str]] = Field(
        default_factory=lambda: {"*": ["vest"]},
        description="Site id, camera id or `*` -> custom-label model names to run on its frames (JSON).",
    )
    results_prefix: str = Field(
        default="detector-results/", description="S3 prefix (frames bucket) of the per-frame idempotency records."
    )
    rekognition_endpoint_url: str | None = Field(default=None, description="Rekognition endpoint override.")
    rekognition_attempts: int = Field(default=4, ge=1, le=10, description="Our own retries on throttling.")
    consume: bool = Field(default=True, description="Run the queue consumer (false: API only).")
    api_keys: SecretStr = Field(
        default=SecretStr(""),
        description="Clients of the Rekognition-compatible API: `ACCESS_KEY_ID:SECRET` pairs, comma-separated "
        "(DETECTOR_API_KEYS). Empty: the API refuses every call.",
    )
    api_s3_objects: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="`bucket/prefix` entries (JSON list or comma-separated) that Image.S3Object may read; "
        "anything else is refused like a missing object.",
    )
    api_max_body_bytes: int = Field(
        default=DEFAULT_API_MAX_BODY_BYTES, ge=1024, description="Largest API request body read, counted as it arrives."
    )
    api_body_timeout_s: float = Field(default=30.0, gt=0, description="An API body not received by then is refused.")

    @field_validator("custom_label_models", "custom_label_sites", mode="before")
    @classmethod
    def _parse_json(cls, value: Any) -> Any:
        if isinstance(value, str):
            return json.loads(value) if value.strip() else {}
        return value

    @field_validator("api_s3_objects", mode="before")
    @classmethod
    def _parse_list(cls, value: Any) -> Any:
        return split_list(value)

    @field_validator("api_s3_objects")
    @classmethod
    def _bucket_and_prefix(cls, value: list[str]) -> list[str]:
        for entry in value:
            bucket, _, _ = entry.partition("/")
            if not bucket or "/" not in entry:
                raise ValueError(
                    f"DETECTOR_API_S3_OBJECTS entry {entry!r} must be `bucket/prefix` (prefix may be empty)"
                )
        return value

    @field_validator("api_keys")
    @classmethod
    def _key_pairs(cls, value: SecretStr) -> SecretStr:
        parse_api_keys(value.get_secret_value())  # fail at start, naming the variable
        return value

    def api_credentials(self) -> dict[str, str]:
        """Access key id -> secret access key of every API client."""
        return parse_api_keys(self.api_keys.get_secret_value())

    def api_s3_allowed(self, bucket: str, key: str) -> bool:
        """Whether Image.S3Object may read s3://bucket/key."""
        for entry in self.api_s3_objects:
            allowed_bucket, _, prefix = entry.partition("/")
            if bucket == allowed_bucket and key.startswith(prefix):
                return True
        return False

    @model_validator(mode="after")
    def _sites_name_known_models(self) -> "DetectorSettings":
        for scope, names in self.custom_label_sites.items():
            unknown = [name for name in names if name not in self.custom_label_models]
            if unknown:
                raise ValueError(
                    f"DETECTOR_CUSTOM_LABEL_SITES[{scope!r}] names {unknown}, which DETECTOR_CUSTOM_LABEL_MODELS "
                    f"does not define (defined: {sorted(self.custom_label_models)})"
                )
        return self

    def custom_labels_for(self, *, site_id: str, camera_id: str) -> list[str]:
        """Model names for a frame: the camera's list, else the site's, else the `*` default."""
        for scope in (camera_id, site_id, "*"):
            if scope in self.custom_label_sites:
                return list(self.custom_label_sites[scope])
        return []


def parse_api_keys(text: str) -> dict[str, str]:
    """`AKID:SECRET,AKID2:SECRET2` -> {akid: secret}; refuses malformed pairs and placeholder secrets."""
    keys: dict[str, str] = {}
    for pair in (item.strip() for item in text.split(",")):
        if not pair:
            continue
        access_key, sep, secret = pair.partition(":")
        if not sep or not ACCESS_KEY_ID.match(access_key):
            raise ValueError(
                "DETECTOR_API_KEYS must be ACCESS_KEY_ID:SECRET pairs separated by commas "
                "(access key id: 8-128 letters or digits)"
            )
        if access_key in keys:
            raise ValueError(f"DETECTOR_API_KEYS names access key {access_key} twice")
        keys[access_key] = require_secret(f"DETECTOR_API_KEYS (secret of {access_key})", secret)
    return keys
