"""The generic crop-classifier trainer on small slices of ../shared/data (real images, real ONNX export)."""

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from model_workshop.scores import best_f1_threshold, class_report
from model_workshop.training import (
    DatasetError,
    Split,
    TrainConfig,
    folder_samples,
    make_split,
    train_crop_classifier,
    yolo_samples,
)
from model_workshop.training.cli import main as cli_main
from services.detector.local_engine.classifiers import CropClassifier


def test_split_keeps_groups_together_and_is_reproducible(shared_data: Path) -> None:
    classes = ["without_mask", "with_mask"]
    samples = folder_samples(shared_data / "masks", classes)
    split = make_split(samples, test_fraction=0.2, seed=0)
    # THEN no de-duplication group straddles the split, and the same seed gives the same split
    groups_by_side: dict[str, set[str]] = {}
    for s in samples:
        groups_by_side.setdefault(s.group, set()).add("test" if s.file in split.test else "train")
    assert all(len(sides) == 1 for sides in groups_by_side.values())
    assert 0.15 < len(split.test) / len(samples) < 0.25
    assert make_split(samples, test_fraction=0.2, seed=0) == split
    assert make_split(samples, test_fraction=0.2, seed=1) != split


def test_forced_test_files_are_held_back(shared_data: Path) -> None:
    classes = ["bare_hand", "gloved_hand"]
    samples = yolo_samples(shared_data / "gloves", {c: c for c in classes}, classes)
    forced = samples[0].file
    assert forced in make_split(samples, seed=0, force_test=[forced]).test


def test_metrics_hand_computed() -> None:
    labels = np.array([1, 1, 1, 0, 0])
    predicted = np.array([1, 1, 0, 0, 1])
    report = class_report(labels, predicted, ["no", "yes"])
    assert report["per_class"]["yes"] == {"precision": 0.6667, "recall": 0.6667, "f1": 0.6667, "support": 3}
    assert report["per_class"]["no"]["recall"] == 0.5
    # at t <= 0.3: 3 TP, 1 FP -> F1 6/7; at 0.35 < t <= 0.8: 2 TP, 1 FN -> 4/5; between: 2 TP, 1 FP, 1 FN -> 4/6
    threshold, f1 = best_f1_threshold(labels, np.array([0.9, 0.8, 0.3, 0.1, 0.35]), 1)
    assert f1 == pytest.approx(6 / 7, abs=1e-4)
    assert threshold <= 0.3


def test_train_tiny_mask_slice_export_and_predict_held_back(shared_data: Path, tmp_path: Path) -> None:
    # GIVEN a small slice of the mask faces (folder-per-class), split 80/20 by de-duplication group
    classes = ["without_mask", "with_mask"]
    samples = folder_samples(shared_data / "masks", classes)
    rng = np.random.default_rng(0)
    slice_ = [samples[i] for i in rng.choice(len(samples), size=300, replace=False)]
    config = TrainConfig(epochs=10, lr=5e-3, width=0.75, crop_margin=0.05, context_margin=0.3)
    # WHEN it trains for a few epochs and exports ONNX
    result = train_crop_classifier(
        slice_,
        classes,
        tmp_path / "out",
        "mask_slice",
        positive_class="with_mask",
        config=config,
        data_source="test slice",
        license_status="MIT",
        cache_dir=tmp_path / "cache",
        progress=False,
    )
    # THEN the ONNX model loads in the runtime classifier and labels most held-back images right
    classifier = CropClassifier(result.model_path)
    assert classifier.classes == classes and classifier.positive_index == 1
    held_back = result.held_back
    images = [cv2.imread(str(s.image_path)) for s in held_back]
    probs = classifier.predict(images)
    predicted = (probs[:, 1] >= classifier.threshold).astype(int)
    truth = np.array([s.label for s in held_back])
    assert len(held_back) >= 40
    assert float(np.mean(predicted == truth)) >= 0.75
    # and the card, split and data manifest describe what was trained on
    card = json.loads(result.card_path.read_text())
    split = Split.load(result.split_path)
    assert not split.train & split.test
    assert {s.file for s in held_back} <= split.test
    assert card["metrics"]["held_back_clean"]["n"] == len(held_back)
    assert set(card["metrics"]["held_back_clean"]["per_class"]) == set(classes)
    assert 0.0 < card["metrics"]["held_back_clean"]["f1_max_threshold"] < 1.0
    assert card["training"]["torch_version"] and card["data"]["license_status"] == "MIT"
    rows = result.data_manifest_path.read_text().splitlines()
    assert rows[0] == "file,sha256,side" and len(rows) - 1 == len({s.file for s in slice_})
    assert (tmp_path / "cache").is_dir() and list((tmp_path / "cache").iterdir())


def test_cli_trains_from_a_yolo_folder_and_rejects_bad_input(
    shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a YOLO folder with 24 glove images (links to the real files)
    src = shared_data / "gloves"
    yolo = tmp_path / "yolo"
    (yolo / "images").mkdir(parents=True)
    (yolo / "labels").mkdir()
    (yolo / "data.yaml").write_text((src / "data.yaml").read_text())
    for image in sorted((src / "images").iterdir())[::25]:
        (yolo / "images" / image.name).symlink_to(image)
        (yolo / "labels" / f"{image.stem}.txt").symlink_to(src / "labels" / f"{image.stem}.txt")
    # WHEN the CLI trains one epoch
    code = cli_main(
        [
            "--yolo",
            str(yolo),
            "--map",
            "bare_hand=bare",
            "--map",
            "gloved_hand=gloved",
            "--classes",
            "bare,gloved",
            "--positive",
            "gloved",
            "--name",
            "g",
            "--out",
            str(tmp_path / "out"),
            "--epochs",
            "1",
        ]
    )
    # THEN it writes the model and card with the mapped classes
    assert code == 0
    card = json.loads((tmp_path / "out" / "g.card.json").read_text())
    assert card["classes"] == ["bare", "gloved"] and card["positive_class"] == "gloved"
    assert (tmp_path / "out" / "g.onnx").stat().st_size < 2_000_000
    # AND an unknown class gives a clear error and exit code 2
    code = cli_main(
        [
            "--yolo",
            str(yolo),
            "--map",
            "helmet=helmet",
            "--map",
            "bare_hand=bare",
            "--name",
            "x",
            "--out",
            str(tmp_path / "bad"),
        ]
    )
    assert code == 2
    assert "'helmet' is not in" in capsys.readouterr().err
    assert not (tmp_path / "bad" / "x.onnx").exists()


def test_yolo_folder_without_names_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "images").mkdir()
    (tmp_path / "labels").mkdir()
    with pytest.raises(DatasetError, match="data.yaml"):
        yolo_samples(tmp_path, {"a": "a"}, ["a", "b"])


def test_help_shows_an_example(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli_main(["--help"])
    assert "example" in capsys.readouterr().out
