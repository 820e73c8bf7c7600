"""Body-part boxes (FACE, HEAD, LEFT_HAND, RIGHT_HAND) from MoveNet keypoints and the person box.

Pure geometry, no I/O. Keypoints are COCO-17 rows (x, y, score) in image pixels. A part is only returned
when the keypoints that place it are visible; the HEAD falls back to body proportions (top of a standing
person's box) at a lower confidence, so a worker seen from behind still gets a HEAD to classify.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from shared.rekognition import BodyPartName

NOSE, LEFT_EYE, RIGHT_EYE, LEFT_EAR, RIGHT_EAR = 0, 1, 2, 3, 4
LEFT_SHOULDER, RIGHT_SHOULDER, LEFT_ELBOW, RIGHT_ELBOW, LEFT_WRIST, RIGHT_WRIST = 5, 6, 7, 8, 9, 10
LEFT_HIP, RIGHT_HIP = 11, 12
HEAD_POINTS = (NOSE, LEFT_EYE, RIGHT_EYE, LEFT_EAR, RIGHT_EAR)

VISIBLE = 0.25  # MoveNet keypoint score from which a keypoint is used to place a part
# HEAD placed by body proportions only (as a 0..1 score): the share of such HEADs that overlap a labelled head
# (IoU > 0.15) among returned persons holding one, TRAIN split, int8 NanoDet + head band: 514/629 = 0.817
# (keypoint HEADs: 0.669 under a score of 0.7, 0.837 for 0.7-0.85, 0.927 for 0.85-0.95, 0.977 above).
FALLBACK_HEAD_CONFIDENCE = 0.81
# A head keypoint is trusted only inside this band of the person box: this share of the box width in from
# each side, and in the top HEAD_BAND_TOP of its height. MoveNet runs on a square crop, so around a tall, narrow
# person box it sees the neighbours too and often puts the head on one of them (docs/local-engine.md, "Heads").
HEAD_BAND_SIDE = 0.1
HEAD_BAND_TOP = 0.4
# Fallback HEAD (no trusted head keypoint, no pair of shoulders in the band): centred at the top of the person
# box, min(0.7 x box width, 0.35 x box height) wide and 0.8 of that tall (fitted on the TRAIN split).
FALLBACK_HEAD_WIDTH = (0.7, 0.35)
FALLBACK_HEAD_ASPECT = 0.8


@dataclass(frozen=True)
class PartBox:
    name: BodyPartName
    box: tuple[float, float, float, float]  # x1, y1, x2, y2 pixels
    score: float  # 0..1, how sure we are the part is there and in this box
    covered: float | None = None  # the part detector's own P(covered) (helmet / glove), None for pose parts


def keypoint_confidence(score: float) -> float:
    """MoveNet score -> 0..1 confidence that the keypoint is visible where it says.

    MoveNet Lightning scores rarely exceed 0.7 on real visible joints and sit under 0.2 on hidden ones;
    this maps VISIBLE (0.25) to 0.6 and 0.55 or more to 0.99, linearly in between.
    """
    if score <= VISIBLE:
        return float(max(0.0, 0.6 * score / VISIBLE))
    return float(min(0.99, 0.6 + (score - VISIBLE) * (0.39 / 0.30)))


def _visible(kps: np.ndarray, idx: int) -> bool:
    return bool(kps[idx, 2] >= VISIBLE)


def _dist(kps: np.ndarray, a: int, b: int) -> float:
    return float(np.hypot(*(kps[a, :2] - kps[b, :2])))


def head_size(kps: np.ndarray, person: np.ndarray) -> float:
    """Estimated head width in pixels (helmet included), from the best evidence available."""
    estimates: list[float] = []
    if _visible(kps, LEFT_EAR) and _visible(kps, RIGHT_EAR):
        estimates.append(1.25 * _dist(kps, LEFT_EAR, RIGHT_EAR))
    if _visible(kps, LEFT_EYE) and _visible(kps, RIGHT_EYE):
        estimates.append(2.6 * _dist(kps, LEFT_EYE, RIGHT_EYE))
    if _visible(kps, NOSE):  # profile views: nose to ear stays about half a head width
        estimates += [1.7 * _dist(kps, NOSE, ear) for ear in (LEFT_EAR, RIGHT_EAR) if _visible(kps, ear)]
    if _visible(kps, LEFT_SHOULDER) and _visible(kps, RIGHT_SHOULDER):
        estimates.append(0.62 * _dist(kps, LEFT_SHOULDER, RIGHT_SHOULDER))
    head = [i for i in HEAD_POINTS if _visible(kps, i)]
    shoulders = [i for i in (LEFT_SHOULDER, RIGHT_SHOULDER) if _visible(kps, i)]
    if head and shoulders:  # neck length: eyes to shoulder line is about one head width
        estimates.append(0.9 * float(np.hypot(*(kps[head, :2].mean(axis=0) - kps[shoulders, :2].mean(axis=0)))))
    px1, py1, px2, py2 = (float(v) for v in person)
    proportional = min(px2 - px1, (py2 - py1) / 3.0) * 0.55
    if not estimates:
        return max(proportional, 4.0)
    # Side views shrink ear / eye / shoulder spans; the largest estimate is the least foreshortened one.
    size = max(estimates)
    return float(np.clip(size, 0.5 * proportional, 2.0 * proportional + 1.0))


def head_keypoints(kps: np.ndarray, person: np.ndarray) -> np.ndarray:
    """The keypoints with the head points (and, when no head point is left, the shoulders) that lie outside
    the person box's head band marked hidden, so the HEAD is placed on this person, not on a neighbour."""
    x1, y1, x2, y2 = (float(v) for v in person)
    margin = HEAD_BAND_SIDE * (x2 - x1)
    left, right, bottom = x1 + margin, x2 - margin, y1 + HEAD_BAND_TOP * (y2 - y1)
    trusted = kps.copy()
    for i in HEAD_POINTS:
        if not (left <= trusted[i, 0] <= right and trusted[i, 1] <= bottom):
            trusted[i, 2] = 0.0
    if not any(_visible(trusted, i) for i in HEAD_POINTS):
        for i in (LEFT_SHOULDER, RIGHT_SHOULDER):
            if not left <= trusted[i, 0] <= right:
                trusted[i, 2] = 0.0
    return trusted


