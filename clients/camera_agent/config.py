"""Agent configuration: a YAML file and/or flags, validated up front."""

import os
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, HttpUrl, model_validator


class MotionConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    threshold: float = Field(default=0.02, gt=0, le=1, description="Fraction of pixels that must change.")
    pixel_delta: int = Field(default=25, ge=1, le=255, description="Grey-level change that counts a pixel as moved.")
    min_interval_s: float = Field(default=1.0, ge=0, description="Never send motion frames closer than this.")


class CameraConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, description="Camera id registered in ingest.")
    source: str = Field(min_length=1, description="rtsp://..., http(s)://... MJPEG, a video file, or v4l2:<index>.")
    api_key: str | None = Field(default=None, description="The camera's ingest API key.")
    api_key_env: str | None = Field(default=None, description="Name of an env var holding the key (preferred).")
    interval_s: float = Field(default=2.0, gt=0, description="Send one frame every N seconds.")
    motion: MotionConfig | None = Field(default=None, description="Also send when motion is detected.")
    jpeg_quality: int = Field(default=85, ge=30, le=100)
    max_side: int = Field(default=1280, ge=64, le=4096, description="Downscale so the long side is at most this.")
    read_timeout_s: float = Field(default=10.0, gt=0, description="A stream silent this long is reconnected.")
    realtime: bool = Field(default=True, description="Pace file sources at their frame rate, like a live camera.")
    loop: bool = Field(default=False, description="Restart a file source at its end.")

    @model_validator(mode="after")
    def _one_key(self) -> "CameraConfig":
        if not self.api_key and not self.api_key_env:
            raise ValueError(f"camera {self.id}: set api_key_env (or api_key)")
        return self

    def resolved_key(self) -> str:
        if self.api_key:
            return self.api_key
        assert self.api_key_env is not None
        value = os.environ.get(self.api_key_env)
        if not value:
            raise ValueError(f"camera {self.id}: environment variable {self.api_key_env} is not set")
        return value


class AgentConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ingest_url: HttpUrl = Field(description="Base URL of ingest, e.g. http://127.0.0.1:8080.")
    buffer_dir: Path = Field(default=Path("var/agent-buffer"), description="On-disk spool of unsent frames.")
    buffer_max_frames: int = Field(default=500, ge=1, description="Per camera; the oldest are dropped beyond it.")
    metrics_port: int | None = Field(default=None, ge=0, le=65535, description="Prometheus port; unset = off.")
    request_timeout_s: float = Field(default=10.0, gt=0)
    cameras: list[CameraConfig] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_ids(self) -> "AgentConfig":
        ids = [camera.id for camera in self.cameras]
        if len(ids) != len(set(ids)):
            raise ValueError("camera ids must be unique")
        return self


def load_config(path: Path) -> AgentConfig:
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError as exc:
        raise SystemExit(f"config file {path} not found") from exc
    return AgentConfig.model_validate(raw)
