"""Train a small custom-label model (vest vs no vest on torso boxes) on a slice of ../shared/data, export ONNX,
load it in the detector's custom-label engine, and get the expected labels on the held-back images."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import cv2
import pytest

from services.detector.config import DetectorSettings
from services.detector.engines.base import ImageInput
from services.detector.engines.registry import build_engines
from model_workshop.labels.cli import main
from model_workshop.labels.model import Dataset, ImageRecord
from model_workshop.labels.yolo import import_yolo
from services.detector.local_engine.custom_labels import CropLabeller
from shared.rekognition import BoundingBox, CustomLabel

SLICE_IMAGES = 150  # about 350 torso boxes; 6 epochs train in about 30 s of CPU on 2 cores


@dataclass(frozen=True)
class Trained:
    out: Path
    held_back: list[ImageRecord]


@pytest.fixture(scope="module")
def trained_vest(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Trained:
    """The first images (sorted by name) that hold torso boxes (wear = 3, no_wear = 2), trained with `labels train`."""
    tmp_path = tmp_path_factory.mktemp("vest")
    full = import_yolo(shared_data / "helmet_vest")
    torsos = [
        image.model_copy(update={"boxes": tuple(b for b in image.boxes if b.class_name in ("wear", "no_wear"))})
        for image in full.images
    ]
    dataset = Dataset(
        classes=("no_wear", "wear"), images=tuple([image for image in torsos if image.boxes][:SLICE_IMAGES])
    )
    dataset_file = tmp_path / "vest-slice.json"
    dataset.save(dataset_file)
    out = tmp_path / "model"
    args = ["train", str(dataset_file), "-o", str(out), "--name", "vest", "--epochs", "6", "--margin", "0.1"]
    assert main([*args, "--cache-dir", str(tmp_path / "crops")]) == 0
    split = json.loads((out / "vest.split.json").read_text())
    assert split["test"] and not set(split["test"]) & set(split["train"])
    return Trained(out, [image for image in dataset.images if image.key in set(split["test"])])


def _boxes(image: ImageRecord) -> list[BoundingBox]:
    assert image.width and image.height
    return [
        BoundingBox(
            Left=b.left / image.width,
            Top=b.top / image.height,
            Width=b.width / image.width,
            Height=b.height / image.height,
        )
        for b in image.boxes
    ]


def _score(held_back: list[ImageRecord], labels_per_image: list[list[CustomLabel]]) -> tuple[int, int, int, set[str]]:
    """(boxes, correct, majority-class baseline, classes predicted correctly at least once)."""
    truth, predicted = [], []
    for image, labels in zip(held_back, labels_per_image, strict=True):
        by_box = {
            (round(label.Geometry.BoundingBox.Left, 4), round(label.Geometry.BoundingBox.Top, 4)): label.Name
            for label in labels
            if label.Geometry is not None
        }
        for box, labelled in zip(_boxes(image), image.boxes, strict=True):
            truth.append(labelled.class_name)
            predicted.append(by_box.get((round(box.Left, 4), round(box.Top, 4)), "<none>"))
    correct = sum(t == p for t, p in zip(truth, predicted, strict=True))
    majority = max(truth.count("wear"), truth.count("no_wear"))
    return len(truth), correct, majority, {p for t, p in zip(truth, predicted, strict=True) if t == p}


@pytest.mark.slow
def test_trained_vest_model_labels_held_back_torsos(trained_vest: Trained) -> None:
    card = json.loads((trained_vest.out / "vest.card.json").read_text())
    assert card["classes"] == ["no_wear", "wear"] and card["region"] == "person" and card["positive_class"] == "wear"
    assert (trained_vest.out / "vest.data.csv").read_text().startswith("file,sha256,side")
    report = card["metrics"]["custom_labels"]
    assert set(report["at_threshold"]["per_class"]) == {"no_wear", "wear"}
    assert 0.05 <= report["f1_max"]["threshold"] <= 0.95
    # the detector's custom-label engine loads the ONNX by its card and labels the held-back torsos
    engine = CropLabeller.from_card(trained_vest.out / "vest.card.json")
    labels = [engine.detect(cv2.imread(str(image.path)), _boxes(image)) for image in trained_vest.held_back]
    boxes, correct, majority, right_classes = _score(trained_vest.held_back, labels)
    print(f"held-back torsos: {boxes}, correct {correct}, majority-class baseline {majority}")
    assert boxes >= 15
    assert correct / boxes >= 0.75 and correct >= majority + 5  # learned more than the majority class
    assert right_classes == {"wear", "no_wear"}


@pytest.mark.slow
async def test_detector_registry_serves_the_trained_model(trained_vest: Trained) -> None:
    # GIVEN the detector configured with the trained model as a `crop` custom-label model
    settings = DetectorSettings(
        ppe_engine="rekognition",
        workers=1,
        custom_label_models={"vest": {"engine": "crop", "model_path": str(trained_vest.out / "vest.onnx")}},
    )
    engine = build_engines(settings).custom_labels["vest"]
    await engine.start()
    try:
        # WHEN it labels the held-back torsos through the registry's engine (a model worker process)
        labels = []
        for image in trained_vest.held_back:
            assert image.path is not None and image.width and image.height
            data = ImageInput(Path(image.path).read_bytes(), "image/jpeg", image.width, image.height)
            labels.append(list((await engine.detect_labels(data, persons=_boxes(image))).CustomLabels))
    finally:
        await engine.close()
    # THEN it gives the same labels as the model loaded directly, right as often
    direct = CropLabeller.from_card(trained_vest.out / "vest.card.json")
    expected = [direct.detect(cv2.imread(str(image.path)), _boxes(image)) for image in trained_vest.held_back]
    assert [[label.Name for label in per_image] for per_image in labels] == [
        [label.Name for label in per_image] for per_image in expected
    ]
    boxes, correct, majority, _ = _score(trained_vest.held_back, labels)
    assert correct / boxes >= 0.75 and correct >= majority + 5