def _head_from_keypoints(kps: np.ndarray, person: np.ndarray) -> PartBox | None:
    """HEAD from the visible head keypoints, else above a pair of visible shoulders; None without either."""
    size = head_size(kps, person)
    visible = [i for i in HEAD_POINTS if _visible(kps, i)]
    if visible:
        cx = float(kps[visible, 0].mean())
        eye_level = float(kps[visible, 1].mean())
        score = keypoint_confidence(float(kps[visible, 2].max()))
        # Measured against the labelled head boxes of helmet_vest (helmet top to chin, ear to ear): the
        # box centre sits about 0.4 head widths above the mean head keypoint.
        return PartBox(
            BodyPartName.HEAD,
            (cx - 0.6 * size, eye_level - 0.9 * size, cx + 0.6 * size, eye_level + 0.15 * size),
            score,
        )
    if _visible(kps, LEFT_SHOULDER) and _visible(kps, RIGHT_SHOULDER):
        mid = (kps[LEFT_SHOULDER, :2] + kps[RIGHT_SHOULDER, :2]) / 2.0
        cx, cy = float(mid[0]), float(mid[1]) - 0.95 * size
        score = 0.9 * keypoint_confidence(float(min(kps[LEFT_SHOULDER, 2], kps[RIGHT_SHOULDER, 2])))
        return PartBox(BodyPartName.HEAD, (cx - 0.6 * size, cy - 0.7 * size, cx + 0.6 * size, cy + 0.6 * size), score)
    return None


