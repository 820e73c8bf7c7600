"""The workshop's folders, read from the environment through one settings class, and the one lookup of the data.

- PPE_SHARED_DATA: the training / evaluation photo data (scenes/, helmet_vest/, masks/, gloves/, manifest.csv);
  unset, ../shared/data beside the repository (where CI lays it). Nothing else is searched: a clone without
  either has no data, and `shared_data_dir` says so.
- PPE_CROP_CACHE, PPE_FACE_BOX_CACHE: where training caches cut crops and face-detector boxes (never the repository).
The built models' folder (PPE_MODEL_DIR) is the runtime's setting: shared.config.ModelDirSettings.
"""

from __future__ import annotations

import enum
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.config import CACHE_ROOT, Folder

SHARED_DATA_VAR = "PPE_SHARED_DATA"
BESIDE_REPO = Path(__file__).resolve().parents[1].parent / "shared" / "data"


class WorkshopSettings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore", env_file=None, env_ignore_empty=True)

    shared_data: Folder | None = Field(
        default=None,
        validation_alias=SHARED_DATA_VAR,
        description="The photo data folder; unset: ../shared/data beside the repository.",
    )
    crop_cache: Folder = Field(
        default=CACHE_ROOT / "crops",
        validation_alias="PPE_CROP_CACHE",
        description="Cache of the context crops cut for crop-classifier training.",
    )
    face_box_cache: Folder = Field(
        default=CACHE_ROOT / "face_boxes",
        validation_alias="PPE_FACE_BOX_CACHE",
        description="Cache of the face detector's best box per training image.",
    )


class FromSettings(enum.Enum):
    """The default of a `cache_dir` argument: the folder WorkshopSettings names when the call runs (None: no cache)."""

    CACHE = "cache"


class SharedDataMissing(FileNotFoundError):
    """The shared data folder is not there; the message names the folder looked at and how to provide it."""


def shared_data_dir(settings: WorkshopSettings | None = None) -> Path:
    """The data folder (holding scenes/, helmet_vest/, masks/, gloves/, manifest.csv); SharedDataMissing if absent."""
    configured = (settings or WorkshopSettings()).shared_data
    folder = configured or BESIDE_REPO
    if folder.is_dir():
        return folder
    where = f"{SHARED_DATA_VAR}={configured}" if configured else f"{BESIDE_REPO} (and {SHARED_DATA_VAR} is not set)"
    raise SharedDataMissing(
        f"the shared data folder is missing: looked at {where}; "
        f"lay the data folder at ../shared/data beside the repository or set {SHARED_DATA_VAR} to it"
    )
