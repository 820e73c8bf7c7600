"""HEAD / HAND boxes from the part head grafted onto NanoDet: one run gives persons and body parts.

The part head (model_workshop/parts_detector) reads NanoDet's FPN features (strides 8 / 16 / 32); the model
store builds `nanodet-parts-int8.onnx` = the int8 NanoDet graph plus that head, so the persons' outputs are
unchanged and three outputs are added, one per stride: [1, cells, 8] = per cell the score of each part
(sigmoid, 0..1), the probability that the part is covered (helmet / glove), and the box distances
left, top, right, bottom from the cell centre in units of the stride.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from services.detector.local_engine.persons import (
    NANODET_STRIDES,
    PersonBoxes,
    decode_persons,
    letterbox,
    session,
)
from shared.boxes import nms_by_label

PARTS = ("HEAD", "HAND")
PART_CHANNELS = 2 * len(PARTS) + 4  # scores, covered probabilities, ltrb
WEIGHTS_DIR = Path(__file__).with_name("weights")
PART_HEAD_CONFIG = WEIGHTS_DIR / "part_head.json"  # thresholds and calibration chosen on the validation slice
DEFAULT_MIN_SCORE = 0.3
DEFAULT_IOU = 0.5

Thresholds = float | Mapping[str, float]
Calibration = Mapping[str, Sequence[Sequence[float]]]  # part -> [[score, confidence 0..100], ...] knots


@dataclass(frozen=True)
class PartBoxes:
    boxes: np.ndarray  # [N, 4] x1, y1, x2, y2 in pixels of the source image
    scores: np.ndarray  # [N] 0..1, that the box is a real part
    labels: np.ndarray  # [N] "HEAD" / "HAND"
    covered: np.ndarray  # [N] 0..1, that the part is covered (HEAD: helmet / hard hat, HAND: glove)
    confidence: np.ndarray  # [N] 0..100, calibrated: about c % of boxes at confidence c are real parts

    def __post_init__(self) -> None:
        n = len(self.boxes)
        sizes = {len(self.scores), len(self.labels), len(self.covered), len(self.confidence)}
        if self.boxes.shape != (n, 4) or sizes != {n}:
            raise ValueError("PartBoxes arrays must share their first dimension (boxes [N, 4])")

    def __len__(self) -> int:
        return len(self.boxes)

    def of(self, part: str) -> PartBoxes:
        """The boxes of one part ("HEAD" / "HAND")."""
        keep = self.labels == part
        return PartBoxes(
            self.boxes[keep], self.scores[keep], self.labels[keep], self.covered[keep], self.confidence[keep]
        )

    @staticmethod
    def empty() -> PartBoxes:
        zeros = np.zeros(0, np.float32)
        return PartBoxes(np.zeros((0, 4), np.float32), zeros, np.zeros(0, "<U4"), zeros, zeros)


def calibrate(part: str, scores: np.ndarray, calibration: Calibration | None) -> np.ndarray:
    """Confidence 0..100 for raw scores of one part (monotone piecewise-linear; 100 x score without a table)."""
    knots = calibration.get(part) if calibration else None
    if not knots:
        return (100 * scores).astype(np.float32)
    xs, ys = np.asarray(knots, np.float64).T
    curve: np.ndarray = np.interp(scores, np.r_[0.0, xs, 1.0], np.r_[0.0, ys, max(ys[-1], 100.0 * xs[-1])])
    return curve.astype(np.float32)


def decode_parts(
    outputs: Sequence[np.ndarray],
    tensor_hw: tuple[int, int],
    scale: float,
    image_hw: tuple[int, int],
    *,
    min_score: Thresholds = DEFAULT_MIN_SCORE,
    iou: float = DEFAULT_IOU,
    max_parts: int = 100,
    calibration: Calibration | None = None,
) -> PartBoxes:
    """Part boxes from the graph outputs (any order; the part outputs are those with 8 channels per cell).

    `tensor_hw` is the letterboxed input's size, `scale` the letterbox scale, `image_hw` the source image's size.
    NMS runs per part, so a hand over a face keeps both boxes. `min_score` is one threshold or one per part.
    """
    floors = np.array([min_score[p] if isinstance(min_score, Mapping) else min_score for p in PARTS], np.float32)
    ph, pw = tensor_hw
    by_cells = {o.shape[1]: o[0] for o in outputs if o.ndim == 3 and o.shape[2] == PART_CHANNELS}
    n_parts = len(PARTS)
    boxes_l, scores_l, labels_l, covered_l = [], [], [], []
    for stride in NANODET_STRIDES:
        gh, gw = -(-ph // stride), -(-pw // stride)
        level = by_cells.get(gh * gw)
        if level is None:
            raise ValueError(f"no part output for stride {stride} ({gh}x{gw} cells) among the graph outputs")
        cell, part = np.nonzero(level[:, :n_parts] >= floors)
        if cell.size == 0:
            continue
        ltrb = level[cell, 2 * n_parts :] * stride
        cx = (cell % gw + 0.5) * stride
        cy = (cell // gw + 0.5) * stride
        boxes_l.append(np.stack([cx - ltrb[:, 0], cy - ltrb[:, 1], cx + ltrb[:, 2], cy + ltrb[:, 3]], axis=1))
        scores_l.append(level[cell, part])
        covered_l.append(level[cell, n_parts + part])
        labels_l.append(part)
    if not boxes_l:
        return PartBoxes.empty()
    boxes = np.concatenate(boxes_l) / scale
    scores, labels, covered = np.concatenate(scores_l), np.concatenate(labels_l), np.concatenate(covered_l)
    h, w = image_hw
    boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, w)
    boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, h)
    keep = nms_by_label(boxes, scores, labels, iou, range(n_parts))
    keep = keep[np.argsort(-scores[keep], kind="stable")][:max_parts]
    names = np.asarray(PARTS)[labels[keep]]
    kept_scores = scores[keep].astype(np.float32)
    confidence = np.zeros(len(keep), np.float32)
    for part_name in PARTS:
        sel = names == part_name
        confidence[sel] = calibrate(part_name, kept_scores[sel], calibration)
    return PartBoxes(boxes[keep].astype(np.float32), kept_scores, names, covered[keep].astype(np.float32), confidence)


class PartDetector:
    """HEAD / HAND boxes (and persons, from the same run) with `nanodet-parts-int8.onnx`.

    The letterbox is PersonDetector's (same `input_side` / `enlarge_to`), so the persons match what
    PersonDetector finds with the int8 NanoDet.
    """

    def __init__(
        self,
        model_path: Path,
        *,
        config_path: Path = PART_HEAD_CONFIG,
        threads: int = 1,
        input_side: int = 576,
        enlarge_to: int = 512,
    ) -> None:
        if input_side % 32:
            raise ValueError(f"input_side must be a multiple of 32, got {input_side}")
        self.input_side = input_side
        self.enlarge_to = min(enlarge_to, input_side)
        self._session = session(model_path, threads)
        self._input = self._session.get_inputs()[0].name
        if not any(o.shape[-1] == PART_CHANNELS for o in self._session.get_outputs()):
            raise ValueError(f"{model_path} has no part outputs (is it nanodet-parts-int8.onnx?)")
        config = json.loads(config_path.read_text())
        self.thresholds: dict[str, float] = {p: float(config["thresholds"][p]) for p in PARTS}
        self.calibration: Calibration = config["calibration"]
        # covered[i] >= cover_thresholds[label] reads as "covered" (HEAD 0.7: helmets dominate the training data)
        thresholds = config.get("cover_thresholds", {})
        self.cover_thresholds: dict[str, float] = {p: float(thresholds.get(p, 0.5)) for p in PARTS}

    def run(self, image_bgr: np.ndarray) -> tuple[list[np.ndarray], tuple[int, int], float]:
        """The raw graph outputs, the letterboxed tensor's size and the letterbox scale."""
        tensor, scale = letterbox(image_bgr, self.input_side, self.enlarge_to)
        return self._session.run(None, {self._input: tensor}), (tensor.shape[2], tensor.shape[3]), scale

    def detect(
        self, image_bgr: np.ndarray, *, min_score: Thresholds | None = None, iou: float = DEFAULT_IOU
    ) -> PartBoxes:
        """Part boxes; `min_score` defaults to the per-part thresholds chosen on the validation slice."""
        outputs, tensor_hw, scale = self.run(image_bgr)
        return self.decode(outputs, tensor_hw, scale, image_bgr.shape[:2], min_score=min_score, iou=iou)

    def decode(
        self,
        outputs: Sequence[np.ndarray],
        tensor_hw: tuple[int, int],
        scale: float,
        image_hw: tuple[int, int],
        *,
        min_score: Thresholds | None = None,
        iou: float = DEFAULT_IOU,
    ) -> PartBoxes:
        threshold = self.thresholds if min_score is None else min_score
        return decode_parts(
            outputs, tensor_hw, scale, image_hw, min_score=threshold, iou=iou, calibration=self.calibration
        )

    def detect_with_persons(
        self,
        image_bgr: np.ndarray,
        *,
        person_min_score: float,
        min_score: Thresholds | None = None,
        iou: float = DEFAULT_IOU,
        person_iou: float = 0.5,
        max_persons: int = 15,
    ) -> tuple[PersonBoxes, PartBoxes]:
        """Persons (as PersonDetector.detect) and parts from one NanoDet run."""
        outputs, tensor_hw, scale = self.run(image_bgr)
        hw = image_bgr.shape[:2]
        persons = decode_persons(
            outputs, tensor_hw, scale, hw, min_score=person_min_score, iou=person_iou, max_persons=max_persons
        )
        return persons, self.decode(outputs, tensor_hw, scale, hw, min_score=min_score, iou=iou)

    def detect_in(
        self, image_bgr: np.ndarray, region: tuple[int, int, int, int], *, min_score: Thresholds | None = None,
        iou: float = DEFAULT_IOU,
    ) -> PartBoxes:
        """Parts in one region (x1, y1, x2, y2 pixels), the crop letterboxed to the full `input_side` (so small
        parts are seen larger than in the whole frame); boxes in source pixels. A box touching a crop edge that
        is not an image edge is dropped (a part cut by the crop)."""
        x1, y1, x2, y2 = region
        crop = np.ascontiguousarray(image_bgr[y1:y2, x1:x2])
        tensor, scale = letterbox(crop, self.input_side, self.input_side)
        outputs = self._session.run(None, {self._input: tensor})
        tensor_hw = (tensor.shape[2], tensor.shape[3])
        found = self.decode(outputs, tensor_hw, scale, crop.shape[:2], min_score=min_score, iou=iou)
        h, w = image_bgr.shape[:2]
        edge = 2.0
        cut = (
            ((found.boxes[:, 0] <= edge) & (x1 > 0))
            | ((found.boxes[:, 1] <= edge) & (y1 > 0))
            | ((found.boxes[:, 2] >= x2 - x1 - edge) & (x2 < w))
            | ((found.boxes[:, 3] >= y2 - y1 - edge) & (y2 < h))
        )
        keep = ~cut
        boxes = found.boxes[keep] + np.array([x1, y1, x1, y1], np.float32)
        return PartBoxes(boxes, found.scores[keep], found.labels[keep], found.covered[keep], found.confidence[keep])


def merge_parts(first: PartBoxes, second: PartBoxes, iou: float = DEFAULT_IOU) -> PartBoxes:
    """The boxes of two runs as one set: per part, overlapping boxes (IoU > `iou`) keep the best-scored one."""
    if not len(second):
        return first
    if not len(first):
        return second
    boxes = np.concatenate([first.boxes, second.boxes])
    scores = np.concatenate([first.scores, second.scores])
    labels = np.concatenate([first.labels, second.labels])
    keep = nms_by_label(boxes, scores, labels, iou, PARTS)
    keep = keep[np.argsort(-scores[keep], kind="stable")]
    covered = np.concatenate([first.covered, second.covered])
    confidence = np.concatenate([first.confidence, second.confidence])
    return PartBoxes(boxes[keep], scores[keep], labels[keep], covered[keep], confidence[keep])
