"""YOLO and folder-per-class import, YOLO round trip, drawing and contact sheets, and the CLI around them."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from model_workshop.labels.cli import main
from model_workshop.labels.errors import DatasetError
from model_workshop.labels.folders import import_folders
from model_workshop.labels.images import image_size
from model_workshop.labels.model import Dataset
from model_workshop.labels.visualize import PALETTE, contact_sheet, draw
from model_workshop.labels.yolo import export_yolo, import_yolo


def _yolo_folder(root: Path) -> Path:
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    assert cv2.imwrite(str(root / "images/a.jpg"), np.full((400, 800, 3), 128, dtype=np.uint8))
    assert cv2.imwrite(str(root / "images/b.png"), np.full((100, 100, 3), 128, dtype=np.uint8))
    # a.jpg is 800x400: class 1 (wear) centred at (0.25, 0.5), 0.2 x 0.5 -> left 120 top 100 w 160 h 200
    (root / "labels/a.txt").write_text("1 0.25 0.5 0.2 0.5\n0 0.75 0.25 0.1 0.1\n")
    (root / "data.yaml").write_text("names: ['no_wear', 'wear']\n")
    return root


def test_yolo_import_converts_to_pixels(tmp_path: Path) -> None:
    dataset = import_yolo(_yolo_folder(tmp_path / "y"))
    assert dataset.classes == ("no_wear", "wear")
    a, b = dataset.images
    assert (a.key, a.width, a.height) == ("a.jpg", 800, 400)
    wear, no_wear = a.boxes
    assert (wear.class_name, wear.left, wear.top, wear.width, wear.height) == pytest.approx(
        ("wear", 120.0, 100.0, 160.0, 200.0)
    )
    # 0.75*800 - 0.1*800/2 = 560; 0.25*400 - 0.1*400/2 = 80; 80 x 40
    assert (no_wear.left, no_wear.top, no_wear.width, no_wear.height) == pytest.approx((560.0, 80.0, 80.0, 40.0))
    assert b.boxes == () and (b.width, b.height) == (100, 100)  # no label file: unlabelled


def test_yolo_round_trip_reproduces_the_label_files(tmp_path: Path) -> None:
    source = _yolo_folder(tmp_path / "y")
    export_yolo(import_yolo(source), tmp_path / "out", link=True)
    assert (tmp_path / "out/labels/a.txt").read_text() == (
        "1 0.250000 0.500000 0.200000 0.500000\n0 0.750000 0.250000 0.100000 0.100000\n"
    )
    assert (tmp_path / "out/images/a.jpg").is_symlink()


def test_yolo_class_id_outside_names_is_located(tmp_path: Path) -> None:
    root = _yolo_folder(tmp_path / "y")
    (root / "labels/a.txt").write_text("0 0.5 0.5 0.1 0.1\n5 0.5 0.5 0.1 0.1\n")
    with pytest.raises(DatasetError, match=r"a.txt:2: class id 5 is outside the names list \(0..1\)"):
        import_yolo(root)


def test_keys_that_would_escape_the_export_folder_are_refused(tmp_path: Path) -> None:
    dataset = import_yolo(_yolo_folder(tmp_path / "y"))
    image = dataset.images[0].model_copy(update={"key": "../../etc/a.jpg"})
    escaping = Dataset(classes=dataset.classes, images=(image,))
    with pytest.raises(DatasetError, match="cannot be used as a path"):
        export_yolo(escaping, tmp_path / "out")
    assert not (tmp_path / "etc").exists()


def test_folder_per_class_import(tmp_path: Path) -> None:
    for name, count in (("with_net", 2), ("without_net", 1)):
        (tmp_path / "f" / name).mkdir(parents=True)
        for i in range(count):
            assert cv2.imwrite(str(tmp_path / "f" / name / f"{i}.jpg"), np.zeros((30, 40, 3), dtype=np.uint8))
    dataset = import_folders(tmp_path / "f")
    assert dataset.classes == ("with_net", "without_net")
    assert [(i.key, i.image_label, i.width) for i in dataset.images] == [
        ("with_net/0.jpg", "with_net", 40),
        ("with_net/1.jpg", "with_net", 40),
        ("without_net/0.jpg", "without_net", 40),
    ]


def test_draw_puts_the_class_colour_on_the_box_edge(tmp_path: Path) -> None:
    dataset = import_yolo(_yolo_folder(tmp_path / "y"))
    drawn = draw(dataset, dataset.images[0])
    # the wear box (class 1) spans x 120..280, y 100..300; its bottom edge row is y=300, mid x=200
    assert tuple(int(v) for v in drawn[300, 200]) == PALETTE[1]
    assert tuple(int(v) for v in drawn[200, 200]) == (128, 128, 128)  # inside the box: untouched


def test_contact_sheet_is_a_decodable_png(tmp_path: Path) -> None:
    dataset = import_yolo(_yolo_folder(tmp_path / "y"))
    sheet = contact_sheet(dataset, tmp_path / "sheet.png", tile=128)
    assert sheet.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    pixels = cv2.imread(str(sheet), cv2.IMREAD_COLOR)
    # 2 images -> ceil(sqrt(2)) = 2 columns, 1 row of 128 px tiles plus an 18 px caption strip
    assert pixels is not None and pixels.shape == (128 + 18, 2 * 128, 3)
    assert image_size(sheet) == (256, 146)
    # the first tile (a.jpg, 800x400 -> 128x64) shows the wear box in its class colour
    tile = pixels[:64, :128].astype(int)
    assert (abs(tile - np.array(PALETTE[1])).sum(axis=2) < 60).sum() >= 5


def test_cli_chain_import_check_visualize_export(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = _yolo_folder(tmp_path / "y")
    dataset_file = tmp_path / "work/dataset.json"
    assert main(["import-yolo", str(source), "-o", str(dataset_file)]) == 0
    assert Dataset.load(dataset_file).classes == ("no_wear", "wear")
    assert main(["check", str(dataset_file), "--min-per-class", "1"]) == 0
    assert "1 warnings" in capsys.readouterr().out  # b.png is unlabelled
    assert (
        main(
            ["visualize", str(dataset_file), "-o", str(tmp_path / "drawn"), "--contact-sheet", str(tmp_path / "s.png")]
        )
        == 0
    )
    assert cv2.imread(str(tmp_path / "drawn/a.jpg")) is not None
    assert main(["export-coco", str(source), "-o", str(tmp_path / "coco.json")]) == 0  # a YOLO folder works directly


def test_cli_errors_say_what_to_fix(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["export-yolo", str(tmp_path / "missing.json"), "-o", str(tmp_path / "o")]) == 2
    assert "does not exist" in capsys.readouterr().err
    manifest = tmp_path / "out.manifest"
    manifest.write_text("{}\n")
    assert main(["check", str(manifest)]) == 2
    assert "labels import-gt" in capsys.readouterr().err
