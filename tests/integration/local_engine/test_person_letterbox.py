"""NanoDet letterbox sizes: big frames shrink to input_side, small close-ups grow only up to enlarge_to."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from services.detector.local_engine.persons import PersonDetector


@pytest.mark.parametrize(
    ("height", "width", "expected_hw"),
    [
        (720, 1280, (352, 576)),  # camera frame: long side 576 (324 rows, padded to a multiple of 32)
        (300, 400, (384, 512)),  # small close-up: enlarged to 512 only, as before side 576
        (540, 540, (544, 544)),  # between the two: kept at its own size (padded to a multiple of 32)
    ],
)
def test_letterbox_size(model_dir: Path, height: int, width: int, expected_hw: tuple[int, int]) -> None:
    detector = PersonDetector(model_dir / "nanodet.onnx", input_side=576, enlarge_to=512)
    tensor, scale = detector.letterbox(np.zeros((height, width, 3), dtype=np.uint8))
    assert tensor.shape[2:] == expected_hw
    assert max(height, width) * scale <= max(expected_hw)
