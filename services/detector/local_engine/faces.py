"""Face boxes with MediaPipe BlazeFace (back-camera model, 256 px), imported from TFJS to ONNX.

The model only sees faces between roughly 1/16 and 1/2 of its square input, so one image is run on two
square canvases: the image letterboxed into a square (faces of people a few metres away) and the image
shrunk to a third of a larger canvas (a face that fills the frame: webcam portraits, tight masked-face crops).
The boxes of both runs are merged with one NMS. Measured figures and failures: weights/face_detector.card.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from services.detector.local_engine.persons import session
from shared.boxes import nms

MODEL_NAME = "blazeface-back"  # the models.lock.json entry

INPUT_SIDE = 256
# MediaPipe's SSD anchors for this model: a 16x16 grid with 2 anchors a cell, then 8x8 with 6; all unit-size.
ANCHOR_STRIDES = (16, 32)
ANCHORS_PER_CELL = (2, 6)
NUM_KEYPOINTS = 6  # right eye, left eye, nose tip, mouth centre, right ear tragion, left ear tragion

# Canvas side as a multiple of the image's long side; 1.0 is a plain letterbox.
DEFAULT_CANVASES = (1.0, 3.0)
DEFAULT_MIN_SCORE = 0.5
# On an enlarged canvas the image is small, and a face under this share of its long side is better seen (and
# less often imagined in clutter) by the letterbox run: such boxes are dropped there.
CLOSEUP_MIN_FACE = 0.2

# Detector score -> confidence (0..100: about that share of boxes at this score are real faces): the share of real
# faces per 0.1-wide score bin, at the bin centre, made non-decreasing; measured on the train sides of masks/ and
# helmet_vest/ (3387 images, 5111 boxes) by `python -m model_workshop.face_eval`; linear in between.
CALIBRATION_SCORES = np.array([0.0, 0.35, 0.45, 0.55, 0.65, 0.75, 0.85, 1.0], dtype=np.float32)
CALIBRATION_CONFIDENCE = np.array([0.0, 59.7, 74.4, 86.0, 92.5, 97.7, 99.4, 99.4], dtype=np.float32)


def anchor_centres() -> np.ndarray:
    """[896, 2] anchor centres (x, y) in 0..1 of the model input, in the model's output order."""
    centres = []
    for stride, per_cell in zip(ANCHOR_STRIDES, ANCHORS_PER_CELL, strict=True):
        grid = INPUT_SIDE // stride
        ys, xs = np.mgrid[0:grid, 0:grid]
        cells = np.stack([(xs + 0.5) / grid, (ys + 0.5) / grid], axis=-1).reshape(-1, 1, 2)
        centres.append(np.repeat(cells, per_cell, axis=1).reshape(-1, 2))
    return np.concatenate(centres).astype(np.float32)


def confidence(scores: np.ndarray) -> np.ndarray:
    """Calibrated confidence 0..100 for detector scores (see CALIBRATION_*)."""
    curve: np.ndarray = np.interp(scores, CALIBRATION_SCORES, CALIBRATION_CONFIDENCE)
    return curve.astype(np.float32)


@dataclass(frozen=True)
class FaceBoxes:
    boxes: np.ndarray  # [N, 4] float32 x1, y1, x2, y2 in pixels of the source image, best score first
    scores: np.ndarray  # [N] float32 detector score 0..1
    keypoints: np.ndarray  # [N, 6, 2] float32 x, y in source pixels (eyes, nose, mouth, ears)

    def __len__(self) -> int:
        return int(self.scores.shape[0])

    @property
    def confidences(self) -> np.ndarray:
        """[N] calibrated confidence 0..100."""
        return confidence(self.scores)


def _empty() -> FaceBoxes:
    return FaceBoxes(
        np.zeros((0, 4), np.float32), np.zeros((0,), np.float32), np.zeros((0, NUM_KEYPOINTS, 2), np.float32)
    )


