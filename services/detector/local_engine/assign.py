"""Detected parts (heads, faces, hands) to persons, by geometry; parts nobody holds make persons of their own.

Pure geometry, no I/O. Each part goes to at most one person, a person gets at most one HEAD and one FACE and
two hands. Pose keypoints break ties: a hand near a wrist goes to that wrist's person and side. A face or a
hand that no person box holds still makes a person (a webcam portrait, a close-up of a gloved hand), as
Rekognition does; so does a head in a crowd whose body the person detector missed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from services.detector.local_engine.bodyparts import LEFT_WRIST, RIGHT_WRIST, VISIBLE, PartBox
from shared.rekognition import BodyPartName

Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class Found:
    """Detected boxes of one part kind: x1, y1, x2, y2 pixels and 0..1 calibrated confidences."""

    boxes: np.ndarray  # [N, 4]
    scores: np.ndarray  # [N]
    covered: np.ndarray | None = None  # [N] the detector's P(covered), when it gives one

    @staticmethod
    def empty() -> Found:
        return Found(np.zeros((0, 4), np.float32), np.zeros((0,), np.float32))

    def part(self, name: BodyPartName, i: int) -> PartBox:
        covered = None if self.covered is None else float(self.covered[i])
        return PartBox(name, _as_box(self.boxes[i]), float(self.scores[i]), covered)

    def __len__(self) -> int:
        return int(len(self.scores))


@dataclass
class Holder:
    """A person as the assignment sees it: box, keypoints (or None), and the parts given to it."""

    box: np.ndarray  # x1, y1, x2, y2
    keypoints: np.ndarray | None  # [17, 3] or None for a person made from parts
    head: PartBox | None = None
    face: PartBox | None = None
    hands: list[PartBox] = field(default_factory=list)
    from_parts: bool = False  # made from parts no person box held
    head_detected: bool = False  # the HEAD came from the head detector (not derived from a face)
    part_score: float = 0.0  # the best confidence among the parts that made it


def _centre(box: np.ndarray | Box) -> tuple[float, float]:
    return (float(box[0] + box[2]) / 2.0, float(box[1] + box[3]) / 2.0)


def _size(box: np.ndarray | Box) -> float:
    return float(np.sqrt(max(1.0, float((box[2] - box[0]) * (box[3] - box[1])))))


def _as_box(box: np.ndarray) -> Box:
    return (float(box[0]), float(box[1]), float(box[2]), float(box[3]))


def head_fit(head: np.ndarray, person: np.ndarray) -> float | None:
    """How well a head sits at the top of a person box: 0..1, None when it cannot be this person's head.

    The head's centre must lie within the box's width (a little margin) and in its upper half, and the head
    may not be wider than the box; the best fit is centred, near the top, about a quarter of the box wide.
    """
    px1, py1, px2, py2 = (float(v) for v in person)
    pw, ph = max(1.0, px2 - px1), max(1.0, py2 - py1)
    cx, cy = _centre(head)
    hw = float(head[2] - head[0])
    if not (px1 - 0.1 * pw <= cx <= px2 + 0.1 * pw) or not (py1 - 0.15 * ph <= cy <= py1 + 0.5 * ph):
        return None
    if hw > 1.3 * pw:
        return None
    dx = abs(cx - (px1 + px2) / 2.0) / pw
    dy = max(0.0, (cy - py1) / ph - 0.12)
    return float(max(0.0, 1.0 - 1.2 * dx - 1.5 * dy))


def _face_fit(face: np.ndarray, holder: Holder) -> float | None:
    """A face belongs to the person whose HEAD holds its centre, else to one whose box holds it high up."""
    cx, cy = _centre(face)
    if holder.head is not None:
        hx1, hy1, hx2, hy2 = holder.head.box
        mw, mh = 0.25 * (hx2 - hx1), 0.25 * (hy2 - hy1)
        if hx1 - mw <= cx <= hx2 + mw and hy1 - mh <= cy <= hy2 + mh:
            return 1.0
        return None  # a head was found: a face elsewhere is someone else's
    fit = head_fit(face, holder.box)
    return None if fit is None else 0.5 * fit


def _hand_fit(hand: np.ndarray, holder: Holder) -> tuple[float, BodyPartName | None] | None:
    """Fit of a hand to a person, and the side when a wrist keypoint is near it."""
    cx, cy = _centre(hand)
    size = _size(hand)
    kps = holder.keypoints
    best: tuple[float, BodyPartName | None] | None = None
    if kps is not None:
        for wrist, name in ((LEFT_WRIST, BodyPartName.LEFT_HAND), (RIGHT_WRIST, BodyPartName.RIGHT_HAND)):
            if kps[wrist, 2] < VISIBLE:
                continue
            d = float(np.hypot(cx - kps[wrist, 0], cy - kps[wrist, 1])) / size
            if d <= 1.5 and (best is None or 2.0 - d > best[0]):
                best = (2.0 - d, name)
    if best is not None:
        return best
    px1, py1, px2, py2 = (float(v) for v in holder.box)
    pw = px2 - px1
    if px1 - 0.3 * pw <= cx <= px2 + 0.3 * pw and py1 <= cy <= py2 + 0.1 * (py2 - py1):
        return (1.0 - abs(cx - (px1 + px2) / 2.0) / (1.6 * pw), None)
    return None


def _side(hand: Box, holder: Holder, taken: set[BodyPartName]) -> BodyPartName:
    """Left or right when no wrist decided: the image-left hand of a person facing the camera is the RIGHT."""
    if len(taken) == 1:
        return BodyPartName.LEFT_HAND if BodyPartName.RIGHT_HAND in taken else BodyPartName.RIGHT_HAND
    return BodyPartName.RIGHT_HAND if _centre(hand)[0] < _centre(holder.box)[0] else BodyPartName.LEFT_HAND


def _greedy(fits: list[tuple[float, int, int]]) -> dict[int, int]:
    """Part index -> holder index, best fit first, each part and holder used once."""
    chosen: dict[int, int] = {}
    used: set[int] = set()
    for _fit, part, holder in sorted(fits, reverse=True):
        if part in chosen or holder in used:
            continue
        chosen[part] = holder
        used.add(holder)
    return chosen


def person_from_head(head: Box, width: int, height: int) -> np.ndarray:
    """A body box under a head nobody's box held: about 2.6 head widths wide, down 6.5 head heights."""
    x1, y1, x2, y2 = head
    w, h = x2 - x1, y2 - y1
    cx = (x1 + x2) / 2.0
    return np.array(
        [
            max(0.0, cx - 1.3 * w), max(0.0, y1 - 0.1 * h),
            min(float(width), cx + 1.3 * w), min(float(height), y1 + 6.5 * h),
        ]
    )


