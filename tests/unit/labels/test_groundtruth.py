"""Ground Truth manifests -> dataset -> YOLO / COCO, checked box by box against hand-computed values."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from model_workshop.labels.coco import to_coco
from model_workshop.labels.errors import DatasetError, ManifestError
from model_workshop.labels.groundtruth import import_ground_truth
from model_workshop.labels.model import Dataset
from model_workshop.labels.yolo import export_yolo
from tests.unit.labels.gt_fixtures import (
    COMPLIANCE,
    COMPLIANCE_RECHECK,
    SITE_A_BOXES,
    SITE_B_BOXES,
    write_images,
    write_manifest,
)


@pytest.fixture
def box_dataset(tmp_path: Path) -> Dataset:
    images = write_images(tmp_path / "images")
    site_a = write_manifest(tmp_path / "site-a.manifest", SITE_A_BOXES)
    site_b = write_manifest(tmp_path / "site-b.manifest", SITE_B_BOXES)
    return import_ground_truth([site_a, site_b], images_dir=images)


def _yolo_rows(path: Path) -> list[tuple[int, float, float, float, float]]:
    rows = []
    for line in path.read_text().splitlines():
        class_id, *numbers = line.split()
        cx, cy, w, h = (float(n) for n in numbers)
        rows.append((int(class_id), cx, cy, w, h))
    return rows


def test_classes_merge_by_name_in_first_seen_order(box_dataset: Dataset) -> None:
    # site A's class-map (0=vest, 1=helmet) is seen first; site B adds goggles. Site B's ids (0=helmet,
    # 1=goggles, 2=vest) must not leak through.
    assert box_dataset.classes == ("vest", "helmet", "goggles")


def test_same_image_from_two_jobs_is_one_image_with_both_jobs_boxes(box_dataset: Dataset) -> None:
    keys = [image.key for image in box_dataset.images]
    assert keys == ["site-a/img1.jpg", "site-a/img5.jpg", "site-b/img2.jpg"]
    img1 = box_dataset.images[0]
    assert [box.class_name for box in img1.boxes] == ["vest", "helmet", "goggles"]
    assert (img1.width, img1.height) == (640, 480)
    failed = box_dataset.images[1]
    assert failed.boxes == () and failed.path is None  # failed task: kept, unlabelled, no local file


def test_yolo_export_matches_hand_computed_boxes(box_dataset: Dataset, tmp_path: Path) -> None:
    out = tmp_path / "yolo"
    summary = export_yolo(box_dataset, out)
    assert (summary.images, summary.boxes, summary.skipped) == (2, 6, ("site-a/img5.jpg",))
    # img1 640x480. vest   left 100 top 120 w 200 h 240: cx=(100+100)/640=0.3125 cy=(120+120)/480=0.5
    #                                                     w=200/640=0.3125 h=240/480=0.5
    #               helmet left 160 top 20 w 64 h 48:     cx=192/640=0.3 cy=44/480=0.0916667 w=0.1 h=0.1
    #               goggles (site B id 1) left 180 top 60 w 32 h 12: cx=196/640=0.30625 cy=66/480=0.1375
    #                                                     w=32/640=0.05 h=12/480=0.025
    expected_img1 = [
        (0, 0.3125, 0.5, 0.3125, 0.5),
        (1, 0.3, 0.0916667, 0.1, 0.1),
        (2, 0.30625, 0.1375, 0.05, 0.025),
    ]
    # img2 1000x800. helmet (site B id 0) left 450 top 50 w 100 h 80: cx=500/1000 cy=90/800=0.1125 w=0.1 h=0.1
    #                vest (site B id 2) left 400 top 200 w 200 h 300: cx=0.5 cy=350/800=0.4375 w=0.2 h=0.375
    #                goggles (site B id 1) left 470 top 90 w 60 h 20: cx=0.5 cy=100/800=0.125 w=0.06 h=0.025
    expected_img2 = [
        (1, 0.5, 0.1125, 0.1, 0.1),
        (0, 0.5, 0.4375, 0.2, 0.375),
        (2, 0.5, 0.125, 0.06, 0.025),
    ]
    for label_file, expected in (
        (out / "labels/site-a/img1.txt", expected_img1),
        (out / "labels/site-b/img2.txt", expected_img2),
    ):
        rows = _yolo_rows(label_file)
        assert [row[0] for row in rows] == [row[0] for row in expected]
        for got, want in zip(rows, expected, strict=True):
            assert got[1:] == pytest.approx(want[1:], abs=1e-6)
    assert not (out / "labels/site-a/img5.txt").exists()  # failed task, no file: nothing to write
    assert (out / "classes.txt").read_text().split() == ["vest", "helmet", "goggles"]
    assert yaml.safe_load((out / "data.yaml").read_text())["names"] == ["vest", "helmet", "goggles"]
    assert (out / "images/site-b/img2.jpg").is_file()


def test_coco_export_matches_hand_computed_boxes(box_dataset: Dataset) -> None:
    coco = to_coco(box_dataset)
    assert coco["categories"] == [
        {"id": 1, "name": "vest", "supercategory": "ppe"},
        {"id": 2, "name": "helmet", "supercategory": "ppe"},
        {"id": 3, "name": "goggles", "supercategory": "ppe"},
    ]
    assert [(i["id"], i["file_name"], i["width"], i["height"]) for i in coco["images"]] == [
        (1, "site-a/img1.jpg", 640, 480),
        (2, "site-b/img2.jpg", 1000, 800),
    ]
    assert coco["skipped"] == ["site-a/img5.jpg"]
    got = [(a["image_id"], a["category_id"], a["bbox"], a["area"]) for a in coco["annotations"]]
    assert got == [
        (1, 1, [100.0, 120.0, 200.0, 240.0], 48000.0),  # vest 200*240
        (1, 2, [160.0, 20.0, 64.0, 48.0], 3072.0),  # helmet 64*48
        (1, 3, [180.0, 60.0, 32.0, 12.0], 384.0),  # goggles 32*12
        (2, 2, [450.0, 50.0, 100.0, 80.0], 8000.0),  # site B id 0 = helmet -> category 2
        (2, 1, [400.0, 200.0, 200.0, 300.0], 60000.0),  # site B id 2 = vest -> category 1
        (2, 3, [470.0, 90.0, 60.0, 20.0], 1200.0),  # site B id 1 = goggles -> category 3
    ]
    assert [a["id"] for a in coco["annotations"]] == [1, 2, 3, 4, 5, 6]


def test_forced_class_order_renumbers_exports(tmp_path: Path) -> None:
    images = write_images(tmp_path / "images")
    manifest = write_manifest(tmp_path / "b.manifest", SITE_B_BOXES)
    dataset = import_ground_truth([manifest], images_dir=images, classes=["goggles", "helmet", "vest"])
    export_yolo(dataset, tmp_path / "yolo")
    assert [row[0] for row in _yolo_rows(tmp_path / "yolo/labels/site-b/img2.txt")] == [1, 2, 0]
    with pytest.raises(DatasetError, match="leaves out"):
        import_ground_truth([manifest], images_dir=images, classes=["helmet"])


def test_classification_jobs_with_conflicting_ids_merge_by_name(tmp_path: Path) -> None:
    images = write_images(tmp_path / "images")
    first = write_manifest(tmp_path / "compliance.manifest", COMPLIANCE)
    recheck = write_manifest(tmp_path / "recheck.manifest", COMPLIANCE_RECHECK)
    dataset = import_ground_truth([first, recheck], images_dir=images)
    # ppe-compliance says img3 is id 1 = non_compliant; the recheck job says id 0 = non_compliant: same name.
    # The recheck job's id 1 is compliant, which is id 0 in the first job: img4 stays compliant.
    labels = {image.key: image.image_label for image in dataset.images}
    assert labels == {"cls/img3.jpg": "non_compliant", "cls/img4.jpg": "compliant"}
    assert set(dataset.classes) == {"compliant", "non_compliant"}
    assert dataset.kind == "classification"
    assert all(image.width == 320 and image.height == 240 for image in dataset.images)  # read from the files
    with pytest.raises(DatasetError, match="no boxes"):
        export_yolo(dataset, tmp_path / "yolo")


def test_disagreeing_classification_jobs_are_refused(tmp_path: Path) -> None:
    first = write_manifest(tmp_path / "compliance.manifest", COMPLIANCE)
    flipped = (
        COMPLIANCE_RECHECK[1]
        .replace('"ppe-compliance-recheck":0', '"ppe-compliance-recheck":1')
        .replace('"class-name":"non_compliant"', '"class-name":"compliant"')
    )
    recheck = write_manifest(tmp_path / "recheck.manifest", [flipped])
    with pytest.raises(ManifestError, match=r"labelled 'compliant' here but 'non_compliant'"):
        import_ground_truth([first, recheck])


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("not json", "not valid JSON"),
        ('{"ppe":0,"ppe-metadata":{}}', "source-ref"),
        (SITE_A_BOXES[0].replace('"class_id":1', '"class_id":7'), "class_id 7 is not in the job's class-map"),
        (SITE_A_BOXES[0].replace('"left":160', '"left":"160"'), "'left' must be a number"),
        (COMPLIANCE[0].replace('"ppe-compliance":1', '"ppe-compliance":[1]'), "multi-label"),
        (
            COMPLIANCE[0].replace("groundtruth/image-classification", "groundtruth/label-verification"),
            "not supported",
        ),
    ],
)
def test_bad_manifest_lines_give_located_errors(tmp_path: Path, line: str, message: str) -> None:
    manifest = write_manifest(tmp_path / "bad.manifest", [line])
    with pytest.raises(ManifestError, match=message) as caught:
        import_ground_truth([manifest])
    assert "bad.manifest:1" in str(caught.value)


def test_dataset_file_round_trips(box_dataset: Dataset, tmp_path: Path) -> None:
    path = tmp_path / "dataset.json"
    box_dataset.save(path)
    assert json.loads(path.read_text())["schema"] == "ppe-labels/1"
    assert Dataset.load(path) == box_dataset
