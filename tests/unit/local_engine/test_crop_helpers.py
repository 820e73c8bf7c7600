"""Crop helpers shared by training and inference."""

import numpy as np
import pytest

from services.detector.local_engine.classifiers import (
    preprocess,
    square_crop,
    torso_box_from_keypoints,
    torso_box_from_person,
    torso_box_from_shoulders,
)


def _ramp(height: int = 100, width: int = 200) -> np.ndarray:
    image = np.zeros((height, width, 3), dtype=np.uint8)
    image[:, :, 0] = np.arange(width, dtype=np.uint8)[None, :]  # B = x
    image[:, :, 1] = np.arange(height, dtype=np.uint8)[:, None]  # G = y
    return image


def test_square_crop_inside_image_is_the_square_around_the_box() -> None:
    # GIVEN a 20x10 box at (50, 40) and margin 0.25 -> side 20 * 1.5 = 30, centred on (60, 45)
    crop = square_crop(_ramp(), (50, 40, 70, 50), margin=0.25)
    # THEN the crop spans x 45..75 and y 30..60
    assert crop.shape == (30, 30, 3)
    assert crop[0, 0, 0] == 45 and crop[0, 0, 1] == 30
    assert crop[-1, -1, 0] == 74 and crop[-1, -1, 1] == 59


def test_square_crop_pads_outside_the_image_with_black() -> None:
    # GIVEN a box at the top-left corner, its square reaches outside the image
    crop = square_crop(_ramp() + 1, (0, 0, 10, 10), margin=0.5)
    # THEN side 20, centred on (5, 5): the first 5 rows and columns are outside -> black
    assert crop.shape == (20, 20, 3)
    assert crop[:5].max() == 0 and crop[:, :5].max() == 0
    assert crop[5, 5, 0] == 1 and crop[5, 5, 1] == 1


@pytest.mark.parametrize("box", [(10, 10, 10, 20), (10, 20, 30, 5)])
def test_square_crop_rejects_empty_boxes(box: tuple[int, int, int, int]) -> None:
    with pytest.raises(ValueError, match="x2 > x1"):
        square_crop(_ramp(), box, margin=0.1)


def test_torso_of_a_standing_person_is_between_shoulders_and_hips() -> None:
    x1, y1, x2, y2 = torso_box_from_person((100, 0, 200, 400))
    assert (y1, y2) == pytest.approx((72, 232))
    assert (x1, x2) == pytest.approx((110, 190))


def test_torso_of_a_head_and_shoulders_box_is_its_lower_part() -> None:
    x1, y1, x2, y2 = torso_box_from_person((0, 0, 100, 100))
    assert y1 == pytest.approx(45) and y2 == pytest.approx(100)


def test_torso_from_keypoints_covers_the_keypoints() -> None:
    box = torso_box_from_keypoints([(100, 50), (160, 52)], [(110, 150), (150, 150)])
    assert box[0] < 100 and box[1] < 50 and box[2] > 160 and box[3] > 150


def test_torso_from_shoulders_hangs_below_them_within_the_person() -> None:
    shoulders = [(100.0, 50.0), (140.0, 54.0)]
    x1, y1, x2, y2 = torso_box_from_shoulders(shoulders, (60.0, 0.0, 180.0, 400.0))
    assert x1 < 100 < 140 < x2 and y1 < 50 and y2 > 52 + 40  # more than one shoulder span down
    # cut by the person box's bottom (a worker cut off by the image edge), yet never flatter than half a span
    _, _, _, low = torso_box_from_shoulders(shoulders, (60.0, 0.0, 180.0, 60.0))
    assert low == 52.0 + 0.5 * 40.0


def test_preprocess_is_rgb_normalised_nchw() -> None:
    crop = np.zeros((10, 10, 3), dtype=np.uint8)
    crop[:, :, 2] = 255  # red in BGR
    batch = preprocess([crop], 8, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
    assert batch.shape == (1, 3, 8, 8) and batch.dtype == np.float32
    assert batch[0, 0].min() == pytest.approx(2.0)  # R channel first: (1 - 0.5) / 0.25
    assert batch[0, 2].max() == pytest.approx(-2.0)
