"""Per-class precision / recall / F1 at a threshold, and the F1-maximising threshold."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def predictions(probs: np.ndarray, positive_index: int | None, threshold: float) -> np.ndarray:
    """Predicted class per row: binary models use the threshold on P(positive), others take the argmax."""
    if positive_index is not None and probs.shape[1] == 2:
        return np.where(probs[:, positive_index] >= threshold, positive_index, 1 - positive_index)
    return np.asarray(probs.argmax(axis=1))


def class_report(labels: np.ndarray, predicted: np.ndarray, classes: Sequence[str]) -> dict[str, Any]:
    per_class: dict[str, dict[str, float]] = {}
    for index, name in enumerate(classes):
        tp = int(np.sum((predicted == index) & (labels == index)))
        fp = int(np.sum((predicted == index) & (labels != index)))
        fn = int(np.sum((predicted != index) & (labels == index)))
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class[name] = {
            "precision": round(precision, 4),
            "recall": round(recall, 4),
            "f1": round(f1, 4),
            "support": int(np.sum(labels == index)),
        }
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
    for threshold in np.round(np.arange(0.05, 0.96, 0.01), 2):
        pred = positive_prob >= threshold
        tp = float(np.sum(pred & truth))
        fp = float(np.sum(pred & ~truth))
        fn = float(np.sum(~pred & truth))
        f1 = 2 * tp / (2 * tp + fp + fn) if tp else 0.0
        if f1 > best[1]:
            best = (float(threshold), f1)
    return best[0], round(best[1], 4)


def evaluate_probs(
    labels: np.ndarray, probs: np.ndarray, classes: Sequence[str], positive_index: int | None, threshold: float
) -> dict[str, Any]:
    report = class_report(labels, predictions(probs, positive_index, threshold), classes)
    report["threshold"] = threshold
    if positive_index is not None and probs.shape[1] == 2 and len(labels):
        t, f1 = best_f1_threshold(labels, probs[:, positive_index], positive_index)
        report["f1_max_threshold"] = t
        report["f1_max"] = f1
    return report
