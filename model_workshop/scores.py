"""Precision, recall and F1: the one place the workshop counts them (crop classifiers, custom-label models, part
boxes), the predictions a decision threshold gives, and the threshold grid every threshold search walks.

F1 is 2 TP / (2 TP + FP + FN): the same value as 2 P R / (P + R), from one division, so that two thresholds with
equally good counts tie exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

THRESHOLD_GRID = np.round(np.arange(0.05, 0.96, 0.01), 2)  # decision thresholds a threshold search tries


@dataclass(frozen=True)
class ClassScores:
    precision: float
    recall: float
    f1: float
    support: int


def precision(tp: float, fp: float) -> float:
    """Share of the predicted that are right (0 when nothing was predicted)."""
    return tp / (tp + fp) if tp + fp else 0.0


def recall(tp: float, fn: float) -> float:
    """Share of the real ones that were found (0 when there were none)."""
    return tp / (tp + fn) if tp + fn else 0.0


def f1(tp: float, fp: float, fn: float) -> float:
    return 2 * tp / (2 * tp + fp + fn) if tp else 0.0


def class_counts(labels: np.ndarray, predicted: np.ndarray, cls: int) -> tuple[int, int, int]:
    """True positives, false positives and false negatives of one class index."""
    tp = int(np.sum((predicted == cls) & (labels == cls)))
    fp = int(np.sum((predicted == cls) & (labels != cls)))
    fn = int(np.sum((predicted != cls) & (labels == cls)))
    return tp, fp, fn


def class_scores(labels: np.ndarray, predicted: np.ndarray, classes: Sequence[str]) -> dict[str, ClassScores]:
    """Per class (by index into `classes`): precision, recall and F1 rounded to 4 places, and the support."""
    per_class = {}
    for index, name in enumerate(classes):
        tp, fp, fn = class_counts(labels, predicted, index)
        per_class[name] = ClassScores(
            round(precision(tp, fp), 4), round(recall(tp, fn), 4), round(f1(tp, fp, fn), 4), tp + fn
        )
    return per_class


def predictions(
    probs: np.ndarray, positive_index: int | None, threshold: float, *, abstain: bool = False
) -> np.ndarray:
    """Predicted class index per row. Binary models: the positive class when P(positive) >= threshold, else the
    other. More classes: the top class; with `abstain`, only when its probability >= threshold, else -1."""
    if positive_index is not None and probs.shape[1] == 2:
        return np.where(probs[:, positive_index] >= threshold, positive_index, 1 - positive_index)
    if abstain:
        return np.where(probs.max(axis=1) >= threshold, probs.argmax(axis=1), -1)
    return np.asarray(probs.argmax(axis=1))


def class_report(labels: np.ndarray, predicted: np.ndarray, classes: Sequence[str]) -> dict[str, Any]:
    """Accuracy, balanced accuracy and per-class scores as a JSON-ready dict (what a model card records)."""
    per_class = {name: asdict(scores) for name, scores in class_scores(labels, predicted, classes).items()}
    accuracy = float(np.mean(predicted == labels)) if len(labels) else 0.0
    balanced = float(np.mean([v["recall"] for v in per_class.values() if v["support"] > 0])) if len(labels) else 0.0
    return {
        "accuracy": round(accuracy, 4),
        "balanced_accuracy": round(balanced, 4),
        "n": int(len(labels)),
        "per_class": per_class,
    }


def best_f1_threshold(labels: np.ndarray, positive_prob: np.ndarray, positive_index: int) -> tuple[float, float]:
    """The threshold on P(positive) that maximises the positive class's F1, and that F1."""
    truth = labels == positive_index
    best = (0.5, -1.0)
    for threshold in THRESHOLD_GRID:
        pred = positive_prob >= threshold
        score = f1(float(np.sum(pred & truth)), float(np.sum(pred & ~truth)), float(np.sum(~pred & truth)))
        if score > best[1]:
            best = (float(threshold), score)
    return best[0], round(best[1], 4)


def evaluate_probs(
    labels: np.ndarray, probs: np.ndarray, classes: Sequence[str], positive_index: int | None, threshold: float
) -> dict[str, Any]:
    """`class_report` at `threshold`, and for binary models the F1-maximising threshold beside it."""
    report = class_report(labels, predictions(probs, positive_index, threshold), classes)
    report["threshold"] = threshold
    if positive_index is not None and probs.shape[1] == 2 and len(labels):
        t, best = best_f1_threshold(labels, probs[:, positive_index], positive_index)
        report["f1_max_threshold"] = t
        report["f1_max"] = best
    return report
