"""Any dataset -> the trainer's crop samples: normalised boxes, whole images, de-duplication groups."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from model_workshop.labels.errors import DatasetError
from model_workshop.labels.model import Box, Dataset, ImageRecord
from model_workshop.labels.train import to_samples


def _image(path: Path, width: int, height: int) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), np.zeros((height, width, 3), dtype=np.uint8))
    return str(path)


def test_boxes_become_normalised_clipped_crops_grouped_by_manifest(tmp_path: Path) -> None:
    root = tmp_path / "data"
    a = _image(root / "site/a.jpg", 400, 200)
    b = _image(root / "site/b.jpg", 400, 200)
    # a manifest.csv (as ../shared/data has) puts a and b in one de-duplication group
    (root / "manifest.csv").write_text(
        "file,sha256,source,source_path,group,note\nsite/a.jpg,x,s,p,g1,\nsite/b.jpg,y,s,p,g1,\n"
    )
    boxes_a = (
        Box(class_name="vest", left=100, top=50, width=100, height=100),  # -> (0.25, 0.25, 0.5, 0.75)
        Box(class_name="helmet", left=0, top=0, width=10, height=10),  # not a selected class: skipped
        Box(class_name="no_vest", left=-20, top=150, width=60, height=80),  # clipped -> (0, 0.75, 0.1, 1)
        Box(class_name="vest", left=5, top=5, width=0, height=9),  # zero area: skipped
    )
    dataset = Dataset(
        classes=("vest", "helmet", "no_vest"),
        images=(
            ImageRecord(key="a.jpg", path=a, width=400, height=200, boxes=boxes_a),
            ImageRecord(key="b.jpg", path=b, width=400, height=200, boxes=(boxes_a[0],)),
            ImageRecord(key="gone.jpg", path=str(root / "gone.jpg"), width=400, height=200, boxes=(boxes_a[0],)),
        ),
    )
    samples = to_samples(dataset, ["no_vest", "vest"])
    assert [(s.file, s.label, s.group) for s in samples] == [("a.jpg", 1, "g1"), ("a.jpg", 0, "g1"), ("b.jpg", 1, "g1")]
    assert samples[0].box == pytest.approx((0.25, 0.25, 0.5, 0.75))
    assert samples[1].box == pytest.approx((0.0, 0.75, 0.1, 1.0))


def test_classification_images_are_whole_image_samples(tmp_path: Path) -> None:
    dataset = Dataset(
        classes=("with_net", "without_net"),
        images=tuple(
            ImageRecord(key=f"{label}/{i}.jpg", path=_image(tmp_path / label / f"{i}.jpg", 32, 32), image_label=label)
            for label in ("with_net", "without_net")
            for i in range(2)
        ),
    )
    samples = to_samples(dataset, ["without_net", "with_net"])
    assert [(s.file, s.label, s.box, s.group) for s in samples] == [
        ("with_net/0.jpg", 1, None, "with_net/0.jpg"),
        ("with_net/1.jpg", 1, None, "with_net/1.jpg"),
        ("without_net/0.jpg", 0, None, "without_net/0.jpg"),
        ("without_net/1.jpg", 0, None, "without_net/1.jpg"),
    ]


def test_a_class_without_examples_is_refused(tmp_path: Path) -> None:
    dataset = Dataset(
        classes=("vest", "no_vest"),
        images=(ImageRecord(key="a.jpg", path=_image(tmp_path / "a.jpg", 8, 8), image_label="vest"),),
    )
    with pytest.raises(DatasetError, match=r"no usable examples of \['no_vest'\]"):
        to_samples(dataset, ["vest", "no_vest"])
