"""Person detection with NanoDet (COCO, imported from TFJS) and per-person pose with MoveNet Lightning."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort

from shared.boxes import nms

# NanoDet's training normalisation, applied to BGR pixels (the original repo feeds OpenCV images).
NANODET_MEAN = np.array([103.53, 116.28, 123.675], dtype=np.float32)
NANODET_STD = np.array([57.375, 57.12, 58.395], dtype=np.float32)
NANODET_STRIDES = (8, 16, 32)
NANODET_BINS = 11
PERSON_CLASS = 0

MOVENET_SIZE = 192


def session(path: Path, threads: int) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def letterbox(image_bgr: np.ndarray, input_side: int, enlarge_to: int) -> tuple[np.ndarray, float]:
    """NanoDet input: the image scaled to a long side of `input_side` (a smaller one enlarged only up to
    `enlarge_to`), padded right / bottom to a multiple of 32, BGR normalised; returns the NCHW tensor and scale."""
    h, w = image_bgr.shape[:2]
    scale = min(input_side / max(h, w), max(enlarge_to / max(h, w), 1.0))
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    ph, pw = -(-nh // 32) * 32, -(-nw // 32) * 32
    resized = cv2.resize(image_bgr, (nw, nh), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    # Normalised straight into the NCHW tensor, one channel plane at a time (the same float32 arithmetic as
    # an HWC canvas, without the full-size temporaries and the transposing copy).
    tensor = np.zeros((1, 3, ph, pw), dtype=np.float32)
    for channel in range(3):
        plane = tensor[0, channel, :nh, :nw]
        np.subtract(resized[:, :, channel], NANODET_MEAN[channel], out=plane)
        plane /= NANODET_STD[channel]
    return tensor, scale


@dataclass(frozen=True)
class PersonBoxes:
    boxes: np.ndarray  # [N, 4] x1, y1, x2, y2 in pixels of the source image
    scores: np.ndarray  # [N] 0..1


class PersonDetector:
    """NanoDet person boxes. The image is letterboxed to a long side of `input_side` (multiple of 32).

    A small image is enlarged only up to a long side of `enlarge_to` (an image between the two keeps its size):
    enlarging a close-up further makes its people too big for NanoDet's coarsest level.
    """

    def __init__(
        self, model_path: Path, *, threads: int = 1, input_side: int = 512, enlarge_to: int | None = None
    ) -> None:
        if input_side % 32:
            raise ValueError(f"input_side must be a multiple of 32, got {input_side}")
        self.enlarge_to = input_side if enlarge_to is None else min(enlarge_to, input_side)
        self._session = session(model_path, threads)
        self.input_name = self._session.get_inputs()[0].name
        self.input_side = input_side

    def letterbox(self, image_bgr: np.ndarray) -> tuple[np.ndarray, float]:
        return letterbox(image_bgr, self.input_side, self.enlarge_to)

    def detect(
        self, image_bgr: np.ndarray, *, min_score: float, iou: float = 0.5, max_persons: int = 15
    ) -> PersonBoxes:
        tensor, scale = self.letterbox(image_bgr)
        outputs = self._session.run(None, {self.input_name: tensor})
        return decode_persons(
            outputs, tensor.shape[2:], scale, image_bgr.shape[:2], min_score=min_score, iou=iou, max_persons=max_persons
        )


def decode_persons(
    outputs: Sequence[np.ndarray],
    tensor_hw: Sequence[int],
    scale: float,
    image_hw: Sequence[int],
    *,
    min_score: float,
    iou: float = 0.5,
    max_persons: int = 15,
) -> PersonBoxes:
    """Person boxes from NanoDet's outputs (found by shape, so a graph with extra outputs decodes the same)."""
    ph, pw = tensor_hw
    by_shape: dict[tuple[int, int], np.ndarray] = {(o.shape[1], o.shape[2]): o[0] for o in outputs}
    all_boxes, all_scores = [], []
    for stride in NANODET_STRIDES:
        gh, gw = -(-ph // stride), -(-pw // stride)
        cells = gh * gw
        scores = by_shape[(cells, 80)][:, PERSON_CLASS]
        hit = np.nonzero(scores >= min_score)[0]
        if hit.size == 0:
            continue
        dist = by_shape[(cells, 4 * NANODET_BINS)][hit].reshape(-1, 4, NANODET_BINS)
        dist = np.exp(dist - dist.max(axis=2, keepdims=True))
        dist /= dist.sum(axis=2, keepdims=True)
        ltrb = (dist * np.arange(NANODET_BINS, dtype=np.float32)).sum(axis=2) * stride
        cx = (hit % gw + 0.5) * stride
        cy = (hit // gw + 0.5) * stride
        boxes = np.stack([cx - ltrb[:, 0], cy - ltrb[:, 1], cx + ltrb[:, 2], cy + ltrb[:, 3]], axis=1)
        all_boxes.append(boxes)
        all_scores.append(scores[hit])
    if not all_boxes:
        return PersonBoxes(np.zeros((0, 4), np.float32), np.zeros((0,), np.float32))
    boxes = np.concatenate(all_boxes) / scale
    scores = np.concatenate(all_scores)
    h, w = image_hw[:2]
    boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, w)
    boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, h)
    keep = nms(boxes, scores, iou)[:max_persons]
    return PersonBoxes(boxes[keep].astype(np.float32), scores[keep].astype(np.float32))


class PoseEstimator:
    """MoveNet Lightning on a square crop around one person: 17 COCO keypoints (x, y, score) in pixels."""

    def __init__(self, model_path: Path, *, threads: int = 1) -> None:
        self._session = session(model_path, threads)
        self._input = self._session.get_inputs()[0].name

    @staticmethod
    def crop_square(person_xyxy: np.ndarray, pad: float = 0.1) -> tuple[float, float, float]:
        x1, y1, x2, y2 = (float(v) for v in person_xyxy)
        side = max(x2 - x1, y2 - y1) * (1 + 2 * pad)
        return (x1 + x2) / 2 - side / 2, (y1 + y2) / 2 - side / 2, side

    def estimate(self, image_bgr: np.ndarray, person_xyxy: np.ndarray) -> np.ndarray:
        left, top, side = self.crop_square(person_xyxy)
        scale = MOVENET_SIZE / side
        # One affine warp does crop + pad + resize; outside the image is black, as MoveNet's own demo pads.
        matrix = np.array([[scale, 0, -left * scale], [0, scale, -top * scale]], dtype=np.float64)
        crop = cv2.warpAffine(image_bgr, matrix, (MOVENET_SIZE, MOVENET_SIZE), flags=cv2.INTER_LINEAR)
        tensor = crop[:, :, ::-1][None].astype(np.int32)
        out = self._session.run(None, {self._input: tensor})[0][0, 0]  # [17, 3] y, x, score (0..1 of crop)
        return np.stack([left + out[:, 1] * side, top + out[:, 0] * side, out[:, 2]], axis=1).astype(np.float32)