class FaceDetector:
    """Face boxes in a BGR image: one model run per canvas (about 7 ms each on one idle thread here, 15 ms for both)."""

    def __init__(
        self,
        model_path: Path,
        *,
        threads: int = 1,
        min_score: float = DEFAULT_MIN_SCORE,
        canvases: tuple[float, ...] = DEFAULT_CANVASES,
        iou: float = 0.3,
        max_faces: int = 20,
    ) -> None:
        if not canvases or min(canvases) < 1.0:
            raise ValueError(f"canvases must be multiples >= 1.0 of the image's long side, got {canvases}")
        self._session = session(model_path, threads)
        self._input = self._session.get_inputs()[0].name
        shape = self._session.get_inputs()[0].shape
        if list(shape[1:]) != [INPUT_SIDE, INPUT_SIDE, 3]:
            raise ValueError(f"{model_path}: expected a [1, {INPUT_SIDE}, {INPUT_SIDE}, 3] input, got {shape}")
        self._anchors = anchor_centres()
        self.min_score, self.canvases, self.iou, self.max_faces = min_score, canvases, iou, max_faces

    def _run(self, tensor: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Raw logits [896] and regressors [896, 16], in anchor order (outputs sorted by grid size)."""
        outputs = sorted((o[0] for o in self._session.run(None, {self._input: tensor})), key=lambda o: -o.shape[0])
        logits = np.concatenate([o[:, 0] for o in outputs if o.shape[1] == 1])
        regressors = np.concatenate([o for o in outputs if o.shape[1] == 16])
        return logits, regressors

    def detect(self, image_bgr: np.ndarray, canvases: tuple[float, ...] | None = None) -> FaceBoxes:
        """Faces on each canvas (default: the detector's; a caller that knows no face can be that large or
        that small passes fewer)."""
        h, w = image_bgr.shape[:2]
        all_boxes, all_scores, all_points = [], [], []
        for canvas in self.canvases if canvases is None else canvases:
            side = max(h, w) * canvas
            left, top = (w - side) / 2, (h - side) / 2  # image centred, black around it
            scale = INPUT_SIDE / side
            matrix = np.array([[scale, 0, -left * scale], [0, scale, -top * scale]], dtype=np.float64)
            interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
            square = cv2.warpAffine(image_bgr, matrix, (INPUT_SIDE, INPUT_SIDE), flags=interpolation)
            tensor = square[None, :, :, ::-1].astype(np.float32) / 127.5 - 1.0  # RGB in [-1, 1]
            logits, regressors = self._run(tensor)
            scores = 1.0 / (1.0 + np.exp(-np.clip(logits, -80.0, 80.0)))
            offsets = regressors.reshape(-1, 2 + NUM_KEYPOINTS, 2) / INPUT_SIDE
            keep = scores >= self.min_score
            if canvas > 1.0:
                keep &= offsets[:, 1].max(axis=1) * side >= CLOSEUP_MIN_FACE * max(h, w)
            hit = np.nonzero(keep)[0]
            if hit.size == 0:
                continue
            offsets = offsets[hit]
            anchors = self._anchors[hit]
            centre, size = offsets[:, 0] + anchors, offsets[:, 1]
            boxes = np.concatenate([centre - size / 2, centre + size / 2], axis=1) * side
            all_boxes.append(boxes + np.array([left, top, left, top], dtype=np.float32))
            all_points.append((offsets[:, 2:] + anchors[:, None, :]) * side + np.array([left, top], np.float32))
            all_scores.append(scores[hit])
        if not all_boxes:
            return _empty()
        boxes, scores, points = np.concatenate(all_boxes), np.concatenate(all_scores), np.concatenate(all_points)
        boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, w)
        boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, h)
        valid = (boxes[:, 2] - boxes[:, 0] > 1) & (boxes[:, 3] - boxes[:, 1] > 1)
        boxes, scores, points = boxes[valid], scores[valid], points[valid]
        keep = nms(boxes, scores, self.iou)[: self.max_faces]
        boxes, scores, points = boxes[keep], scores[keep], points[keep]
        return FaceBoxes(boxes.astype(np.float32), scores.astype(np.float32), points.astype(np.float32))
