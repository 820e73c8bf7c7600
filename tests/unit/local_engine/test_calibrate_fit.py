"""model_workshop.calibrate.fit_curve: a monotone curve that follows the share of right answers per score."""

from __future__ import annotations

import numpy as np
import pytest

from model_workshop.calibrate import GRID, fit_curve


@pytest.mark.parametrize("method", ["platt", "isotonic"])
def test_fitted_curve_rises_with_the_score_and_matches_the_share_right(method: str) -> None:
    # GIVEN answers whose chance of being right is their score (a perfectly calibrated detector)
    rng = np.random.default_rng(0)
    scores = rng.uniform(0, 1, 4000)
    right = rng.uniform(0, 1, 4000) < scores
    # WHEN a curve is fitted
    xs, ys = fit_curve(scores, right, method)
    # THEN it is sampled on the grid, never falls, and lies near 100 x score in the middle of the range
    assert xs == [float(x) for x in GRID]
    assert all(b >= a for a, b in zip(ys, ys[1:], strict=False))
    middle = [(x, y) for x, y in zip(xs, ys, strict=True) if 0.2 <= x <= 0.8]
    assert all(abs(y - 100 * x) < 8 for x, y in middle)


def test_a_score_that_says_nothing_gives_a_flat_platt_curve() -> None:
    # GIVEN answers right half of the time whatever the score
    scores = np.linspace(0, 1, 400)
    right = np.arange(400) % 2 == 0
    xs, ys = fit_curve(scores, right, "platt")
    # THEN the curve stays near 50 everywhere
    assert max(ys) - min(ys) < 10 and abs(ys[10] - 50) < 5
