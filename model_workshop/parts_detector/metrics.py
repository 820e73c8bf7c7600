"""Scores of part boxes against labelled boxes: recall at IoU 0.2 / 0.5, precision, covered verdicts."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np

from model_workshop.scores import precision, recall
from services.detector.local_engine.parts import PARTS, PartBoxes
from shared.boxes import iou_matrix

STRICT_IOU = 0.2


def greedy_match(ious: np.ndarray, threshold: float) -> np.ndarray:
    """For each labelled box (rows), the index of its predicted box (cols) or -1; one prediction per label."""
    match = np.full(ious.shape[0], -1, np.int64)
    if ious.size == 0:
        return match
    pairs = np.argwhere(ious >= threshold)
    order = np.argsort(-ious[pairs[:, 0], pairs[:, 1]], kind="stable")
    used_r, used_c = set(), set()
    for r, c in pairs[order]:
        if r not in used_r and c not in used_c:
            match[r] = c
            used_r.add(r)
            used_c.add(c)
    return match


@dataclass
class PartScore:
    """Counts over images for one part; `calibration` rows are (score, is a real part at IoU >= 0.2)."""

    labels: int = 0
    hit20: int = 0
    hit50: int = 0
    predicted: int = 0
    true_predicted: int = 0
    images: int = 0
    by_state: dict[str, list[int]] = field(default_factory=lambda: defaultdict(lambda: [0, 0, 0, 0]))
    calibration: list[tuple[float, bool]] = field(default_factory=list)

    def add(
        self, pred: PartBoxes, boxes: np.ndarray, covered: np.ndarray, *, min_score: float, cover_at: float = 0.5
    ) -> None:
        """`pred` holds boxes of this part at any score >= the decode threshold; scored at `min_score`."""
        self.images += 1
        ious_all = iou_matrix(boxes, pred.boxes)
        # calibration: each prediction is real if it matches a label (greedy, best score first) at IoU >= 0.2
        order = np.argsort(-pred.scores, kind="stable")
        taken = np.zeros(len(boxes), bool)
        for j in order:
            col = ious_all[:, j] if len(boxes) else np.zeros(0)
            cand = np.nonzero((col >= STRICT_IOU) & ~taken)[0]
            real = cand.size > 0
            if real:
                taken[cand[np.argmax(col[cand])]] = True
            self.calibration.append((float(pred.scores[j]), bool(real)))
        keep = pred.scores >= min_score
        ious = ious_all[:, keep]
        kept_cov = pred.covered[keep]
        m20, m50 = greedy_match(ious, STRICT_IOU), greedy_match(ious, 0.5)
        self.labels += len(boxes)
        self.hit20 += int((m20 >= 0).sum())
        self.hit50 += int((m50 >= 0).sum())
        self.predicted += int(keep.sum())
        self.true_predicted += int((m20 >= 0).sum())
        for i, state in enumerate(covered):
            row = self.by_state["covered" if state else "bare"]
            row[0] += 1
            if m20[i] >= 0:
                row[1] += 1
                is_covered = kept_cov[m20[i]] >= cover_at
                row[2] += int(is_covered)  # a covered verdict on this label's box
                row[3] += int(is_covered == bool(state))  # right verdict
            # missed: no box, so no covered verdict and a wrong verdict

    def summary(self) -> dict[str, float | int]:
        out: dict[str, float | int] = {
            "labels": self.labels,
            "recall_iou20": recall(self.hit20, self.labels - self.hit20),
            "recall_iou50": recall(self.hit50, self.labels - self.hit50),
            "precision_iou20": precision(self.true_predicted, self.predicted - self.true_predicted),
            "false_per_image": (self.predicted - self.true_predicted) / max(self.images, 1),
            "images": self.images,
        }
        for state, (n, found, cov, right) in sorted(self.by_state.items()):
            out[f"{state}_labels"] = n
            out[f"{state}_found_iou20"] = found / max(n, 1)
            out[f"{state}_with_covered_box"] = cov / max(n, 1)  # covered: target high; bare: wrongly covered
            out[f"{state}_right_verdict"] = right / max(n, 1)
        return out


def part_scores() -> dict[str, PartScore]:
    return {p: PartScore() for p in PARTS}


def calibration_table(rows: list[tuple[float, bool]], edges: tuple[float, ...]) -> list[dict[str, float]]:
    """Share of real parts per score bin."""
    scores = np.array([r[0] for r in rows])
    real = np.array([r[1] for r in rows])
    table = []
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        sel = (scores >= lo) & (scores < hi)
        table.append({"score_from": lo, "score_to": hi, "boxes": int(sel.sum()),
                      "real": float(real[sel].mean()) if sel.any() else float("nan")})
    return table


def fit_calibration(rows: list[tuple[float, bool]], knots: tuple[float, ...]) -> list[list[float]]:
    """Monotone score -> confidence (0..100) knots: share of real parts among boxes near each knot (pool-adjacent
    violators on the bins), so confidence c means about c % of such boxes are real parts at IoU >= 0.2."""
    scores = np.array([r[0] for r in rows])
    real = np.array([r[1] for r in rows], float)
    centres, values, weights = [], [], []
    for lo, hi in zip(knots[:-1], knots[1:], strict=True):
        sel = (scores >= lo) & (scores < hi)
        if sel.sum() >= 5:
            centres.append(float(scores[sel].mean()))
            values.append(float(real[sel].mean()))
            weights.append(float(sel.sum()))
    # pool adjacent violators: make values non-decreasing
    blocks = [[v, w, [c]] for v, w, c in zip(values, weights, centres, strict=True)]
    i = 0
    while i < len(blocks) - 1:
        if blocks[i][0] > blocks[i + 1][0]:
            v = (blocks[i][0] * blocks[i][1] + blocks[i + 1][0] * blocks[i + 1][1]) / (blocks[i][1] + blocks[i + 1][1])
            blocks[i] = [v, blocks[i][1] + blocks[i + 1][1], blocks[i][2] + blocks[i + 1][2]]
            del blocks[i + 1]
            i = max(i - 1, 0)
        else:
            i += 1
    return [[round(c, 4), round(100 * b[0], 2)] for b in blocks for c in b[2]]
