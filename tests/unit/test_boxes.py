"""shared.boxes: the one box type, IoU (scalar and matrix) and NMS that the engine, the workshop and the notifier's
tracker share."""

from __future__ import annotations

import numpy as np
import pytest

from shared.boxes import Box, containment, iou, iou_matrix, nms, nms_by_label, nms_numpy


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ((0, 0, 10, 10), (0, 0, 10, 10), 1.0),
        ((0, 0, 10, 10), (5, 0, 15, 10), 50 / 150),
        ((0, 0, 10, 10), (10, 0, 20, 10), 0.0),  # touching edges share no area
        ((0, 0, 10, 10), (20, 20, 30, 30), 0.0),
        ((0, 0, 10, 10), (2, 2, 4, 4), 4 / 100),
        ((0, 0, 0, 0), (0, 0, 0, 0), 0.0),  # empty boxes: no division by zero
    ],
)
def test_iou_of_known_pairs(a: tuple[float, ...], b: tuple[float, ...], expected: float) -> None:
    assert iou(a, b) == pytest.approx(expected)
    assert iou(b, a) == pytest.approx(expected)


def test_relative_and_pixel_corners_give_the_same_iou() -> None:
    # GIVEN one pair of boxes as Rekognition fractions (Left, Top, Width, Height) and as pixels of a 640x480 image
    a, b = Box.of_xywh(0.1, 0.2, 0.3, 0.4), Box.of_xywh(0.25, 0.3, 0.3, 0.4)
    pa = Box(a.x1 * 640, a.y1 * 480, a.x2 * 640, a.y2 * 480)
    pb = Box(b.x1 * 640, b.y1 * 480, b.x2 * 640, b.y2 * 480)
    # THEN the IoU does not depend on the unit
    assert a.iou(b) == pytest.approx(pa.iou(pb))
    assert a.width == pytest.approx(0.3) and a.height == pytest.approx(0.4)


def test_containment_is_the_share_of_the_smaller_box_inside() -> None:
    person, upper_body = (0, 0, 100, 300), (10, 0, 90, 150)
    assert containment(person, upper_body) == pytest.approx(1.0)
    assert containment((0, 0, 10, 10), (5, 0, 25, 10)) == pytest.approx(0.5)
    assert containment((0, 0, 0, 0), (0, 0, 10, 10)) == 0.0


def test_centre_holds_and_distance() -> None:
    box = Box.of(np.array([10, 20, 30, 60], np.float32))
    assert box.centre == (20.0, 40.0)
    assert box.holds((10, 20)) and box.holds((30, 60)) and not box.holds((30.5, 40))
    assert box.centre_distance(Box(13, 24, 33, 64)) == pytest.approx(5.0)
    assert tuple(box) == (10.0, 20.0, 30.0, 60.0) and Box.of(box) == box


def test_matrix_agrees_with_the_scalar_iou() -> None:
    # GIVEN random pixel boxes, some disjoint, some nested
    rng = np.random.default_rng(7)
    xy = rng.uniform(0, 200, (40, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(1, 60, (40, 2))], axis=1)
    # THEN every cell of the matrix is the pair's IoU (the matrix's 1e-9 guard moves nothing visible)
    matrix = iou_matrix(boxes[:25], boxes[25:])
    assert matrix.shape == (25, 15)
    expected = np.array([[iou(a, b) for b in boxes[25:]] for a in boxes[:25]])
    np.testing.assert_allclose(matrix, expected, rtol=1e-6, atol=1e-9)
    assert iou_matrix(boxes[:0], boxes).shape == (0, 40)


def test_opencv_nms_keeps_what_the_numpy_reference_keeps() -> None:
    # GIVEN 300 random boxes with many equal scores (int8 outputs take few values) and some zero scores
    rng = np.random.default_rng(1)
    xy = rng.uniform(0, 600, (300, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(5, 80, (300, 2))], axis=1).astype(np.float32)
    scores = (rng.integers(0, 20, 300) / 20).astype(np.float32)
    # THEN the same boxes are kept, in the same order, at several IoU thresholds
    for threshold in (0.3, 0.5, 0.65):
        np.testing.assert_array_equal(nms(boxes, scores, threshold), nms_numpy(boxes, scores, threshold))
    assert len(nms(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), 0.5)) == 0


def test_nms_by_label_never_lets_one_label_suppress_another() -> None:
    # GIVEN a head and a hand on the same spot, and a weaker second head over the first
    boxes = np.array([[0, 0, 10, 10], [0, 0, 10, 10], [1, 0, 11, 10]], np.float32)
    scores = np.array([0.9, 0.8, 0.7], np.float32)
    labels = np.array(["HEAD", "HAND", "HEAD"])
    # WHEN suppressed label by label
    kept = nms_by_label(boxes, scores, labels, 0.5, ("HEAD", "HAND"))
    # THEN the hand stays, the weaker head goes, and the order is label by label
    assert kept.tolist() == [0, 1]
    assert nms_by_label(boxes, scores, labels, 0.5, ("HAND", "HEAD")).tolist() == [1, 0]