def head_box(kps: np.ndarray, person: np.ndarray) -> PartBox:
    """The HEAD returned for a person: from the keypoints in the person box's head band, else at the top of
    the box (a worker seen from behind, or a pose that went to a neighbour)."""
    from_keypoints = _head_from_keypoints(head_keypoints(kps, person), person)
    if from_keypoints is not None:
        return from_keypoints
    px1, py1, px2, py2 = (float(v) for v in person)
    cx = (px1 + px2) / 2.0
    width = min(FALLBACK_HEAD_WIDTH[0] * (px2 - px1), FALLBACK_HEAD_WIDTH[1] * (py2 - py1))
    return PartBox(
        BodyPartName.HEAD,
        (cx - 0.5 * width, py1, cx + 0.5 * width, py1 + FALLBACK_HEAD_ASPECT * width),
        FALLBACK_HEAD_CONFIDENCE,
    )


def pose_head_box(kps: np.ndarray, person: np.ndarray) -> np.ndarray:
    """Where the pose alone puts the head, wherever it lies (session-2 geometry, no head band): the signal the
    one-person-per-head de-duplication was tuned with (two boxes whose poses found the same head are one
    person). Not a returned HEAD; keeping it keeps the returned persons exactly as before the head band."""
    from_keypoints = _head_from_keypoints(kps, person)
    if from_keypoints is not None:
        return np.asarray(from_keypoints.box)
    px1, py1, px2, _ = (float(v) for v in person)
    cx = (px1 + px2) / 2.0
    size = 2.0 * head_size(kps, person)  # the proportional estimate runs about half the labelled head width
    top = py1 + 0.1 * size
    return np.array([cx - 0.5 * size, top, cx + 0.5 * size, top + 0.85 * size])


def face_box(kps: np.ndarray, person: np.ndarray) -> PartBox | None:
    """The face needs the nose and an eye: a head seen from behind has no FACE (FACE_COVER is then unknown)."""
    if not _visible(kps, NOSE) or not (_visible(kps, LEFT_EYE) or _visible(kps, RIGHT_EYE)):
        return None
    size = head_size(kps, person) * 0.85
    eyes = [i for i in (LEFT_EYE, RIGHT_EYE) if _visible(kps, i)]
    eye_y = float(kps[eyes, 1].mean())
    cx = float((kps[NOSE, 0] + kps[eyes, 0].mean()) / 2.0)
    score = keypoint_confidence(float(min(kps[NOSE, 2], kps[eyes, 2].max())))
    return PartBox(
        BodyPartName.FACE, (cx - 0.5 * size, eye_y - 0.45 * size, cx + 0.5 * size, eye_y + 0.8 * size), score
    )


def hand_box(kps: np.ndarray, person: np.ndarray, wrist: int, elbow: int, name: BodyPartName) -> PartBox | None:
    if not _visible(kps, wrist):
        return None
    size = head_size(kps, person) * 0.9
    centre = kps[wrist, :2].astype(np.float64)
    if _visible(kps, elbow):
        forearm = kps[wrist, :2] - kps[elbow, :2]
        centre = centre + 0.35 * forearm
        size = max(size, 0.55 * float(np.hypot(*forearm)))
    cx, cy = float(centre[0]), float(centre[1])
    score = keypoint_confidence(float(kps[wrist, 2]))
    return PartBox(name, (cx - size / 2, cy - size / 2, cx + size / 2, cy + size / 2), score)


def body_parts(kps: np.ndarray, person: np.ndarray) -> list[PartBox]:
    parts: list[PartBox | None] = [
        face_box(kps, person),
        head_box(kps, person),
        hand_box(kps, person, LEFT_WRIST, LEFT_ELBOW, BodyPartName.LEFT_HAND),
        hand_box(kps, person, RIGHT_WRIST, RIGHT_ELBOW, BodyPartName.RIGHT_HAND),
    ]
    return [p for p in parts if p is not None]
