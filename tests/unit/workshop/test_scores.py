"""model_workshop.scores: the one precision / recall / F1 of the workshop."""

from __future__ import annotations

import numpy as np
import pytest

from model_workshop.scores import (
    ClassScores,
    best_f1_threshold,
    class_counts,
    class_scores,
    f1,
    precision,
    predictions,
    recall,
)


@pytest.mark.parametrize(
    ("tp", "fp", "fn", "p", "r", "f"),
    [
        (8, 2, 2, 0.8, 0.8, 0.8),
        (3, 1, 5, 0.75, 0.375, 0.5),
        (0, 4, 4, 0.0, 0.0, 0.0),
        (0, 0, 0, 0.0, 0.0, 0.0),  # nothing predicted, nothing real: zeros, not a division error
        (5, 0, 0, 1.0, 1.0, 1.0),
    ],
)
def test_known_counts(tp: int, fp: int, fn: int, p: float, r: float, f: float) -> None:
    assert precision(tp, fp) == pytest.approx(p)
    assert recall(tp, fn) == pytest.approx(r)
    assert f1(tp, fp, fn) == pytest.approx(f)


def test_f1_is_the_harmonic_mean_of_precision_and_recall() -> None:
    rng = np.random.default_rng(3)
    for tp, fp, fn in rng.integers(1, 500, (200, 3)):
        p, r = precision(tp, fp), recall(tp, fn)
        assert f1(tp, fp, fn) == pytest.approx(2 * p * r / (p + r), rel=1e-12)


def test_class_scores_count_each_class_against_the_rest() -> None:
    # GIVEN three classes, one abstention (-1) and a class never predicted
    labels = np.array([0, 0, 0, 1, 1, 2])
    predicted = np.array([0, 0, 1, 1, -1, 0])
    # THEN each class has its own counts, and the abstention is a miss of its true class
    assert class_counts(labels, predicted, 0) == (2, 1, 1)
    scores = class_scores(labels, predicted, ["a", "b", "c"])
    assert scores["a"] == ClassScores(precision=0.6667, recall=0.6667, f1=0.6667, support=3)
    assert scores["b"] == ClassScores(precision=0.5, recall=0.5, f1=0.5, support=2)
    assert scores["c"] == ClassScores(precision=0.0, recall=0.0, f1=0.0, support=1)


def test_predictions_binary_multiclass_and_abstaining() -> None:
    binary = np.array([[0.3, 0.7], [0.6, 0.4]])
    assert predictions(binary, 1, 0.5).tolist() == [1, 0]
    assert predictions(binary, 1, 0.75).tolist() == [0, 0]
    three = np.array([[0.5, 0.3, 0.2], [0.2, 0.35, 0.45]])
    assert predictions(three, None, 0.5).tolist() == [0, 2]
    assert predictions(three, None, 0.5, abstain=True).tolist() == [0, -1]


def test_best_f1_threshold_separates_cleanly_separable_scores() -> None:
    labels = np.array([1, 1, 1, 0, 0, 0])
    positive = np.array([0.9, 0.8, 0.62, 0.6, 0.2, 0.1])
    threshold, best = best_f1_threshold(labels, positive, 1)
    assert 0.6 < threshold <= 0.62 and best == 1.0
