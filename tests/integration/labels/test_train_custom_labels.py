"""Train a small custom-label model (vest vs no vest on torso boxes) on a slice of ../shared/data, export ONNX,
load it in the detector's custom-label engine, and get the expected labels on the held-back images."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import pytest
from services.detector.local_engine.custom_labels import CropLabelEngine

from services.detector.labels.cli import main
from services.detector.labels.model import Dataset
from services.detector.labels.yolo import import_yolo
from shared.rekognition import BoundingBox

SLICE_IMAGES = 150  # about 350 torso boxes; 6 epochs train in well under 90 s on 2 cores


def _vest_slice(shared_data: Path, tmp_path: Path) -> Path:
    """The first images (sorted by name) that hold torso boxes, as a dataset file: wear = 3, no_wear = 2."""
    full = import_yolo(shared_data / "helmet_vest")
    torsos = [
        image.model_copy(update={"boxes": tuple(b for b in image.boxes if b.class_name in ("wear", "no_wear"))})
        for image in full.images
    ]
    chosen = [image for image in torsos if image.boxes][:SLICE_IMAGES]
    path = tmp_path / "vest-slice.json"
    Dataset(classes=("no_wear", "wear"), images=tuple(chosen)).save(path)
    return path


@pytest.mark.slow
def test_trained_vest_model_labels_held_back_torsos(shared_data: Path, tmp_path: Path) -> None:
    # GIVEN a few dozen labelled worker photos
    dataset_file = _vest_slice(shared_data, tmp_path)
    dataset = Dataset.load(dataset_file)
    # WHEN the labels tool trains on them (automatic grouped 80/20 split, a few epochs)
    out = tmp_path / "model"
    code = main(["train", str(dataset_file), "-o", str(out), "--name", "vest", "--epochs", "6", "--margin", "0.1"])
    assert code == 0
    card = json.loads((out / "vest.card.json").read_text())
    assert card["classes"] == ["no_wear", "wear"] and card["region"] == "person" and card["positive_class"] == "wear"
    assert (out / "vest.data.csv").read_text().startswith("file,sha256,side")
    report = card["metrics"]["custom_labels"]
    assert set(report["at_threshold"]["per_class"]) == {"no_wear", "wear"}
    assert 0.05 <= report["f1_max"]["threshold"] <= 0.95
    # THEN the detector's custom-label engine loads the ONNX by its card and labels the held-back torsos
    engine = CropLabelEngine.from_card(out / "vest.card.json")
    held_back = set(json.loads((out / "vest.split.json").read_text())["test"])
    assert held_back and not held_back & set(json.loads((out / "vest.split.json").read_text())["train"])
    truth, predicted = [], []
    for image in dataset.images:
        if image.key not in held_back:
            continue
        assert image.path is not None and image.width and image.height
        pixels = cv2.imread(image.path)
        boxes = [
            BoundingBox(
                Left=b.left / image.width, Top=b.top / image.height,
                Width=b.width / image.width, Height=b.height / image.height,
            )
            for b in image.boxes
        ]  # fmt: skip
        labels = engine.detect(pixels, boxes)
        assert len(labels) <= len(boxes)
        by_box = {
            (round(label.Geometry.BoundingBox.Left, 4), round(label.Geometry.BoundingBox.Top, 4)): label.Name
            for label in labels
            if label.Geometry is not None
        }
        for box, b in zip(boxes, image.boxes, strict=True):
            truth.append(b.class_name)
            predicted.append(by_box.get((round(box.Left, 4), round(box.Top, 4)), "<none>"))
    correct = sum(t == p for t, p in zip(truth, predicted, strict=True))
    majority = max(truth.count("wear"), truth.count("no_wear"))
    print(f"held-back torsos: {len(truth)}, correct {correct}, majority-class baseline {majority}")
    assert len(truth) >= 15
    assert correct / len(truth) >= 0.75 and correct >= majority + 5  # learned more than the majority class
    assert {"wear", "no_wear"} <= {p for t, p in zip(truth, predicted, strict=True) if t == p}
