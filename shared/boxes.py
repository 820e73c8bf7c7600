"""One box type and the overlap arithmetic every stage shares: IoU, a vectorised IoU matrix, non-maximum suppression.

A box is its corners x1, y1, x2, y2 in one unit, pixels (the local engine, the workshop's labels) or fractions of
the image side (Rekognition's BoundingBox: `Box.of_xywh(Left, Top, Width, Height)`). IoU is the same sum in
either unit. No I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import NamedTuple

import numpy as np

Corners = Sequence[float] | np.ndarray  # x1, y1, x2, y2


class Box(NamedTuple):
    """Corners x1, y1 (top left) and x2, y2 (bottom right); x2 < x1 or y2 < y1 is an empty box.

    A named tuple: immutable, cheap to make in the engine's per-pair loops, and itself a corner sequence."""

    x1: float
    y1: float
    x2: float
    y2: float

    @classmethod
    def of(cls, corners: Corners) -> Box:
        """From x1, y1, x2, y2 (a tuple, a list or a NumPy row)."""
        x1, y1, x2, y2 = corners.tolist() if isinstance(corners, np.ndarray) else corners
        return cls(float(x1), float(y1), float(x2), float(y2))

    @classmethod
    def of_xywh(cls, left: float, top: float, width: float, height: float) -> Box:
        """From left, top, width, height (Rekognition's BoundingBox order)."""
        return cls(left, top, left + width, top + height)

    @property
    def width(self) -> float:
        return self.x2 - self.x1

    @property
    def height(self) -> float:
        return self.y2 - self.y1

    @property
    def area(self) -> float:
        return (self.x2 - self.x1) * (self.y2 - self.y1)

    @property
    def centre(self) -> tuple[float, float]:
        return ((self.x1 + self.x2) / 2, (self.y1 + self.y2) / 2)

    def holds(self, point: Sequence[float] | np.ndarray) -> bool:
        """Whether the point (x, y) lies inside or on the edge."""
        return bool(self.x1 <= point[0] <= self.x2 and self.y1 <= point[1] <= self.y2)

    def intersection(self, other: Box) -> float:
        """Area the two boxes share (0 when they do not overlap)."""
        ix = max(0.0, min(self.x2, other.x2) - max(self.x1, other.x1))
        iy = max(0.0, min(self.y2, other.y2) - max(self.y1, other.y1))
        return ix * iy

    def iou(self, other: Box) -> float:
        """Intersection over union, 0..1 (0 when both boxes are empty)."""
        inter = self.intersection(other)
        union = self.area + other.area - inter
        return inter / union if union > 0 else 0.0

    def containment(self, other: Box) -> float:
        """Share of the smaller of the two boxes that lies inside the other, 0..1."""
        smaller = min(self.area, other.area)
        return self.intersection(other) / smaller if smaller > 0 else 0.0

    def centre_distance(self, other: Box) -> float:
        (ax, ay), (bx, by) = self.centre, other.centre
        return float(((ax - bx) ** 2 + (ay - by) ** 2) ** 0.5)


def iou(a: Corners, b: Corners) -> float:
    """IoU of two boxes given as corners."""
    return Box.of(a).iou(Box.of(b))


def containment(a: Corners, b: Corners) -> float:
    """Share of the smaller of two boxes (given as corners) inside the other."""
    return Box.of(a).containment(Box.of(b))


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box of `a` [N, 4] with every box of `b` [M, 4] as an [N, M] array (corners per row).

    The union carries 1e-9 so that empty boxes give 0 without a test per pair (`iou` tests instead)."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    result: np.ndarray = inter / (area_a[:, None] + area_b[None, :] - inter + 1e-9)
    return result


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Indices kept by greedy non-maximum suppression, best first (equal scores: the lower index first).

    OpenCV's NMSBoxes (C++): the NumPy loop of `nms_numpy` cost about 1 ms per 50 boxes and the engine runs it on
    hundreds of weak part boxes per frame (docs/local-engine.md "Engine v2.1")."""
    # Imported here: only the engine suppresses boxes, and a service that only compares boxes need not load OpenCV.
    import cv2

    if len(boxes) == 0:
        return np.zeros(0, dtype=np.int64)
    xywh = np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], axis=1).astype(np.float64)
    # +1: NMSBoxes keeps only scores above its threshold (0 here), and a score of 0 is still a box.
    kept = cv2.dnn.NMSBoxes(xywh.tolist(), (scores.astype(np.float64) + 1.0).tolist(), 0.0, float(iou_threshold))
    return np.asarray(kept, dtype=np.int64).reshape(-1)


def nms_by_label(
    boxes: np.ndarray, scores: np.ndarray, labels: np.ndarray, iou_threshold: float, label_order: Iterable[int | str]
) -> np.ndarray:
    """`nms` within each label (boxes of different labels never suppress each other): the kept indices, label by
    label in `label_order`, best first within a label."""
    return np.concatenate(
        [np.nonzero(labels == p)[0][nms(boxes[labels == p], scores[labels == p], iou_threshold)] for p in label_order]
    )


def nms_numpy(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """The same as `nms` in NumPy: the reference the tests compare `nms` with."""
    order = np.argsort(-scores, kind="stable")
    keep: list[int] = []
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    while order.size:
        i = int(order[0])
        keep.append(i)
        rest = order[1:]
        xx1 = np.maximum(boxes[i, 0], boxes[rest, 0])
        yy1 = np.maximum(boxes[i, 1], boxes[rest, 1])
        xx2 = np.minimum(boxes[i, 2], boxes[rest, 2])
        yy2 = np.minimum(boxes[i, 3], boxes[rest, 3])
        inter = np.clip(xx2 - xx1, 0, None) * np.clip(yy2 - yy1, 0, None)
        overlap = inter / (areas[i] + areas[rest] - inter + 1e-9)
        order = rest[overlap <= iou_threshold]
    return np.asarray(keep, dtype=np.int64)
