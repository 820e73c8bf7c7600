"""The part detector on real photos: HEAD boxes on labelled heads in site scenes, HAND boxes on glove photos.

Needs the built models (`nanodet-parts-int8.onnx`, from `model_store fetch`) and ../shared/data (skipped without).
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from model_workshop.eval_data import read_yolo
from services.detector.local_engine.model_files import require_models
from services.detector.local_engine.parts import PartBoxes, PartDetector, merge_parts
from services.detector.local_engine.persons import PersonDetector
from shared.boxes import iou_matrix

pytestmark = pytest.mark.models

WEIGHTS = Path(__file__).resolve().parents[3] / "services" / "detector" / "local_engine" / "weights"


@pytest.fixture(scope="module")
def data(shared_data: Path) -> Path:
    """The labelled photos: the tests that read them skip, saying why, where the data folder is not laid out."""
    return shared_data


@pytest.fixture(scope="module")
def detector(model_dir: Path) -> PartDetector:
    return PartDetector(require_models(model_dir, ["nanodet-parts-int8"])["nanodet-parts-int8"], threads=2)


def _labelled_scenes(data: Path) -> list[tuple[np.ndarray, list]]:  # type: ignore[type-arg]
    scenes = []
    for label in sorted((data / "scenes" / "labels").glob("*.txt")):
        image = cv2.imread(str(data / "scenes" / "images" / f"{label.stem}.jpg"))
        heads = [lab for lab in read_yolo(label, image.shape[1], image.shape[0]) if lab.cls in ("helmet", "no_helmet")]
        scenes.append((image, heads))
    return scenes


def _hand_labels(image: Path, width: int, height: int) -> list[tuple[int, np.ndarray]]:
    """(class: 0 bare / 1 gloved, x1 y1 x2 y2 pixels) rows of a gloves YOLO label file."""
    label = image.parent.parent / "labels" / f"{image.stem}.txt"
    rows = []
    for line in label.read_text().splitlines() if label.is_file() else []:
        if line.strip():
            cls, cx, cy, bw, bh = (float(v) for v in line.split()[:5])
            box = np.array([(cx - bw / 2) * width, (cy - bh / 2) * height, (cx + bw / 2) * width, (cy + bh / 2) * height])
            rows.append((int(cls), box))
    return rows


def test_most_labelled_heads_in_the_site_scenes_get_a_head_box(detector: PartDetector, data: Path) -> None:
    # GIVEN the 13 labelled worker scenes (held-back side of the split: never trained on)
    found = covered_right = total = 0
    for image, heads in _labelled_scenes(data):
        # WHEN the part detector runs on the photo
        parts = detector.detect(image).of("HEAD")
        ious = iou_matrix(np.stack([h.box for h in heads]), parts.boxes)
        for i, head in enumerate(heads):
            total += 1
            if ious.shape[1] and ious[i].max() >= 0.2:
                found += 1
                covered_right += int((parts.covered[int(ious[i].argmax())] >= 0.5) == (head.cls == "helmet"))
    # THEN most heads have a HEAD box at IoU >= 0.2, and most of those carry the right covered verdict
    assert total >= 50
    assert found / total >= 0.8, f"{found}/{total} heads found"
    assert covered_right / found >= 0.85, f"{covered_right}/{found} right helmet verdicts"


def test_gloved_and_bare_hands_on_glove_photos(detector: PartDetector, data: Path) -> None:
    # GIVEN the first ten held-back glove photos (the split's test side), hands labelled bare / gloved
    files = json.loads((WEIGHTS / "hand_cover.split.json").read_text())["test"][:10]
    found = right = total = 0
    for rel in files:
        image = cv2.imread(str(data / rel))
        # WHEN the part detector runs
        hands = detector.detect(image).of("HAND")
        for cls, box in _hand_labels(data / rel, image.shape[1], image.shape[0]):
            total += 1
            ious = iou_matrix(box[None], hands.boxes)
            if ious.size and ious.max() >= 0.2:
                found += 1
                right += int((hands.covered[int(ious.argmax())] >= 0.5) == (cls == 1))
    # THEN most labelled hands get a HAND box, most of them with the right gloved / bare verdict
    assert total >= 8
    assert found / total >= 0.7, f"{found}/{total} hands found"
    assert right / max(found, 1) >= 0.7, f"{right}/{found} right glove verdicts"


@pytest.mark.parametrize("value", [0, 128, 255])
def test_a_blank_image_has_no_parts(detector: PartDetector, value: int) -> None:
    parts = detector.detect(np.full((480, 640, 3), value, np.uint8))
    assert len(parts) == 0


def test_persons_from_the_combined_graph_are_the_int8_person_detectors(
    detector: PartDetector, model_dir: Path, data: Path
) -> None:
    # GIVEN a crowded scene, WHEN persons come from the combined graph and from the plain int8 NanoDet
    image = cv2.imread(str(data / "scenes" / "images" / "scene_panly_part2_000666.jpg"))
    plain = PersonDetector(model_dir / "nanodet-int8.onnx", threads=2, input_side=576, enlarge_to=512)
    persons, _ = detector.detect_with_persons(image, person_min_score=0.25)
    # THEN they are the same boxes: grafting the head changes nothing upstream
    expected = plain.detect(image, min_score=0.25)
    np.testing.assert_allclose(persons.boxes, expected.boxes, atol=1e-3)
    np.testing.assert_allclose(persons.scores, expected.scores, atol=1e-5)


def test_zoomed_tiles_find_labelled_heads_in_source_pixels_and_merging_them_loses_none(
    detector: PartDetector, data: Path
) -> None:
    # GIVEN the labelled site scenes, each split into the engine's four 0.6 x 0.6 tiles
    whole_found = zoom_found = merged_found = total = 0
    for image, heads in _labelled_scenes(data):
        h, w = image.shape[:2]
        tw, th = round(0.6 * w), round(0.6 * h)
        tiles = [(x, y, x + tw, y + th) for y in (0, h - th) for x in (0, w - tw)]
        # WHEN the part detector runs on the whole photo and on each tile letterboxed to its full input
        whole = detector.detect(image).of("HEAD")
        zoomed = [detector.detect_in(image, tile).of("HEAD") for tile in tiles]
        merged = whole
        for z in zoomed:
            merged = merge_parts(merged, z)
        for head in heads:
            total += 1
            whole_found += _hit(head.box, whole, 0.2)
            zoom_found += any(_hit(head.box, z, 0.5) for z in zoomed)
            merged_found += _hit(head.box, merged, 0.2)
    # THEN the tiles' boxes are in source pixels (they sit on labelled heads at IoU >= 0.5), and the merged set
    # keeps every head the whole frame found (at the strict scorer's IoU 0.2: a better-scored tile box may replace
    # the whole frame's box on the same head)
    assert total >= 50
    assert zoom_found >= 0.8 * total, f"{zoom_found}/{total} heads found in the tiles"
    assert merged_found >= whole_found, f"merged {merged_found} < whole frame {whole_found}"


def _hit(box: np.ndarray, parts: PartBoxes, min_iou: float) -> bool:
    return bool(len(parts)) and float(iou_matrix(box[None], parts.boxes).max()) >= min_iou
