"""The one lookup of the shared photo data: $PPE_SHARED_DATA, else ../shared/data beside the repository."""

from pathlib import Path

import pytest

from model_workshop import shared_data
from model_workshop.shared_data import SharedDataMissing, shared_data_dir


@pytest.fixture
def beside(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A stand-in for ../shared/data beside the repository (not created: each test decides)."""
    folder = tmp_path / "shared" / "data"
    monkeypatch.setattr(shared_data, "BESIDE_REPO", folder)
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
