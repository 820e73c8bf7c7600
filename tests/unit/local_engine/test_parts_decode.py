"""decode_parts: hand-made part outputs -> the boxes they encode."""

from __future__ import annotations

import numpy as np
import pytest

from services.detector.local_engine.parts import PART_CHANNELS, PartBoxes, calibrate, decode_parts, merge_parts

TENSOR_HW = (64, 96)  # letterboxed input: strides 8 / 16 / 32 give 8x12, 4x6, 2x3 cells


def _empty_outputs() -> list[np.ndarray]:
    return [np.zeros((1, -(-64 // s) * -(-96 // s), PART_CHANNELS), np.float32) for s in (8, 16, 32)]


def test_one_head_cell_decodes_to_its_box_in_source_pixels() -> None:
    # GIVEN a stride-16 cell (row 1, column 2: centre 40, 24) scoring a covered HEAD with distances 1, 0.5, 2, 1
    outputs = _empty_outputs()
    outputs[1][0, 1 * 6 + 2] = [0.9, 0.0, 0.8, 0.0, 1.0, 0.5, 2.0, 1.0]
    # WHEN it is decoded for a source image letterboxed at scale 0.5
    parts = decode_parts(outputs, TENSOR_HW, 0.5, (128, 192), min_score=0.3)
    # THEN one HEAD box, in source pixels: (40 - 16, 24 - 8, 40 + 32, 24 + 16) / 0.5
    assert list(parts.labels) == ["HEAD"]
    np.testing.assert_allclose(parts.boxes[0], [48, 32, 144, 80])
    assert parts.scores[0] == pytest.approx(0.9)
    assert parts.covered[0] == pytest.approx(0.8)
    assert parts.confidence[0] == pytest.approx(90.0)


def test_outputs_are_found_by_shape_among_nanodet_outputs_in_any_order() -> None:
    # GIVEN a HAND on stride 8 and a HEAD on stride 32, mixed with NanoDet-shaped person outputs
    outputs = _empty_outputs()
    outputs[0][0, 0] = [0.0, 0.7, 0.0, 0.2, 0.5, 0.5, 0.5, 0.5]
    outputs[2][0, 5] = [0.6, 0.0, 0.1, 0.0, 0.25, 0.25, 0.25, 0.25]
    mixed = [np.zeros((1, 96, 80), np.float32), outputs[2], np.zeros((1, 96, 44), np.float32), outputs[0], outputs[1]]
    # WHEN decoded at scale 1
    parts = decode_parts(mixed, TENSOR_HW, 1.0, (64, 96), min_score=0.3)
    # THEN both, best first, each on its cell: stride-8 cell 0 (centre 4, 4), stride-32 cell 5 (centre 80, 48)
    assert list(parts.labels) == ["HAND", "HEAD"]
    np.testing.assert_allclose(parts.boxes, [[0, 0, 8, 8], [72, 40, 88, 56]])
    np.testing.assert_allclose(parts.covered, [0.2, 0.1])


def test_per_part_thresholds_nms_and_clipping() -> None:
    # GIVEN two overlapping HEAD cells and a weak HAND, the HEAD box reaching past the image
    outputs = _empty_outputs()
    outputs[0][0, 0] = [0.5, 0.35, 0.5, 0.5, 3.0, 3.0, 1.0, 1.0]
    outputs[0][0, 1] = [0.45, 0.0, 0.5, 0.5, 2.0, 3.0, 1.0, 1.0]
    # WHEN the HAND needs 0.4 and HEAD 0.3
    parts = decode_parts(outputs, TENSOR_HW, 1.0, (64, 96), min_score={"HEAD": 0.3, "HAND": 0.4})
    # THEN one HEAD survives NMS, clipped to the image; the HAND is below its threshold
    assert list(parts.labels) == ["HEAD"]
    np.testing.assert_allclose(parts.boxes[0], [0, 0, 12, 12])


def test_nothing_above_threshold_gives_empty_boxes() -> None:
    parts = decode_parts(_empty_outputs(), TENSOR_HW, 1.0, (64, 96))
    assert len(parts) == 0 and parts.boxes.shape == (0, 4)


def test_calibration_is_monotone_piecewise_linear() -> None:
    table = {"HEAD": [[0.2, 10.0], [0.5, 60.0], [0.8, 95.0]]}
    got = calibrate("HEAD", np.array([0.0, 0.2, 0.35, 0.8, 1.0]), table)
    np.testing.assert_allclose(got, [0, 10, 35, 95, 95])  # flat past the last knot: no measured support
    np.testing.assert_allclose(calibrate("HAND", np.array([0.5]), table), [50])


def test_part_boxes_reject_mismatched_arrays() -> None:
    with pytest.raises(ValueError):
        PartBoxes(np.zeros((2, 4)), np.zeros(1), np.zeros(2, "<U4"), np.zeros(2), np.zeros(2))


def _boxes(rows: list[tuple[float, float, float, float, float, str]]) -> PartBoxes:
    arr = np.array([r[:5] for r in rows], np.float32).reshape(-1, 5)
    labels = np.array([r[5] for r in rows], "<U4")
    return PartBoxes(arr[:, :4], arr[:, 4], labels, np.zeros(len(rows), np.float32), 100 * arr[:, 4])


def test_merging_a_zoomed_run_keeps_the_better_box_of_each_overlapping_pair() -> None:
    # GIVEN a whole-frame run with a weak head and a hand, and a zoomed run that sees the head better plus a new head
    first = _boxes([(10, 10, 20, 20, 0.2, "HEAD"), (50, 50, 60, 60, 0.6, "HAND")])
    zoomed = _boxes([(11, 10, 21, 20, 0.7, "HEAD"), (80, 10, 90, 20, 0.5, "HEAD"), (50, 50, 60, 60, 0.4, "HEAD")])
    # WHEN merged
    merged = merge_parts(first, zoomed)
    # THEN the weak head gives way to the zoomed one, the new head is added, and a HEAD never suppresses a HAND
    assert sorted(zip(merged.labels.tolist(), [round(float(v), 2) for v in merged.scores], strict=True)) == [
        ("HAND", 0.6), ("HEAD", 0.4), ("HEAD", 0.5), ("HEAD", 0.7)
    ]
    assert list(merged.scores) == sorted(merged.scores, reverse=True)
    assert merge_parts(first, PartBoxes.empty()) is first

