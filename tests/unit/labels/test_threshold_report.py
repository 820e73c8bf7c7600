"""Per-class precision / recall / F1 at a threshold, and the F1-maximising threshold, on hand-made scores."""

from __future__ import annotations

import numpy as np
import pytest

from model_workshop.labels.train import best_threshold, threshold_report

CLASSES = ["no_vest", "vest"]
# P(vest) for 6 crops; the truth is 3 no_vest then 3 vest.
P_VEST = np.array([0.1, 0.3, 0.6, 0.4, 0.7, 0.9])
LABELS = np.array([0, 0, 0, 1, 1, 1])
PROBS = np.stack([1 - P_VEST, P_VEST], axis=1)


def test_binary_scores_at_the_chosen_threshold() -> None:
    # at 0.5 on P(vest): predicted vest = crops 2, 4, 5 -> vest tp 2 (4, 5), fp 1 (2), fn 1 (3)
    report = threshold_report(LABELS, PROBS, CLASSES, 0.5, positive_index=1)
    vest, no_vest = report.per_class["vest"], report.per_class["no_vest"]
    assert (vest.precision, vest.recall, vest.f1, vest.support) == (pytest.approx(2 / 3, abs=1e-4),) * 3 + (3,)
    # no_vest predicted for 0, 1, 3 -> tp 2, fp 1 (3), fn 1 (2)
    assert (no_vest.precision, no_vest.recall) == (pytest.approx(2 / 3, abs=1e-4), pytest.approx(2 / 3, abs=1e-4))
    assert report.abstained == 0 and report.rule.startswith("vest when P(vest) >= threshold")


def test_f1_maximising_threshold_separates_the_classes() -> None:
    # No cut separates them (no_vest crop 2 scores 0.6, vest crop 3 only 0.4); two cuts get 5 of 6 right:
    # 0.31..0.40: vest = {2,3,4,5}: vest P 3/4 R 1 F1 6/7; no_vest = {0,1}: P 1 R 2/3 F1 0.8 -> macro 0.8286
    # 0.61..0.70: vest = {4,5}: P 1 R 2/3 F1 0.8; no_vest = {0,1,2,3}: F1 6/7 -> the same macro F1.
    # The tie goes to the threshold nearest 0.5: 0.40 (0.10 away) beats 0.61 (0.11 away).
    best = best_threshold(LABELS, PROBS, CLASSES, positive_index=1)
    assert best.macro_f1 == pytest.approx((6 / 7 + 0.8) / 2, abs=1e-4)
    assert best.threshold == pytest.approx(0.4)


def test_multiclass_threshold_leaves_unsure_crops_unlabelled() -> None:
    classes = ["blue_net", "white_net", "no_net"]
    probs = np.array([[0.8, 0.1, 0.1], [0.4, 0.35, 0.25], [0.1, 0.2, 0.7], [0.2, 0.7, 0.1]])
    labels = np.array([0, 1, 2, 1])
    report = threshold_report(labels, probs, classes, 0.5)
    assert report.abstained == 1  # crop 1's top score 0.4 < 0.5: no label, a miss for white_net
    assert report.per_class["white_net"].recall == pytest.approx(0.5)
    assert report.per_class["blue_net"].precision == 1.0 and report.per_class["no_net"].f1 == 1.0
    low = threshold_report(labels, probs, classes, 0.3)
    assert low.abstained == 0 and low.per_class["blue_net"].precision == pytest.approx(0.5)  # crop 1 -> blue, wrong
