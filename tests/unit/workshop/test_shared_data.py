"""The folders from the environment, through one settings class each: the one lookup of the shared photo data
($PPE_SHARED_DATA, else ../shared/data beside the repository), the training caches and the runtime's model dir."""

from pathlib import Path

import cv2
import numpy as np
import pytest

from model_workshop import settings
from model_workshop.settings import SharedDataMissing, WorkshopSettings, shared_data_dir
from model_workshop.training import CropSample, TrainConfig
from model_workshop.training.crops import extract_contexts
from services.detector.local_engine.model_files import default_model_dir
from shared.config import ModelDirSettings


@pytest.fixture
def beside(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A stand-in for ../shared/data beside the repository (not created: each test decides)."""
    folder = tmp_path / "shared" / "data"
    monkeypatch.setattr(settings, "BESIDE_REPO", folder)
    monkeypatch.delenv("PPE_SHARED_DATA", raising=False)
    return folder


def test_the_folder_beside_the_repository_is_used_when_nothing_is_set(beside: Path) -> None:
    beside.mkdir(parents=True)
    assert shared_data_dir() == beside


def test_ppe_shared_data_wins_over_the_folder_beside(
    beside: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    beside.mkdir(parents=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.setenv("PPE_SHARED_DATA", str(elsewhere))
    assert shared_data_dir() == elsewhere


def test_no_folder_says_where_it_looked_and_how_to_provide_it(beside: Path) -> None:
    with pytest.raises(SharedDataMissing) as missing:
        shared_data_dir()
    assert str(beside) in str(missing.value) and "PPE_SHARED_DATA is not set" in str(missing.value)
    assert "../shared/data" in str(missing.value)


def test_a_set_but_missing_ppe_shared_data_is_absent_not_a_fallback(
    beside: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN data beside the repository, and PPE_SHARED_DATA pointing at a folder that is not there
    beside.mkdir(parents=True)
    monkeypatch.setenv("PPE_SHARED_DATA", str(tmp_path / "typo"))
    # THEN the typo is reported, not silently replaced by the other folder
    with pytest.raises(SharedDataMissing, match="PPE_SHARED_DATA=.*typo"):
        shared_data_dir()


def test_an_empty_variable_counts_as_unset_and_a_tilde_is_home(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN the three workshop variables set empty (as a blank line in an env file leaves them)
    for name in ("PPE_SHARED_DATA", "PPE_CROP_CACHE", "PPE_FACE_BOX_CACHE", "PPE_MODEL_DIR"):
        monkeypatch.setenv(name, "")
    # THEN each falls back to its default, never to the current folder
    folders = WorkshopSettings()
    assert folders.shared_data is None
    assert folders.crop_cache == Path.home() / ".cache" / "ppe-platform" / "crops"
    assert folders.face_box_cache == Path.home() / ".cache" / "ppe-platform" / "face_boxes"
    assert default_model_dir() == ModelDirSettings().model_dir == Path.home() / ".cache" / "ppe-platform" / "models"
    # AND a ~ in a set variable is the user's home
    monkeypatch.setenv("PPE_MODEL_DIR", "~/models-here")
    monkeypatch.setenv("PPE_CROP_CACHE", "~/crops-here")
    assert default_model_dir() == Path.home() / "models-here"
    assert WorkshopSettings().crop_cache == Path.home() / "crops-here"


def test_crop_cache_is_read_when_the_crops_are_cut(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN one small image, and PPE_CROP_CACHE set after every import was done
    image = tmp_path / "one.png"
    cv2.imwrite(str(image), np.full((40, 60, 3), 127, np.uint8))
    sample = CropSample(file="one.png", image_path=image, box=(0.2, 0.2, 0.6, 0.8), label=0, group="one")
    cache = tmp_path / "cache"
    monkeypatch.setenv("PPE_CROP_CACHE", str(cache))
    # WHEN crops are cut with the default cache_dir, and again with none
    contexts, _ = extract_contexts([sample], TrainConfig(), progress=False)
    # THEN they were cached in that folder; cache_dir=None caches nothing
    assert contexts.shape[0] == 1 and len(list(cache.glob("*.npz"))) == 1
    monkeypatch.setenv("PPE_CROP_CACHE", str(tmp_path / "other"))
    extract_contexts([sample], TrainConfig(), cache_dir=None, progress=False)
    assert not (tmp_path / "other").exists()
