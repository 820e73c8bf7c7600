"""face_cover on detector boxes: BlazeFace's best box per mask image as training samples, and the scoring."""

from pathlib import Path

import numpy as np
import pytest

from model_workshop.training.data import Split, folder_samples
from model_workshop.training.face_boxes import (
    best_face_boxes,
    detector_model_path,
    detector_samples,
    face_box_accuracy,
    validation_slice,
)
from model_workshop.training.trainer import choose_threshold
from model_workshop.training.train_all import WEIGHTS_DIR, face_cover_split

pytestmark = pytest.mark.models
CLASSES = ["without_mask", "with_mask"]


def test_detector_boxes_become_samples_of_the_same_image_and_group(shared_data: Path, tmp_path: Path) -> None:
    # GIVEN a few train-side mask images of both classes
    split = Split.load(WEIGHTS_DIR / "face_cover.split.json")
    samples = [s for s in folder_samples(shared_data / "masks", CLASSES) if s.file in split.train]
    few = samples[:3] + samples[-3:]
    # WHEN BlazeFace boxes them (twice: the second run reads the cache)
    boxes = best_face_boxes(few, detector_model_path(), cache_dir=tmp_path, progress=False)
    again = best_face_boxes(few, detector_model_path(), cache_dir=tmp_path, progress=False)
    # THEN each found box is a normalised box in the image, and becomes one more sample with the same label and group
    assert boxes == again and set(boxes) == {s.file for s in few}
    found = {f: b for f, b in boxes.items() if b is not None}
    assert len(found) >= 4
    for x1, y1, x2, y2 in found.values():
        assert 0.0 <= x1 < x2 <= 1.0 and 0.0 <= y1 < y2 <= 1.0
    added = detector_samples(few, boxes)
    assert [s.file for s in added] == [s.file for s in few if s.file in found]
    by_file = {s.file: s for s in few}
    assert all(s.label == by_file[s.file].label and s.group == by_file[s.file].group for s in added)


def test_face_cover_keeps_the_shipped_split_and_its_validation_slice(shared_data: Path) -> None:
    samples = folder_samples(shared_data / "masks", CLASSES)
    split = face_cover_split(samples)
    assert split == Split.load(WEIGHTS_DIR / "face_cover.split.json")
    # Adding detector-box copies of train images does not move the validation slice (split by group and file).
    train = [s for s in samples if s.file in split.train]
    assert validation_slice(train) == validation_slice(train + train[:50])


@pytest.mark.parametrize(
    ("face", "expected_found", "expected_accuracy", "expected_no_face_wrong"),
    [
        ([0.9, 0.1, 0.6, 0.2], 1.0, 1.0, 1.0),
        ([0.9, 0.1, 0.4, np.nan], 0.75, 2 / 3, 0.5),  # P 0.4 is "no mask" at the engine's 0.5 floor
    ],
)
def test_face_box_accuracy_counts_a_missing_face_as_wrong(
    face: list[float], expected_found: float, expected_accuracy: float, expected_no_face_wrong: float
) -> None:
    labels = [1, 0, 1, 0]
    probs = {
        "whole": np.array([0.9, 0.1, 0.9, 0.1], np.float32),
        "face": np.array(face, np.float32),
        "short_side": np.array([200, 200, 200, 200]),
    }
    result = face_box_accuracy(labels, probs, threshold=0.3)
    assert result["decision_threshold"] == 0.5
    assert result["face_found"] == expected_found
    assert result["detector_box_accuracy"] == pytest.approx(expected_accuracy, abs=1e-4)
    assert result["detector_box_accuracy_no_face_wrong"] == expected_no_face_wrong


def test_face_box_accuracy_scores_only_close_ups_of_64_px() -> None:
    probs = {
        "whole": np.array([0.9, 0.9], np.float32),
        "face": np.array([0.9, 0.9], np.float32),
        "short_side": np.array([63, 64]),
    }
    assert face_box_accuracy([1, 0], probs, threshold=0.5)["n"] == 1


def test_threshold_choice_respects_the_minimum() -> None:
    labels = np.array([0, 0, 1, 1])
    positive = np.array([0.1, 0.2, 0.3, 0.35])
    assert choose_threshold(labels, positive, 1) < 0.5
    assert choose_threshold(labels, positive, 1, minimum=0.5) >= 0.5
