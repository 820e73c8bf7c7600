"""`check` finds each kind of data error, and the CLI fails with a message saying what to fix."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from model_workshop.labels.check import IssueKind, Severity, check_dataset
from model_workshop.labels.cli import main
from model_workshop.labels.model import Box, Dataset, ImageRecord


def _jpeg(path: Path, width: int, height: int, value: int) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), np.full((height, width, 3), value, dtype=np.uint8))
    return str(path)


def _box(name: str, left: float, top: float, width: float, height: float) -> Box:
    return Box(class_name=name, left=left, top=top, width=width, height=height)


def _record(
    key: str, path: str | None, boxes: list[Box], width: int | None = None, height: int | None = None
) -> ImageRecord:
    return ImageRecord(key=key, path=path, width=width, height=height, boxes=tuple(boxes))


@pytest.fixture
def clean(tmp_path: Path) -> Dataset:
    images = [
        _record(f"ok{i}.jpg", _jpeg(tmp_path / f"ok{i}.jpg", 200, 100, 10 + i), [_box("vest", 10, 10, 50, 50)])
        for i in range(3)
    ]
    return Dataset(classes=("vest",), images=tuple(images))


def _with(dataset: Dataset, *extra: ImageRecord) -> Dataset:
    return Dataset(classes=dataset.classes, images=(*dataset.images, *extra))


def test_clean_dataset_has_no_issues(clean: Dataset) -> None:
    report = check_dataset(clean, min_per_class=3)
    assert report.issues == []
    assert report.box_counts["vest"] == 3 and report.image_counts["vest"] == 3


@pytest.mark.parametrize(
    ("kind", "make"),
    [
        (IssueKind.MISSING_FILE, lambda d: _record("gone.jpg", str(d / "gone.jpg"), [_box("vest", 1, 1, 5, 5)])),
        (IssueKind.UNREADABLE, lambda d: _record("text.jpg", _text(d / "text.jpg"), [_box("vest", 1, 1, 5, 5)])),
        (
            IssueKind.SIZE_MISMATCH,
            lambda d: _record(
                "resized.jpg", _jpeg(d / "resized.jpg", 100, 50, 99), [_box("vest", 1, 1, 5, 5)], 200, 100
            ),
        ),
        # 200x100 image; box right edge at 150+60=210 > 200 + 1 px tolerance
        (
            IssueKind.OUTSIDE_IMAGE,
            lambda d: _record("out.jpg", _jpeg(d / "out.jpg", 200, 100, 77), [_box("vest", 150, 10, 60, 20)]),
        ),
        (
            IssueKind.OUTSIDE_IMAGE,
            lambda d: _record("neg.jpg", _jpeg(d / "neg.jpg", 200, 100, 78), [_box("vest", -5, 10, 20, 20)]),
        ),
        (
            IssueKind.ZERO_AREA,
            lambda d: _record("flat.jpg", _jpeg(d / "flat.jpg", 200, 100, 79), [_box("vest", 10, 10, 30, 0)]),
        ),
        (
            IssueKind.DUPLICATE,
            lambda d: _record("copy.jpg", _copy(d / "ok0.jpg", d / "copy.jpg"), [_box("vest", 1, 1, 5, 5)]),
        ),
        (IssueKind.UNLABELLED, lambda d: _record("empty.jpg", _jpeg(d / "empty.jpg", 200, 100, 80), [])),
    ],
)
def test_each_error_kind_is_found(clean: Dataset, tmp_path: Path, kind: IssueKind, make) -> None:  # type: ignore[no-untyped-def]
    # GIVEN a clean dataset plus one image with exactly one problem
    bad = make(tmp_path)
    # WHEN it is checked
    report = check_dataset(_with(clean, bad), min_per_class=1)
    # THEN that problem, and only it, is reported against that image
    assert [(issue.kind, issue.image) for issue in report.issues] == [(kind, bad.key)]


def test_box_on_the_border_within_tolerance_is_fine(clean: Dataset, tmp_path: Path) -> None:
    edge = _record("edge.jpg", _jpeg(tmp_path / "edge.jpg", 200, 100, 81), [_box("vest", -0.5, 0, 200.8, 100)])
    assert check_dataset(_with(clean, edge), min_per_class=1).issues == []


def test_rare_class_is_a_warning(clean: Dataset) -> None:
    report = check_dataset(clean, min_per_class=5)
    assert [(i.kind, i.severity) for i in report.issues] == [(IssueKind.FEW_EXAMPLES, Severity.WARNING)]


def test_cli_fails_with_a_readable_report(clean: Dataset, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    broken = _with(clean, _record("flat.jpg", _jpeg(tmp_path / "flat.jpg", 200, 100, 90), [_box("vest", 5, 5, 0, 9)]))
    path = tmp_path / "dataset.json"
    broken.save(path)
    assert main(["check", str(path), "--min-per-class", "1"]) == 1
    captured = capsys.readouterr()
    assert "ERROR zero_area: 1" in captured.out and "flat.jpg: box 0 (vest)" in captured.out
    assert "check failed: 1 errors" in captured.err


def test_cli_warnings_fail_only_when_asked(clean: Dataset, tmp_path: Path) -> None:
    path = tmp_path / "dataset.json"
    _with(clean, _record("empty.jpg", _jpeg(tmp_path / "empty.jpg", 20, 20, 3), [])).save(path)
    assert main(["check", str(path), "--min-per-class", "1"]) == 0
    assert main(["check", str(path), "--min-per-class", "1", "--fail-on", "warning"]) == 1


def _text(path: Path) -> str:
    path.write_text("this is not an image")
    return str(path)


def _copy(source: Path, target: Path) -> str:
    shutil.copyfile(source, target)
    return str(target)
