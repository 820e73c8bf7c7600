"""The shipped crop classifiers (weights/) on real images they never saw: the demo scenes are held back."""

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from services.detector.local_engine.classifiers import CropClassifier, ModelFileError
from services.detector.local_engine.custom_labels import CropLabeller
from model_workshop.training.data import Split, sha256_file
from shared.rekognition import BoundingBox

MODELS = {
    "head_cover": ["no_helmet", "helmet"],
    "face_cover": ["without_mask", "with_mask"],
    "hand_cover": ["bare_hand", "gloved_hand"],
    "vest": ["no_wear", "wear"],
}
HELMET, NO_HELMET, NO_WEAR, WEAR = 0, 1, 2, 3


def _scene_boxes(shared_data: Path) -> list[tuple[Path, list[tuple[int, tuple[float, float, float, float]]]]]:
    scenes = []
    for label_file in sorted((shared_data / "scenes" / "labels").glob("*.txt")):
        image = shared_data / "scenes" / "images" / f"{label_file.stem}.jpg"
        rows = []
        for line in label_file.read_text().splitlines():
            c, cx, cy, w, h = line.split()[:5]
            cxf, cyf, wf, hf = float(cx), float(cy), float(w), float(h)
            rows.append((int(c), (cxf - wf / 2, cyf - hf / 2, cxf + wf / 2, cyf + hf / 2)))
        scenes.append((image, rows))
    return scenes


def _pixels(box: tuple[float, float, float, float], image: np.ndarray) -> tuple[float, float, float, float]:
    h, w = image.shape[:2]
    return (box[0] * w, box[1] * h, box[2] * w, box[3] * h)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_shipped_model_has_card_split_and_hash_manifest(name: str, weights_dir: Path) -> None:
    model = weights_dir / f"{name}.onnx"
    classifier = CropClassifier(model)
    card = json.loads((weights_dir / f"{name}.card.json").read_text())
    assert classifier.classes == MODELS[name] and classifier.positive_index == 1
    assert model.stat().st_size < 2_000_000
    assert card["onnx"]["sha256"] == sha256_file(model)
    assert card["data"]["license_status"] and card["data"]["source"]
    if name in ("head_cover", "vest"):
        assert "internal evaluation only" in card["data"]["license_status"]
    split = Split.load(weights_dir / card["data"]["split_file"])
    assert split.test and split.train and not split.train & split.test
    manifest = (weights_dir / card["data"]["hash_manifest"]).read_text().splitlines()
    assert manifest[0] == "file,sha256,side"
    rows = [line.split(",") for line in manifest[1:]]
    assert rows and all(len(digest) == 64 for _, digest, _ in rows)
    assert {f for f, _, side in rows if side == "test"} <= split.test
    assert {f for f, _, side in rows if side == "train"} <= split.train
    assert card["metrics"]["held_back_clean"]["accuracy"] >= 0.8


def test_helmet_vest_scenes_are_held_back(weights_dir: Path) -> None:
    split = Split.load(weights_dir / "head_cover.split.json")
    assert "helmet_vest/images/panly_part2_000534.jpg" in split.test
    assert Split.load(weights_dir / "vest.split.json") == split


def test_head_cover_on_scene_heads(shared_data: Path, weights_dir: Path) -> None:
    # GIVEN the labelled heads of the 13 demo scenes (held back from training)
    classifier = CropClassifier(weights_dir / "head_cover.onnx")
    truth, predicted = [], []
    for image_path, rows in _scene_boxes(shared_data):
        image = cv2.imread(str(image_path))
        heads = [(c, _pixels(b, image)) for c, b in rows if c in (HELMET, NO_HELMET)]
        probs = classifier.classify(image, [b for _, b in heads])
        truth += [c == HELMET for c, _ in heads]
        predicted += list(probs[:, classifier.positive_index] >= classifier.threshold)
    # THEN helmets and bare heads are told apart
    truth_a, predicted_a = np.array(truth), np.array(predicted)
    assert truth_a.sum() >= 30 and (~truth_a).sum() >= 8
    assert float(np.mean(truth_a == predicted_a)) >= 0.85
    assert float(np.mean(predicted_a[~truth_a] == False)) >= 0.6  # noqa: E712  bare heads are found


def _person_box_around_torso(torso: tuple[float, float, float, float]) -> BoundingBox:
    # Inverse of torso_box_from_person: torso spans 18..58 % of the person's height and 80 % of its width.
    x1, y1, x2, y2 = torso
    height = (y2 - y1) / 0.40
    width = (x2 - x1) / 0.8
    cx = (x1 + x2) / 2
    return BoundingBox(Left=cx - width / 2, Top=y1 - 0.18 * height, Width=width, Height=height)


def test_vest_engine_labels_vest_wearers_in_scenes(shared_data: Path, weights_dir: Path) -> None:
    # GIVEN person boxes around each labelled torso of the demo scenes
    engine = CropLabeller(weights_dir / "vest.onnx")
    assert engine.region == "torso" and engine.model_version.startswith("vest-")
    right = total = 0
    for image_path, rows in _scene_boxes(shared_data):
        image = cv2.imread(str(image_path))
        torsos = [(c, b) for c, b in rows if c in (WEAR, NO_WEAR)]
        persons = [_person_box_around_torso(b) for _, b in torsos]
        labels = engine.detect(image, persons)
        # THEN each label lies on its person's torso; every confidence is 50..100
        for label in labels:
            assert 50.0 <= label.Confidence <= 100.0
            assert label.Geometry is not None and label.Geometry.BoundingBox is not None
        by_torso = {}
        for label in labels:
            bb = label.Geometry.BoundingBox  # type: ignore[union-attr]
            centre = (bb.Left + bb.Width / 2, bb.Top + bb.Height / 2)
            for i, (_, t) in enumerate(torsos):
                if t[0] <= centre[0] <= t[2] and t[1] <= centre[1] <= t[3]:
                    by_torso[i] = label.Name
        for i, (c, _) in enumerate(torsos):
            total += 1
            right += by_torso.get(i) == ("hi_vis_vest" if c == WEAR else "no_hi_vis_vest")
    assert total >= 40
    assert right / total >= 0.8


def test_vest_engine_on_one_vest_wearer(shared_data: Path, weights_dir: Path) -> None:
    # GIVEN a scene with five vest-wearing workers; take the largest
    image_path, rows = next(s for s in _scene_boxes(shared_data) if s[0].stem == "scene_panly_part2_000534")
    image = cv2.imread(str(image_path))
    torso = max((b for c, b in rows if c == WEAR), key=lambda b: (b[2] - b[0]) * (b[3] - b[1]))
    labels = CropLabeller(weights_dir / "vest.onnx").detect(image, [_person_box_around_torso(torso)])
    # THEN that person's region gets the vest label
    assert [label.Name for label in labels] == ["hi_vis_vest"]
    assert labels[0].Confidence >= 60


def test_missing_model_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match="missing"):
        CropClassifier(tmp_path / "nope.onnx")