def person_from_face(face: Box, width: int, height: int) -> np.ndarray:
    """Head and shoulders around a face (a portrait): 2.2 face widths wide, from above the hair to the chest."""
    x1, y1, x2, y2 = face
    w, h = x2 - x1, y2 - y1
    cx = (x1 + x2) / 2.0
    return np.array(
        [
            max(0.0, cx - 1.1 * w), max(0.0, y1 - 0.6 * h),
            min(float(width), cx + 1.1 * w), min(float(height), y2 + 1.6 * h),
        ]
    )


def head_from_face(face: Box) -> Box:
    """The HEAD around a face: wider, up to the top of a helmet, down to the mouth. On the TRAIN side the labelled
    helmet heads reach 0.8 face heights above the face (bare heads 0.6) and end 0.3 above its bottom (bare: at it);
    this box put the helmet classifier right on 0.67 of helmet / 0.92 of bare heads around a face (was 0.50 / 0.95
    with 0.45 above and 0.1 aside): docs/local-engine.md "Engine v2.1"."""
    x1, y1, x2, y2 = face
    w, h = x2 - x1, y2 - y1
    return (x1 - 0.25 * w, y1 - 0.75 * h, x2 + 0.25 * w, y2 - 0.15 * h)


def _union(boxes: list[np.ndarray]) -> np.ndarray:
    stack = np.stack(boxes)
    return np.array([stack[:, 0].min(), stack[:, 1].min(), stack[:, 2].max(), stack[:, 3].max()])


def assign(
    holders: list[Holder],
    *,
    heads: Found,
    faces: Found,
    hands: Found,
    width: int,
    height: int,
    max_persons: int,
    lone_heads: np.ndarray | None = None,
    lone_hands: np.ndarray | None = None,
) -> list[Holder]:
    """Give each detected part to at most one person; parts nobody holds make persons (up to `max_persons`).

    `lone_heads` / `lone_hands` mark the parts confident enough to make a person of their own (default: all).
    """
    lone_heads = np.ones(len(heads), bool) if lone_heads is None else lone_heads
    lone_hands = np.ones(len(hands), bool) if lone_hands is None else lone_hands
    # Heads first: they decide where each person's face may be.
    # A confident head box beats a weak one at the same place: the fit counts the detector's score too.
    fits = [
        (fit + 0.5 * float(heads.scores[i]), i, j)
        for i, head in enumerate(heads.boxes)
        for j, holder in enumerate(holders)
        if (fit := head_fit(head, holder.box)) is not None
    ]
    given = _greedy(fits)
    for i, j in given.items():
        holders[j].head = heads.part(BodyPartName.HEAD, i)
        holders[j].head_detected = True
    for i in np.argsort(-heads.scores):
        if int(i) in given or not lone_heads[i] or len(holders) >= max_persons:
            continue
        head = heads.part(BodyPartName.HEAD, int(i))
        holders.append(
            Holder(
                box=person_from_head(head.box, width, height),
                keypoints=None,
                head=head,
                head_detected=True,
                from_parts=True,
                part_score=float(heads.scores[i]),
            )
        )
    # Faces: to the person whose head holds them, else a person of their own (a portrait).
    fits = [
        (fit, i, j)
        for i, face in enumerate(faces.boxes)
        for j, holder in enumerate(holders)
        if (fit := _face_fit(face, holder)) is not None
    ]
    given = _greedy(fits)
    for i, j in given.items():
        holders[j].face = PartBox(BodyPartName.FACE, _as_box(faces.boxes[i]), float(faces.scores[i]))
    for i in np.argsort(-faces.scores):
        if int(i) in given or len(holders) >= max_persons:
            continue
        box = _as_box(faces.boxes[i])
        holders.append(
            Holder(
                box=person_from_face(box, width, height),
                keypoints=None,
                face=PartBox(BodyPartName.FACE, box, float(faces.scores[i])),
                from_parts=True,
                part_score=float(faces.scores[i]),
            )
        )
    # Hands: two per person, nearest wrist first; the rest, grouped by proximity, make persons.
    taken: dict[int, set[BodyPartName]] = {j: set() for j in range(len(holders))}
    order = sorted(
        (
            (hand_fit[0], i, j, hand_fit[1])
            for i, hand in enumerate(hands.boxes)
            for j, holder in enumerate(holders)
            if (hand_fit := _hand_fit(hand, holder)) is not None
        ),
        key=lambda row: -row[0],
    )
    placed: set[int] = set()
    for _score, i, j, side in order:
        if i in placed or len(taken[j]) >= 2 or (side is not None and side in taken[j]):
            continue
        box = _as_box(hands.boxes[i])
        name = side or _side(box, holders[j], taken[j])
        taken[j].add(name)
        holders[j].hands.append(hands.part(name, i))
        placed.add(i)
    orphans = [int(i) for i in np.argsort(-hands.scores) if int(i) not in placed and lone_hands[i]]
    while orphans and len(holders) < max_persons:
        first = orphans.pop(0)
        group = [first]
        reach = 4.0 * _size(hands.boxes[first])
        for other in list(orphans):
            gap = np.hypot(*np.subtract(_centre(hands.boxes[other]), _centre(hands.boxes[first])))
            if len(group) < 2 and gap <= reach:
                group.append(other)
                orphans.remove(other)
        union = _union([hands.boxes[i] for i in group])
        holder = Holder(box=union, keypoints=None, from_parts=True, part_score=float(hands.scores[first]))
        sides: set[BodyPartName] = set()
        for i in sorted(group, key=lambda k: _centre(hands.boxes[k])[0]):
            name = _side(_as_box(hands.boxes[i]), holder, sides)
            sides.add(name)
            holder.hands.append(hands.part(name, i))
        holders.append(holder)
    return holders
